"""Why an upstream could not be reached, logged: the metrics say only `connection_error`, the app
only "could not be reached"; the operator needs the reason (a DNS failure, a refused
connection, a certificate the trust store does not accept) to fix it.

One warning per upstream and reason at most once a minute, so an outage under load logs a few
lines, not one per call. The reason is the sidecar's own short wording of the cause (never a
URL with its query, never a header).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
import time
from collections.abc import Callable

from sidecar.http1.errors import UpstreamDisconnected, UpstreamError
from sidecar.logs import LogThrottle

log = logging.getLogger("sidecar.forward.unreachable")

LOG_INTERVAL_SECONDS = 60.0
# asyncio joins the errors of every address it tried into one message; the first errno says it.
_ERRNO_IN_MESSAGE = re.compile(r"\[Errno (\d+)\]")
_MAX_CHAIN = 8


def unreachable_reason(error: BaseException, host: str = "") -> str:
    """A short reason an upstream could not be reached, from `error` and the errors it chains,
    e.g. "certificate verify failed: self-signed certificate"."""
    cause: BaseException | None = error
    for _ in range(_MAX_CHAIN):
        if cause is None:
            break
        reason = _reason_of(cause, host)
        if reason:
            return reason
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, UpstreamError) and str(error):
        # The client's own words: they name the origin (scheme, host, port) and nothing more.
        return str(error)
    return type(error).__name__


def _reason_of(error: BaseException, host: str) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = error.verify_message or error.reason or "unknown reason"
        return f"certificate verify failed: {detail}"
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake failed: {error.reason or error.strerror or error}"
    if isinstance(error, socket.gaierror):
        name = f" of {host}" if host else ""
        return f"DNS lookup{name} failed: {error.strerror or error}"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError):
        return "connecting timed out (limits.connect_timeout_seconds)"
    if isinstance(error, UpstreamDisconnected):
        return "the upstream closed the connection before answering"
    if isinstance(error, OSError) and not isinstance(error, UpstreamError):
        number = error.errno
        if number is None:
            found = _ERRNO_IN_MESSAGE.search(str(error))
            number = int(found.group(1)) if found else None
        if number is not None:
            return os.strerror(number).lower()
    return ""


class UnreachableLog:
    """Logs why an upstream could not be reached, at most once per interval per reason."""

    def __init__(
        self,
        interval: float = LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._throttle = LogThrottle(interval, clock=clock)

    def note(self, upstream: str, host: str, port: int | None, error: BaseException) -> None:
        """A call to `upstream` at host:port failed before any response with `error`."""
        reason = unreachable_reason(error, host)
        if not self._throttle.allow((upstream, reason)):
            return
        server = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        log.warning(
            "upstream %r (%s) could not be reached: %s (logged at most once a minute per "
            "upstream and reason)",
            upstream,
            server,
            reason,
            extra={"upstream": upstream, "server": server, "reason": reason},
        )
