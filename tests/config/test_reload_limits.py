"""A reload applies client-side limits too: the request-head timeout, the idempotency window."""

from __future__ import annotations

import asyncio
import time

from sidecar.config.models import SidecarConfig
from tests.helpers.sidecar import SidecarFactory


async def test_reload_changes_the_head_timeout_and_the_idempotency_window(
    sidecar_factory: SidecarFactory,
) -> None:
    sidecar = await sidecar_factory({"limits": {"client_read_timeout_seconds": 30}})
    changed = SidecarConfig.model_validate(
        {
            **sidecar.config.model_dump(mode="json"),
            "limits": {**sidecar.config.limits.model_dump(), "client_read_timeout_seconds": 0.4},
            "retries": {"idempotency_window_seconds": 7, "idempotency_max_keys": 11},
        }
    )
    sidecar.reload(changed)
    window = sidecar.enrichment.client_retries.window
    assert (window.window_seconds, window.max_keys) == (7, 11)

    host, port = sidecar.proxy_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    started = time.monotonic()
    reply = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    # Closed after the reloaded 0.4 s timeout, not the 30 s one the sidecar started with.
    assert reply == b"" or reply.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 2
