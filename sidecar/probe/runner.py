"""Sends the prompt set to every model at the same concurrency, all models at once."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from sidecar.probe.budget import BudgetGate
from sidecar.probe.prompts import Prompt
from sidecar.probe.targets import ProbeTarget
from sidecar.tools.traffic import CallSpec, ModelTarget, SDKCaller

MAX_FAILURE_TEXT = 300


@dataclass(frozen=True)
class ProbeSettings:
    """How much to send and how."""

    requests: int = 200  # calls per model, cycling through the prompts
    concurrency: int = 8  # calls in flight per model
    stream: bool = False
    repeat: int = 0  # times each repeat prompt is sent at temperature 0 (0: off)
    repeat_prompts: int = 5  # how many prompts (the first ones) the repeat check uses
    max_tokens: int | None = 256  # unless a prompt sets its own
    logprobs: bool = False  # ask OpenAI chat models for token logprobs (confidence)
    budget_usd: float | None = None
    give_up_after: int = 5  # failures in a row, before any success, that end a model's run
    # Calls per model before measuring (warm connections and clients, as in production);
    # None: one per concurrency slot. In the spend, not in the table.
    warmup: int | None = None

    @property
    def warmup_calls(self) -> int:
        """Warm-up calls per model."""
        return self.concurrency if self.warmup is None else self.warmup


@dataclass
class ModelRun:
    """What the probe itself saw of one model; the numbers come from /metrics instead."""

    probe: ProbeTarget
    planned: int
    started: int = 0  # measured calls sent
    warmed: int = 0  # warm-up calls sent
    succeeded: int = 0
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    first_failure: str | None = None
    stopped: str | None = None  # why the run ended before `planned`, if it did
    _failures_in_a_row: int = 0

    def note(self, failure: str | None) -> None:
        """Count one finished call: None when it succeeded, else its short description."""
        if failure is None:
            self.succeeded += 1
            self._failures_in_a_row = 0
            return
        self.failed += 1
        self._failures_in_a_row += 1
        self.failures[failure.split(":", 1)[0]] += 1
        if self.first_failure is None:
            self.first_failure = failure

    def gives_up(self, after: int) -> bool:
        """True once `after` calls failed in a row and none ever succeeded."""
        return not self.succeeded and self._failures_in_a_row >= after


def plan_calls(
    target: ModelTarget, prompts: Sequence[Prompt], settings: ProbeSettings
) -> list[CallSpec]:
    """The calls for one model: `requests` cycling through the prompts, then the repeats.

    Every model gets the same list, so every model answers the same prompts in the same order.
    """

    def spec(prompt: Prompt, temperature: float | None) -> CallSpec:
        return CallSpec(
            target,
            prompt.messages,
            stream=settings.stream,
            temperature=temperature,
            max_tokens=prompt.max_tokens or settings.max_tokens,
            logprobs=settings.logprobs and target.protocol == "openai",
        )

    calls = [spec(prompts[i % len(prompts)], None) for i in range(settings.requests)]
    repeated = prompts[: settings.repeat_prompts]
    for _ in range(settings.repeat):
        calls.extend(spec(prompt, 0.0) for prompt in repeated)
    return calls


class ProbeRunner:
    """Runs every model's calls at once, each model with its own `concurrency` slots.

    All models run at the same time, so drift in the network or the provider during the
    run hits all of them. A model that fails `give_up_after` times in a row before any
    success is given up (wrong key, unknown model, endpoint down); the others go on.
    """

    def __init__(
        self,
        caller: SDKCaller,
        probes: Sequence[ProbeTarget],
        prompts: Sequence[Prompt],
        settings: ProbeSettings,
        *,
        budget: BudgetGate | None = None,
        on_call_done: Callable[[ModelRun], None] | None = None,
    ) -> None:
        self.caller = caller
        self.settings = settings
        self.budget = budget
        self.on_call_done = on_call_done
        self.runs: list[ModelRun] = []
        self._plans: dict[str, deque[CallSpec]] = {}
        for probe in probes:
            plan = plan_calls(probe.target, prompts, settings) if probe.target else []
            self.runs.append(ModelRun(probe, 0 if probe.problem else len(plan)))
            if probe.problem is None:
                self._plans[probe.label] = deque(plan)

    async def warm_up(self) -> None:
        """Send each model's first `warmup_calls` calls, unmeasured (failures still count)."""
        count = self.settings.warmup_calls
        await self._phase({label: deque(list(plan)[:count]) for label, plan in self._plans.items()})

    async def run(self) -> list[ModelRun]:
        """Send everything (or until the budget or failures stop it); the runs, in order."""
        await self._phase(self._plans, measured=True)
        for run in self.runs:
            if run.stopped is None and run.planned and run.started < run.planned:
                run.stopped = "budget reached" if self.budget and self.budget.exhausted else None
        return self.runs

    async def _phase(self, plans: dict[str, deque[CallSpec]], measured: bool = False) -> None:
        """Every runnable model's `concurrency` lanes at once, until their plans are done."""
        runnable = [run for run in self.runs if run.probe.label in plans]
        for run in runnable:
            assert run.probe.target is not None
            self.caller.prepare(run.probe.target, run.probe.api_key)
        await asyncio.gather(
            *(
                self._lane(run, plans[run.probe.label], measured)
                for run in runnable
                for _ in range(self.settings.concurrency)
            )
        )

    async def _lane(self, run: ModelRun, plan: deque[CallSpec], measured: bool) -> None:
        key = run.probe.metrics_key
        while plan and run.stopped is None:
            if self.budget is not None and not await self.budget.admit(key):
                return
            if not plan or run.stopped is not None:  # emptied or ended while waiting
                if self.budget is not None:
                    await self.budget.release(key)
                return
            spec = plan.popleft()
            if measured:
                run.started += 1
            else:
                run.warmed += 1
            try:
                failure = await self._send(spec, run.probe.api_key)
            finally:
                if self.budget is not None:
                    await self.budget.finished(key)
            run.note(failure)
            if run.gives_up(self.settings.give_up_after):
                run.stopped = f"gave up after {run.failed} failed calls and no success"
            if self.on_call_done is not None:
                self.on_call_done(run)

    async def _send(self, spec: CallSpec, api_key: str) -> str | None:
        """None when the call succeeded, else a short description of the failure."""
        try:
            await self.caller.send(spec, api_key)
        except Exception as exc:  # one model's failure, whatever it is, never stops the others
            return describe_failure(exc)
        return None


def describe_failure(exc: BaseException) -> str:
    """`<kind>: <detail>`, where kind is an HTTP status, `connection` or `timeout`."""
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    if isinstance(exc, aiohttp.ClientResponseError) or status:
        text = f"{status}: {_error_message(exc)}"
    elif isinstance(exc, asyncio.TimeoutError) or "Timeout" in type(exc).__name__:
        text = f"timeout: {exc or 'no answer in time'}"
    elif "Connection" in type(exc).__name__ or isinstance(exc, aiohttp.ClientError):
        text = f"connection: cannot reach the sidecar ({exc})"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:MAX_FAILURE_TEXT]


def _error_message(exc: BaseException) -> str:
    """The provider's own error message when the SDK parsed one, else the exception's text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        message = inner.get("message") if isinstance(inner, dict) else body.get("message")
        if isinstance(message, str) and message:
            return message
    return getattr(exc, "message", None) or str(exc)
