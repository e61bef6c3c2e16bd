"""Who may call a control endpoint of the admin listener.

Only GET (and HEAD) of the read-only endpoints is open to any peer. Every other request — any
other method, any path under /experiments/, any path not known to be read-only — is a control
request, checked here before routing, so an endpoint added later is protected by construction
and an unknown action answers 401/403, never 404:

- with a token configured: `Authorization: Bearer <token>`, compared in constant time; else 401
  with `WWW-Authenticate: Bearer`;
- without one: only a loopback peer (the pod's own containers, `kubectl port-forward`,
  `kubectl exec`); anyone else gets 403 saying how to set a token.

The peer is the socket's, never a header: `X-Forwarded-For` and friends are not trusted.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable, Mapping

from sidecar.admin.reply import Reply, error_reply
from sidecar.admin.token import TOKEN_FILE_ENV, TOKEN_FILE_SETTING
from sidecar.logs import LogThrottle

log = logging.getLogger("sidecar.admin.auth")

# GET/HEAD of these paths is open to any peer (Prometheus, the kubelet's probes, humans).
# `/` and `/api/summary` are the comparison page (sidecar/ui/): it shows what /metrics and
# /status show, and its control buttons call the control endpoints with the token typed in.
READ_ONLY_PATHS = frozenset({"/metrics", "/healthz", "/readyz", "/status", "/", "/api/summary"})
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})
REALM = "model-sidecar admin"
NO_TOKEN_MESSAGE = (
    "control endpoints answer loopback peers only when no admin token is set: put a token in a "
    f"file (e.g. a mounted Secret) and name it in {TOKEN_FILE_SETTING} or {TOKEN_FILE_ENV}, "
    "then send Authorization: Bearer <token>"
)
# Refused calls are logged at most once a minute per peer and reason (a scanner cannot flood
# the log).
REFUSAL_LOG_INTERVAL_SECONDS = 60.0


def is_control_request(method: str, path: str) -> bool:
    """Whether a request needs the token (or a loopback peer): all but reads of READ_ONLY_PATHS."""
    return method not in READ_ONLY_METHODS or path not in READ_ONLY_PATHS


def is_loopback(host: str) -> bool:
    """Whether a peer address is loopback: 127.0.0.0/8, ::1, or IPv4-mapped 127.x (::ffff:…)."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value or None


def _refusal(status: int, message: str) -> Reply:
    if status == 401:
        return error_reply(status, message, ("WWW-Authenticate", f'Bearer realm="{REALM}"'))
    return error_reply(status, message)


class ControlAuth:
    """The check in front of every request of the admin listener, before routing."""

    def __init__(self, token: Callable[[], str | None]) -> None:
        # The current token (None: none configured); called per control request.
        self._token = token
        self._refusals = LogThrottle(REFUSAL_LOG_INTERVAL_SECONDS)

    def refusal(
        self, method: str, path: str, headers: Mapping[str, str], peer: str | None
    ) -> Reply | None:
        """The answer to a request that may not call (401 or 403), or None when it may:
        read-only requests always may, control requests with the token or from loopback.
        `peer` is the socket's address, never a header."""
        if not is_control_request(method, path):
            return None
        expected = self._token()
        if expected is None:
            if peer is not None and is_loopback(peer):
                return None
            reason = "no admin token is set and the peer is not loopback"
            self._log_refusal(method, path, peer, reason)
            return _refusal(403, NO_TOKEN_MESSAGE)
        presented = bearer_token(headers.get("Authorization", ""))
        if presented is not None and hmac.compare_digest(
            presented.encode("utf-8", "surrogateescape"), expected.encode()
        ):
            return None
        reason = "no bearer token" if presented is None else "wrong bearer token"
        self._log_refusal(method, path, peer, reason)
        return _refusal(
            401, f"this control endpoint needs Authorization: Bearer <token> ({reason})"
        )

    def _log_refusal(self, method: str, path: str, peer: str | None, reason: str) -> None:
        if self._refusals.allow((peer, reason)):
            log.warning(
                "admin: refused %s %s from %s: %s",
                method,
                path,
                peer or "an unknown peer",
                reason,
            )
