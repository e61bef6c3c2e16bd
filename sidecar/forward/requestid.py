"""The id the sidecar gives every call, sent to the app in a response header.

The app quotes it when it posts feedback about that call (experiments/feedback.py).
"""

from __future__ import annotations

import itertools
import os

REQUEST_ID_HEADER = "x-model-sidecar-request-id"


class RequestIds:
    """Unique request ids: a random per-process prefix and a counter (cheap on the call path)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter):x}"
