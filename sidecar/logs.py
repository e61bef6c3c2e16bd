"""JSON-lines logging for the sidecar's own messages."""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import orjson

# LogRecord attributes that are not `extra=` fields.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JSONFormatter(logging.Formatter):
    """Formats a log record as one JSON object: time, level, logger, message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class LogThrottle:
    """Lets a message through at most once per `interval` seconds for each key (e.g. an
    upstream and a reason), on a monotonic clock; remembers at most `max_keys` keys."""

    def __init__(
        self,
        interval: float,
        *,
        max_keys: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._max_keys = max_keys
        self._clock = clock
        self._last: OrderedDict[Hashable, float] = OrderedDict()

    def allow(self, key: Hashable) -> bool:
        """True when no message for `key` went out within the interval (and note this one)."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self._max_keys:
            self._last.popitem(last=False)
        return True


def is_client_protocol_error(record: logging.LogRecord) -> bool:
    """Whether a record is aiohttp reporting a malformed request it already answered with 4xx."""
    # Only the simulator and the demo serve with aiohttp: a sidecar never imports it for this.
    if record.exc_info is None or "aiohttp.http_exceptions" not in sys.modules:
        return False
    from aiohttp.http_exceptions import HttpProcessingError

    exc = record.exc_info[1] if record.exc_info else None
    return isinstance(exc, HttpProcessingError)


class ClientErrorFilter(logging.Filter):
    """Turns aiohttp's tracebacks for malformed client requests into one-line warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        if is_client_protocol_error(record):
            exc = record.exc_info[1] if record.exc_info else None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "malformed request refused: %s", (str(exc).splitlines()[0],)
            record.exc_info = None
        return True


def setup_logging(level: str = "info") -> None:
    """Send every log record to stderr as a JSON line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(ClientErrorFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access logger would log raw request lines; the sidecar has its own.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
