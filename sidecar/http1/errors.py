"""The upstream client's errors."""

from __future__ import annotations


class UpstreamError(Exception):
    """Base of the client's errors."""


class UpstreamConnectError(UpstreamError):
    """Could not connect: refused, DNS, TLS handshake, connect timeout, or the pool is closed."""


class UpstreamDisconnected(UpstreamError):
    """Connection closed/reset (or the head was malformed) before the complete response head."""


class UpstreamPayloadError(UpstreamError):
    """Connection dropped (or the body was malformed) after the head, before the body's end."""
