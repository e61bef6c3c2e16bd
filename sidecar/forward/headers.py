"""Header rules of the forwarding path: hop-by-hop removal, encodings, the retry count header."""

from __future__ import annotations

from collections.abc import Iterable

from multidict import CIMultiDict, CIMultiDictProxy

Headers = CIMultiDict[str] | CIMultiDictProxy[str]

# Connection-specific fields: each describes one hop (app to sidecar, or sidecar to upstream),
# so a proxy never passes them on.
HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    )
)
# Fields of the app's request to the sidecar: the upstream client writes its own Host and
# Content-Length, and the body has already been read (nothing to Expect).
_NOT_FORWARDED_UPSTREAM = HOP_BY_HOP | {"host", "content-length", "expect"}
# The listener writes the response's framing (Content-Length or chunked) itself.
_NOT_FORWARDED_DOWNSTREAM = HOP_BY_HOP | {"content-length"}


def _connection_tokens(headers: Headers) -> set[str]:
    tokens: set[str] = set()
    for value in headers.getall("Connection", ()):
        tokens.update(token.strip().lower() for token in value.split(","))
    return tokens


def upstream_request_headers(
    headers: Headers, accepted_encodings: Iterable[str], strip: str | None = None
) -> CIMultiDict[str]:
    """The app's headers as sent upstream: no hop-by-hop fields, only encodings we can decode,
    and without `strip` (a lower-case name: the attribution header, when configured so)."""
    drop = _NOT_FORWARDED_UPSTREAM if strip is None else _NOT_FORWARDED_UPSTREAM | {strip}
    if "Connection" in headers:
        drop = drop | _connection_tokens(headers)
    result = CIMultiDict([item for item in headers.items() if item[0].lower() not in drop])
    if "Accept-Encoding" in result:
        result["Accept-Encoding"] = filter_accept_encoding(
            result["Accept-Encoding"], accepted_encodings
        )
    return result


def downstream_response_headers(headers: Headers) -> CIMultiDict[str]:
    """The upstream's response headers as sent to the app: no hop-by-hop or length fields."""
    drop = _NOT_FORWARDED_DOWNSTREAM
    if "Connection" in headers:
        drop = drop | _connection_tokens(headers)
    return CIMultiDict([item for item in headers.items() if item[0].lower() not in drop])


def filter_accept_encoding(value: str, accepted: Iterable[str]) -> str:
    """Accept-Encoding without codings the sidecar could not decode to read usage."""
    allowed = set(accepted) | {"identity"}
    kept = [
        item.strip()
        for item in value.split(",")
        if item.strip() and item.split(";")[0].strip().lower() in allowed
    ]
    return ", ".join(kept) if kept else "identity"


def int_header(headers: CIMultiDict[str], name: str) -> int:
    """A non-negative integer header's value; 0 when absent or not a number."""
    value = headers.get(name)
    if value is None:
        return 0
    try:
        return max(0, int(value))
    except ValueError:
        return 0
