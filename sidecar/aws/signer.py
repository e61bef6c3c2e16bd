"""SigV4 signing of forwarded requests with the pod's credentials, by botocore's own signer.

An app's SigV4 signature covers the Host it called — the sidecar's — so it cannot survive the
hop to AWS. The sidecar drops it and signs the request again, exactly as it will go upstream
(method, path, query, headers, body), for the upstream's host, service and region.
"""

from __future__ import annotations

import asyncio
from typing import Any

from multidict import CIMultiDict

from sidecar.aws.credentials import AwsCredentials

# The app's signature and what goes with it; replaced by the sidecar's own.
APP_SIGNATURE_HEADERS = (
    "Authorization",
    "X-Amz-Date",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
)
_SIGNATURE_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")
# Hashing a body this large would hold the event loop for a millisecond or more: sign in a thread.
THREAD_BODY_BYTES = 256 * 1024


def host_header(host: str, port: int, tls: bool) -> str:
    """The Host header the upstream client sends (the port only when not the scheme's default)."""
    name = f"[{host}]" if ":" in host else host
    return name if port == (443 if tls else 80) else f"{name}:{port}"


class SigV4Signer:
    """Signs the requests to one upstream for an AWS service and region."""

    def __init__(
        self,
        credentials: AwsCredentials,
        *,
        service: str,
        region: str,
        host: str,
        port: int,
        tls: bool,
    ) -> None:
        self.credentials = credentials
        self.service = service
        self.region = region
        self.host_header = host_header(host, port, tls)
        self._origin = f"{'https' if tls else 'http'}://{self.host_header}"

    async def sign(self, method: str, target: str, headers: CIMultiDict[str], body: bytes) -> None:
        """Replace the app's signature in `headers` with one for this upstream.

        Left as the app sent them: a request with a Bedrock API key (`Authorization: Bearer`,
        not bound to a host), and every request while the pod has no credentials."""
        if headers.get("Authorization", "")[:7].lower() == "bearer ":
            return
        credentials = await self.credentials.current()
        if credentials is None:
            return
        for name in APP_SIGNATURE_HEADERS:
            headers.popall(name, None)
        if len(body) > THREAD_BODY_BYTES:
            signature = await asyncio.to_thread(
                self.signature, method, target, headers, body, credentials
            )
        else:
            signature = self.signature(method, target, headers, body, credentials)
        headers.extend(signature)

    def signature(
        self,
        method: str,
        target: str,
        headers: CIMultiDict[str],
        body: bytes,
        credentials: Any,
    ) -> list[tuple[str, str]]:
        """The signature headers of a request to `target` (path and query, as sent) with
        `headers` and `body`, signed with `credentials`."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=self._origin + target, data=body)
        request.headers["Host"] = self.host_header
        for name, value in headers.items():
            request.headers[name] = value  # botocore's headers append: repeated ones stay
        SigV4Auth(credentials, self.service, self.region).add_auth(request)
        return [
            (name, request.headers[name])
            for name in _SIGNATURE_HEADERS
            if request.headers.get(name) is not None
        ]
