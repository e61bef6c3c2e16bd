"""200 Realtime sessions open at once through `model-sidecar serve` (a real process), each
with a response measured: every one is relayed and recorded, and the sidecar's resident
memory grows by a bounded, measured amount."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest

from tests.helpers.metrics import scrape, total
from tests.helpers.realtime import sdk_turn
from tests.helpers.sdk import API_KEY
from tests.helpers.serve import serve_process
from tests.helpers.simulator import RunningSimulator

SESSIONS = 200
# What 200 open sessions may add to the sidecar's resident memory (measured: a few MiB).
MAX_GROWTH_MIB = 48


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def hold_session(
    app: openai.AsyncOpenAI, opened: asyncio.Queue[int], release: asyncio.Event
) -> None:
    async with app.realtime.connect(model="gpt-realtime-mini") as connection:
        await connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        turn = await sdk_turn(connection, "One short answer, please.")
        await opened.put(turn.usage["output_tokens"])
        await release.wait()


@pytest.mark.slow
async def test_200_concurrent_sessions_with_bounded_memory(simulator: RunningSimulator) -> None:
    async with serve_process(simulator.url) as sidecar:
        pid = sidecar.process.pid
        app = openai.AsyncOpenAI(base_url=f"{sidecar.proxy}/v1", api_key=API_KEY, max_retries=0)
        # One session first: every module and the price data are loaded before measuring.
        release = asyncio.Event()
        release.set()
        await hold_session(app, asyncio.Queue(), release)
        before = rss_bytes(pid)

        opened: asyncio.Queue[int] = asyncio.Queue()
        release = asyncio.Event()
        sessions = [
            asyncio.create_task(hold_session(app, opened, release)) for _ in range(SESSIONS)
        ]
        async with asyncio.timeout(120):
            for _ in range(SESSIONS):
                assert await opened.get() > 0
        during = rss_bytes(pid)
        samples = await scrape(sidecar.admin)
        assert total(samples, "model_sidecar_realtime_sessions") == SESSIONS
        release.set()
        await asyncio.gather(*sessions)
        await app.close()

        async with asyncio.timeout(10):
            while (
                total(
                    samples := await scrape(sidecar.admin),
                    "model_sidecar_realtime_session_duration_seconds_count",
                )
                < SESSIONS + 1
            ):
                await asyncio.sleep(0.05)
        after = rss_bytes(pid)
        assert total(samples, "model_sidecar_realtime_sessions") == 0
        assert (
            total(
                samples, "model_sidecar_requests_total", gen_ai_operation_name="chat", outcome="ok"
            )
            == SESSIONS + 1
        )
        assert total(samples, "model_sidecar_realtime_session_duration_seconds_count",
                     error_type="") == SESSIONS + 1  # fmt: skip
        status, _ = await sidecar.stop()
        assert status == 0

    growth = (during - before) / 2**20
    print(
        f"\nsidecar RSS: {before / 2**20:.1f} MiB before, {during / 2**20:.1f} MiB with "
        f"{SESSIONS} sessions open (+{growth:.1f} MiB, {(during - before) / SESSIONS / 1024:.0f} "
        f"KiB a session), {after / 2**20:.1f} MiB after they closed"
    )
    assert growth < MAX_GROWTH_MIB
