"""The reference: a bare aiohttp pass-through with no telemetry, streaming chunk by chunk.

What plain Python costs: `python -m bench.passthrough --listen 127.0.0.1:0 --upstream URL`.
On uvloop, like the sidecar, with aiohttp for both sides; no parsing, no metrics, no spans.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping

import aiohttp
from aiohttp import web

HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host")
) | {"proxy-authorization", "proxy-authenticate", "content-length"}


def _forwardable(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP]


async def serve(host: str, port: int, upstream: str) -> None:
    """Forward every request to `upstream` until cancelled."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
    )

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        async with session.request(
            request.method,
            upstream + request.raw_path,
            headers=_forwardable(request.headers),
            data=body or None,
            allow_redirects=False,
        ) as upstream_response:
            response = web.StreamResponse(status=upstream_response.status)
            response.headers.extend(_forwardable(upstream_response.headers))
            if upstream_response.content_length is not None:
                response.content_length = upstream_response.content_length
            await response.prepare(request)
            async for data in upstream_response.content.iter_any():
                await response.write(data)
            await response.write_eof()
            return response

    runner = web.ServerRunner(web.Server(handle, access_log=None), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0]
    print(f"listening on http://{bound[0]}:{bound[1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await session.close()


def main() -> None:
    """`python -m bench.passthrough`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:8799")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    import uvloop

    uvloop.run(serve(host, int(port), args.upstream.rstrip("/")))


if __name__ == "__main__":
    main()
