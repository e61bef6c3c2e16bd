"""Feedback: request ids on every response, a bounded LRU from id to the call's model and arm,
and the `POST /_sidecar/feedback` endpoint of the proxy listener."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from sidecar.forward.requestid import REQUEST_ID_HEADER

FEEDBACK_PATH = "/_sidecar/feedback"
OUTCOMES = ("accepted", "edited", "rejected", "hallucination")
MAX_FEEDBACK_BYTES = 64 * 1024
_FIELDS = frozenset(("request_id", "outcome", "edit_seconds", "score"))


class CallArm(NamedTuple):
    """What feedback needs to know of a call: its provider, model and experiment arm."""

    provider: str
    model: str
    experiment: str
    variant: str


class FeedbackStore:
    """The last `capacity` request ids and their calls (least recently issued forgotten first)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._calls: OrderedDict[str, CallArm] = OrderedDict()

    def __len__(self) -> int:
        return len(self._calls)

    def remember(self, request_id: str, call: CallArm) -> None:
        """Remember a call by its id, forgetting the oldest past capacity."""
        calls = self._calls
        calls[request_id] = call
        if len(calls) > self.capacity:
            calls.popitem(last=False)

    def get(self, request_id: str) -> CallArm | None:
        """The call of a request id, or None when unknown or already forgotten."""
        return self._calls.get(request_id)


@dataclass(frozen=True, slots=True)
class Feedback:
    """One validated feedback message."""

    request_id: str
    outcome: str
    edit_seconds: float | None
    score: float | None


class FeedbackError(Exception):
    """A feedback message that cannot be used: an HTTP status and a clear message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _number(data: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FeedbackError(400, f"{name} must be a number")
    if not low <= value <= high:
        raise FeedbackError(400, f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return float(value)


def parse_feedback(raw: bytes) -> Feedback:
    """The feedback in a request body; FeedbackError (400) explains what is wrong."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FeedbackError(400, "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise FeedbackError(400, "the body must be a JSON object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise FeedbackError(
            400, f"unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(_FIELDS))}"
        )
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise FeedbackError(400, f"request_id must be the {REQUEST_ID_HEADER} of a response")
    outcome = data.get("outcome")
    if outcome not in OUTCOMES:
        raise FeedbackError(400, f"outcome must be one of {', '.join(OUTCOMES)}")
    edit_seconds = _number(data, "edit_seconds", 0.0, 7 * 86400.0)
    score = _number(data, "score", 0.0, 1.0)
    return Feedback(request_id, str(outcome), edit_seconds, score)


class FeedbackReply(NamedTuple):
    """What the feedback endpoint answers: a status, a JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


def _error(status: int, message: str) -> FeedbackReply:
    return FeedbackReply(status, {"error": {"message": message}})


def handle_feedback(
    method: str,
    raw: bytes,
    store: FeedbackStore | None,
    record: Callable[[CallArm, Feedback], None],
) -> FeedbackReply:
    """`POST /_sidecar/feedback`: find the call by its request id and count the outcome."""
    if store is None:
        return _error(404, "feedback is disabled (feedback.enabled: false)")
    if method != "POST":
        return FeedbackReply(405, {"error": {"message": "use POST"}}, (("Allow", "POST"),))
    if len(raw) > MAX_FEEDBACK_BYTES:
        return _error(413, f"feedback bodies are at most {MAX_FEEDBACK_BYTES} bytes")
    try:
        feedback = parse_feedback(raw)
    except FeedbackError as exc:
        return _error(exc.status, str(exc))
    call = store.get(feedback.request_id)
    if call is None:
        return _error(
            404,
            f"unknown request_id {feedback.request_id[:80]!r}: not issued by this sidecar, or "
            f"expired (only the last {store.capacity} calls are remembered)",
        )
    record(call, feedback)
    return FeedbackReply(
        200,
        {
            "recorded": feedback.outcome,
            "model": call.model,
            "experiment": call.experiment,
            "variant": call.variant,
        },
    )
