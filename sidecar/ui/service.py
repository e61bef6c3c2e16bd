"""The comparison page as the admin listener uses it: the page, the /api/summary document, and
the history's timer. Readings and summaries run in one worker thread of their own, so the
event loop that forwards calls only hands them over; the experiments' state is read on the
loop, where the stop-loss writes it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sidecar.experiments.runtime import Experiments
from sidecar.telemetry.registry import MetricRegistry
from sidecar.ui.gates import stop_loss_gates
from sidecar.ui.history import History
from sidecar.ui.page import Page
from sidecar.ui.series import reduce, registry_samples
from sidecar.ui.summary import Summary, parse_window

T = TypeVar("T")
# What the page shows of /status beyond the experiments (never upstream URLs or the token).
SIDECAR_KEYS = ("version", "uptime_seconds", "draining", "admin_control")


class ComparisonPage:
    """`GET /` and `GET /api/summary` of one sidecar; `start` and `stop` its history."""

    def __init__(
        self,
        metrics: MetricRegistry,
        experiments: Experiments,
        status: Callable[[], dict[str, Any]],
        interval: float,
    ) -> None:
        self.history = History(lambda: reduce(registry_samples(metrics)), interval)
        self.summary = Summary(self.history)
        self.page = Page.load()
        self._experiments = experiments
        self._status = status
        self._executor: ThreadPoolExecutor | None = None
        self._timer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the worker thread and the history's timer (its first reading is taken now)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sidecar-ui")
        self._timer = asyncio.get_running_loop().create_task(self.history.run(self._in_worker))

    async def stop(self) -> None:
        """Stop the timer and the worker thread."""
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
            self._timer = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _in_worker(self, job: Callable[[], T]) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._executor, job)

    async def document(self, window_text: str | None) -> dict[str, Any]:
        """The /api/summary document for a window as given in the query (WindowError when it
        is not one the page can show)."""
        window = parse_window(window_text)
        document = await self._in_worker(lambda: self.summary.compute(window))
        status = self._status()
        document["sidecar"] = {key: status.get(key) for key in SIDECAR_KEYS}
        document["experiments"] = self.experiment_states(status.get("experiments", {}))
        return document

    def experiment_states(self, states: dict[str, Any]) -> dict[str, Any]:
        """Each experiment's /status entry as it is, plus `stop_loss_gates` (gates.py) when the
        entry carries no `gates` of its own."""
        result = {}
        by_name = self._experiments.table.by_name
        for name, state in states.items():
            entry = dict(state)
            experiment = by_name.get(name)
            if "gates" not in entry and experiment is not None:
                entry["stop_loss_gates"] = stop_loss_gates(experiment)
            result[name] = entry
        return result
