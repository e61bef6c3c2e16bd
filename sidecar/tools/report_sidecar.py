"""Reading one sidecar's /metrics for `model-sidecar report URL`, with errors a person can act on
(the proxy port instead of the admin port, a URL without a scheme, nothing listening)."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from sidecar.config.models import split_host_port
from sidecar.forward.requestid import REQUEST_ID_HEADER

DEFAULT_ADMIN_PORT = split_host_port("127.0.0.1:9788")[1]


class MetricsSourceError(Exception):
    """The URL cannot give a sidecar's metrics; `usage` when the URL itself is the mistake."""

    def __init__(self, message: str, *, usage: bool) -> None:
        super().__init__(message)
        self.usage = usage


def metrics_url(given: str) -> str:
    """The /metrics URL of an admin URL as typed: `http://host:9788`, `host:9788` or a full
    /metrics URL. MetricsSourceError (usage) when it is not an http(s) URL."""
    text = given.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MetricsSourceError(
            f"expected the admin URL of a sidecar, e.g. http://127.0.0.1:{DEFAULT_ADMIN_PORT}, "
            f"got {given!r}",
            usage=True,
        )
    return text if parts.path.endswith("/metrics") else text.rstrip("/") + "/metrics"


def read_metrics(url: str, timeout: float = 10.0) -> str:
    """The exposition text at `url`; MetricsSourceError saying what went wrong."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.headers.get(REQUEST_ID_HEADER):
                raise _proxy_port(url)
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        if exc.headers.get(REQUEST_ID_HEADER):
            raise _proxy_port(url) from None
        raise MetricsSourceError(
            f"cannot read {url}: HTTP {exc.code} {exc.reason}", usage=False
        ) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise MetricsSourceError(f"cannot read {url}: {reason}", usage=False) from None


def _proxy_port(url: str) -> MetricsSourceError:
    # Every answer of the proxy listener carries the request id header; the admin listener's
    # never do. (An upstream such as vLLM may even answer /metrics with its own metrics.)
    return MetricsSourceError(
        f"{url} is the sidecar's proxy port, which forwards every path to a provider; "
        f"/metrics is served on the admin port (default {DEFAULT_ADMIN_PORT}, set by "
        "--admin-listen)",
        usage=True,
    )
