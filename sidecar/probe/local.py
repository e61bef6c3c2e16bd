"""A sidecar for the probe's duration, on its own thread and event loop.

The SDK clients' work (JSON parsing, pydantic models) would otherwise run on the same
loop as the proxy and sit inside the latencies it measures.
"""

from __future__ import annotations

import asyncio
import threading

from sidecar.config.models import SidecarConfig


class LocalSidecar:
    """A `Sidecar` served from a background thread: `await start()`, URLs, `await stop()`."""

    def __init__(self, config: SidecarConfig) -> None:
        self.config = config
        self.proxy_url = ""
        self.admin_url = ""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    async def start(self) -> None:
        """Start the thread and wait until both listeners are bound (or starting failed)."""
        self._thread = threading.Thread(target=self._main, name="probe-sidecar", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._started.wait)
        if self._error is not None:
            await asyncio.to_thread(self._thread.join)
            raise self._error

    async def stop(self) -> None:
        """Stop the sidecar gracefully and wait for the thread to end."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from sidecar.app import Sidecar

        sidecar: Sidecar | None = None
        try:
            sidecar = Sidecar(self.config, environ={})  # no tracing: the probe reads metrics
            await sidecar.start()
        except Exception as exc:  # handed to the thread that waits in start()
            self._error = exc
            self._started.set()
            if sidecar is not None:
                await sidecar.stop()
            return
        self.proxy_url, self.admin_url = sidecar.proxy_url, sidecar.admin_url
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await sidecar.stop()
