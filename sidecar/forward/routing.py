"""Which upstream a request goes to, and with which wire protocol, decided by its path alone."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sidecar.aws.credentials import AwsCredentials
from sidecar.aws.signer import SigV4Signer
from sidecar.config.models import AWS_SIGNING_SERVICES, SidecarConfig
from sidecar.protocols.interface import WireProtocol
from sidecar.protocols.registry import default_protocols, protocol_for_path

# Routes are cached per path; apps use a handful of paths, so this bound is rarely reached.
MAX_CACHED_PATHS = 1024


@dataclass(frozen=True, slots=True)
class Upstream:
    """A configured upstream: its name, base URL and the wire protocol it speaks."""

    name: str
    base_url: str
    protocol: WireProtocol
    path_prefix: str
    host: str
    port: int
    tls: bool = False
    base_path: str = ""
    # Signs every request with the pod's AWS credentials (None: the app's own go upstream).
    signer: SigV4Signer | None = None

    def target_for(self, path: str, query: str) -> str:
        """The origin-form request target for an already-encoded path and query."""
        target = self.base_path + path
        return f"{target}?{query}" if query else target


@dataclass(frozen=True, slots=True)
class Route:
    """Where one request goes: the upstream, the protocol that parses it, the path to send."""

    upstream: Upstream
    protocol: WireProtocol
    path: str


def build_upstreams(
    config: SidecarConfig, aws: AwsCredentials | None = None
) -> dict[str, Upstream]:
    """One Upstream per configured upstream; those of an AWS-signed protocol sign with `aws`."""
    protocols = default_protocols()
    result = {}
    for name, item in config.upstreams.items():
        parts = urlsplit(item.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        tls = parts.scheme == "https"
        service = AWS_SIGNING_SERVICES.get(item.protocol)
        signer = None
        if service is not None and aws is not None and item.aws_region is not None:
            signer = SigV4Signer(
                aws,
                service=service,
                region=item.aws_region,
                host=parts.hostname or "",
                port=port,
                tls=tls,
            )
        result[name] = Upstream(
            name=name,
            base_url=item.url,
            protocol=protocols[item.protocol],
            path_prefix=item.path_prefix,
            host=parts.hostname or "",
            port=port,
            tls=tls,
            base_path=parts.path.rstrip("/"),
            signer=signer,
        )
    return result


class Router:
    """Maps a request path to a Route: prefixed upstreams first, then the standard paths."""

    def __init__(self, config: SidecarConfig, upstreams: dict[str, Upstream]) -> None:
        self._prefixed = sorted(
            (u for u in upstreams.values() if u.path_prefix),
            key=lambda u: len(u.path_prefix),
            reverse=True,
        )
        self._by_protocol = {
            name: upstreams[config.protocol_upstream(name)] for name in default_protocols()
        }
        self._default = upstreams[config.default_upstream]
        self._cache: dict[str, Route] = {}

    def route(self, path: str) -> Route:
        """The route for a request path (percent-encoded, without the query); cached per path."""
        route = self._cache.get(path)
        if route is None:
            if len(self._cache) >= MAX_CACHED_PATHS:
                self._cache.clear()
            route = self._cache[path] = self._resolve(path)
        return route

    def _resolve(self, path: str) -> Route:
        for upstream in self._prefixed:
            prefix = upstream.path_prefix
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                rest = path[len(prefix) :] or "/"
                return Route(upstream, upstream.protocol, rest)
        protocol = protocol_for_path(path)
        if protocol is not None:
            return Route(self._by_protocol[protocol.name], protocol, path)
        return Route(self._default, self._default.protocol, path)


def origin_path(raw_path: str) -> str:
    """The path of a request target; an absolute-form target keeps only its path."""
    if raw_path.startswith("/"):
        return raw_path
    scheme_end = raw_path.find("://")
    if scheme_end < 0:
        return "/" + raw_path
    slash = raw_path.find("/", scheme_end + 3)
    return raw_path[slash:] if slash >= 0 else "/"
