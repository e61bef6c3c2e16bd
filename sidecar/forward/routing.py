"""Which upstream a request goes to, and with which wire protocol, decided by its path (and,
for paths no protocol claims, by a credential header only one provider uses).

A request whose path or credential belongs to a known provider goes to that provider's
upstream; when none is configured it is refused locally (`Route.refusal`), never sent to
another provider: one provider's credential must never reach another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from sidecar.aws.credentials import AwsCredentials
from sidecar.aws.signer import SigV4Signer
from sidecar.config.models import AWS_SIGNING_SERVICES, BUILTIN_UPSTREAMS, SidecarConfig
from sidecar.protocols.interface import WireProtocol
from sidecar.protocols.registry import default_protocols, protocol_for_path

# Routes are cached per path; apps use a handful of paths, so this bound is rarely reached.
MAX_CACHED_PATHS = 1024
# The status of a call refused because the upstream it needs is not configured.
REFUSED_STATUS = 400
_NO_DEPLOYMENTS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Upstream:
    """A configured upstream: its name, base URL, the wire protocol it speaks and the
    `gen_ai.provider.name` its calls report."""

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
    provider: str = ""
    # Deployment names (or aliases) → the model they serve, for calls whose answer names none.
    deployments: Mapping[str, str] = field(default_factory=lambda: _NO_DEPLOYMENTS, compare=False)

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
    # Why the request is answered locally instead (its provider's upstream is not
    # configured); None for a request to forward.
    refusal: str | None = None
    # No protocol claims the path: it went to `default_upstream` as operation `other`.
    unclaimed: bool = False


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
        protocol = protocols[item.protocol]
        result[name] = Upstream(
            name=name,
            base_url=item.url,
            protocol=protocol,
            path_prefix=item.path_prefix,
            host=parts.hostname or "",
            port=port,
            tls=tls,
            base_path=parts.path.rstrip("/"),
            signer=signer,
            provider=config.provider_of(name) or protocol.provider_name,
            deployments=MappingProxyType(dict(item.deployments)),
        )
    return result


def missing_upstream(protocol: WireProtocol) -> Upstream:
    """The stand-in for a built-in upstream that is not configured (never connected to)."""
    name = protocol.name
    row = BUILTIN_UPSTREAMS.get(name)
    provider = row.provider if row is not None else protocol.provider_name
    return Upstream(name, "", protocol, "", "", 0, provider=provider)


def refusal_message(protocol: WireProtocol, path: str, by: str) -> str:
    """What the app is told when `protocol`'s upstream is not configured; `by` says how the
    request was recognised as that provider's."""
    name = protocol.name
    row = BUILTIN_UPSTREAMS.get(name)
    url = row.example_url if row is not None else "URL"
    return (
        f"model-sidecar: no upstream {name!r} is configured for {path} ({by}); it is not "
        f"sent to another provider. Start with --upstream {name}={url} (or add upstreams."
        f"{name} to the config file)"
    )


class Router:
    """Maps a request to a Route: prefixed upstreams first, then the path each protocol
    claims, then (for unclaimed paths) a provider's own credential header, then
    `default_upstream`."""

    def __init__(self, config: SidecarConfig, upstreams: dict[str, Upstream]) -> None:
        self._prefixed = sorted(
            (u for u in upstreams.values() if u.path_prefix),
            key=lambda u: len(u.path_prefix),
            reverse=True,
        )
        self._by_protocol: dict[str, Upstream | None] = {}
        for name in default_protocols():
            serving = config.protocol_upstream(name)
            self._by_protocol[name] = upstreams[serving] if serving is not None else None
        self._default = upstreams[config.default_upstream]
        self._cache: dict[str, Route] = {}

    def route(self, path: str, headers: Mapping[str, str] | None = None, query: str = "") -> Route:
        """The route for a request path (percent-encoded, without the query); cached per
        path. For a path no protocol claims, a credential header (or query key) that only
        one provider uses sends the request to that provider's upstream."""
        route = self._cache.get(path)
        if route is None:
            if len(self._cache) >= MAX_CACHED_PATHS:
                self._cache.clear()
            route = self._cache[path] = self._resolve(path)
        if route.unclaimed and headers is not None:
            return self._by_credentials(route, headers, query)
        return route

    def _resolve(self, path: str) -> Route:
        for upstream in self._prefixed:
            prefix = upstream.path_prefix
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                rest = path[len(prefix) :] or "/"
                return Route(upstream, upstream.protocol, rest)
        protocol = protocol_for_path(path)
        if protocol is not None:
            return self._to_protocol(protocol, path, "its path is that provider's API")
        return Route(self._default, self._default.protocol, path, unclaimed=True)

    def _to_protocol(self, protocol: WireProtocol, path: str, by: str) -> Route:
        upstream = self._by_protocol[protocol.name]
        if upstream is None:
            refusal = refusal_message(protocol, path, by)
            return Route(missing_upstream(protocol), protocol, path, refusal=refusal)
        # The upstream's own protocol object carries what its config says.
        return Route(upstream, upstream.protocol, path)

    def _by_credentials(self, route: Route, headers: Mapping[str, str], query: str) -> Route:
        default_protocol = route.upstream.protocol
        if default_protocol.carries_credentials(headers, query):
            return route
        for protocol in default_protocols().values():
            if protocol.carries_credentials(headers, query):
                by = "it carries a credential of that provider"
                routed = self._to_protocol(protocol, route.path, by)
                return Route(
                    routed.upstream, routed.protocol, route.path, routed.refusal, unclaimed=True
                )
        return route


def origin_path(raw_path: str) -> str:
    """The path of a request target; an absolute-form target keeps only its path."""
    if raw_path.startswith("/"):
        return raw_path
    scheme_end = raw_path.find("://")
    if scheme_end < 0:
        return "/" + raw_path
    slash = raw_path.find("/", scheme_end + 3)
    return raw_path[slash:] if slash >= 0 else "/"
