"""A sidecar's /metrics as the probe reads it: everything, or only the call and cost lines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping

import aiohttp

from sidecar.tools.report import COST, COST_UNKNOWN, REQUESTS, GroupStats, summarize

# The labels that tell one probed model from another: see ProbeTarget.metrics_key.
GROUP_BY = ("upstream", "gen_ai_request_model")
_LEDGER_PREFIXES = (REQUESTS + "{", COST + "{", COST_UNKNOWN + "{")


class MetricsReader:
    """Fetches a sidecar's /metrics and summarises it per (upstream, request model)."""

    def __init__(self, metrics_url: str, http: aiohttp.ClientSession) -> None:
        self.metrics_url = metrics_url
        self._http = http
        self.baseline = ""
        self._baseline_ledger = ""

    async def text(self) -> str:
        """The current exposition (text format)."""
        timeout = aiohttp.ClientTimeout(total=10)
        async with self._http.get(self.metrics_url, timeout=timeout) as response:
            response.raise_for_status()
            return await response.text()

    async def mark_baseline(self, *, ledger: bool = True) -> None:
        """Remember the current counts: later summaries (and, with `ledger`, ledgers) count
        only what happens after this."""
        self.baseline = await self.text()
        if ledger:
            self._baseline_ledger = ledger_lines(self.baseline)

    async def summary(self) -> dict[tuple[str, ...], GroupStats]:
        """Everything since the baseline, per (upstream, request model)."""
        stats = summarize(await self.text(), GROUP_BY, baseline=self.baseline)
        return {item.key: item for item in stats}

    async def ledger(self) -> dict[tuple[str, ...], GroupStats]:
        """Calls and cost only (cheap to parse), since the baseline."""
        text = ledger_lines(await self.text())
        stats = summarize(text, GROUP_BY, baseline=self._baseline_ledger)
        return {item.key: item for item in stats}

    async def wait_until_recorded(
        self,
        sent: Mapping[tuple[str, str], int],
        timeout: float = 2.0,
    ) -> dict[tuple[str, ...], GroupStats]:
        """The ledger once every key shows at least `sent` calls (or `timeout` passed).

        The sidecar records a call just after its last byte, off the call path, so a
        call the client has finished may be missing from /metrics for a moment.
        """
        deadline = time.monotonic() + timeout
        while True:
            ledger = await self.ledger()
            behind = [key for key, count in sent.items() if _calls(ledger, key) < count]
            if not behind or time.monotonic() >= deadline:
                return ledger
            await asyncio.sleep(0.005)


def _calls(ledger: Mapping[tuple[str, ...], GroupStats], key: tuple[str, ...]) -> float:
    stats = ledger.get(key)
    return stats.calls if stats else 0.0


def ledger_lines(text: str) -> str:
    """Only the sample lines of the calls and cost counters of an exposition."""
    return "\n".join(_starting_with(text.splitlines(), _LEDGER_PREFIXES)) + "\n"


def _starting_with(lines: Iterable[str], prefixes: tuple[str, ...]) -> Iterable[str]:
    return (line for line in lines if line.startswith(prefixes))
