"""Saying plainly when an app's base URL looks wrong: a path no protocol claims that the
upstream answers with 404 gets one log line per path prefix, with a likely cause.

The app still gets the upstream's answer unchanged; this only explains it to the operator.
"""

from __future__ import annotations

import logging

from sidecar.protocols.registry import protocol_for_path

log = logging.getLogger("sidecar.forward.misroute")

# Distinct path prefixes hinted about; past this, no more hints (bounded memory).
MAX_HINTED_PREFIXES = 256
# Version segments a base URL may have lost, in the order they are tried.
_LOST_SEGMENTS = ("/v1", "/v1beta")


def likely_cause(path: str) -> str:
    """A guess at why no known API lives at `path`."""
    for segment in _LOST_SEGMENTS:
        if protocol_for_path(segment + path) is not None:
            return f"did the base URL lose its {segment}?"
    for segment in _LOST_SEGMENTS:
        doubled = segment + segment + "/"
        if path.startswith(doubled) and protocol_for_path(path[len(segment) :]) is not None:
            return f"does the base URL end in {segment} that the client adds again?"
    return "check the app's base URL"


def path_prefix(path: str) -> str:
    """The first segment of a path (`/chat` of `/chat/completions`)."""
    end = path.find("/", 1)
    return path if end < 0 else path[:end]


class MisrouteHints:
    """Logs one hint per path prefix that no protocol claims and the upstream does not know."""

    def __init__(self) -> None:
        self._hinted: set[str] = set()

    def not_found(self, path: str, upstream: str) -> None:
        """The upstream answered 404 to `path` (no protocol claims it): hint once per prefix."""
        prefix = path_prefix(path)
        if prefix in self._hinted or len(self._hinted) >= MAX_HINTED_PREFIXES:
            return
        self._hinted.add(prefix)
        log.warning(
            "no known API at %s — %s (upstream %r answered 404; the app got its answer "
            "unchanged, recorded as operation other)",
            path,
            likely_cause(path),
            upstream,
            extra={"path": path, "upstream": upstream},
        )
