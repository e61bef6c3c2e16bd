"""SigV4 signatures recomputed with botocore's own signer.

Imported only when a signed request arrives, so the simulator runs without botocore
installed for everything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials


class _ClaimedHeadersSigV4(SigV4Auth):  # type: ignore[misc]  # botocore ships no types
    """botocore's SigV4 signer over exactly the headers the client says it signed.

    botocore picks the headers itself (all but a few, adding `host` when missing); a server
    must instead use the client's `SignedHeaders` list, as AWS does.
    """

    def __init__(
        self, credentials: Any, service: str, region: str, signed_headers: Sequence[str]
    ) -> None:
        super().__init__(credentials, service, region)
        self.signed_header_names = tuple(signed_headers)

    def headers_to_sign(self, request: Any) -> Any:
        chosen = HTTPHeaders()
        for name in self.signed_header_names:
            for value in request.headers.get_all(name) or ():
                chosen[name] = value  # HTTPHeaders appends: repeated headers stay repeated
        return chosen


def signature(
    *,
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    signed_headers: Sequence[str],
    timestamp: str,
    access_key: str,
    secret_key: str,
    session_token: str | None,
    region: str,
    service: str,
) -> str:
    """The hex SigV4 signature of a request as received (`url` keeps its raw, encoded path)."""
    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        request.headers[name] = value
    request.context["timestamp"] = timestamp
    signer = _ClaimedHeadersSigV4(
        Credentials(access_key, secret_key, session_token), service, region, signed_headers
    )
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))
