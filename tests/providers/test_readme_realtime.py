"""The README's Realtime snippet, run as written (but for the sidecar's address) with the SDK's
synchronous realtime client through a real sidecar to the simulator."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.helpers.records import RecordingSink
from tests.helpers.sdk import API_KEY
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

README = Path(__file__).resolve().parents[2] / "README.md"
SIDECAR_ADDRESS = "http://127.0.0.1:8788"


def snippet() -> str:
    text = README.read_text().split("### Realtime (voice and live agents)", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", text.split("\n### ", 1)[0], re.DOTALL)
    return code


async def test_the_readme_realtime_snippet_runs_through_the_sidecar(
    monkeypatch: pytest.MonkeyPatch,
    sidecar_factory: SidecarFactory,
    simulator: RunningSimulator,
    records: RecordingSink,
) -> None:
    sidecar = await sidecar_factory()
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    code = snippet()
    assert SIDECAR_ADDRESS in code and "realtime.connect(" in code
    code = code.replace(SIDECAR_ADDRESS, sidecar.proxy_url)
    # The synchronous client: run it off the loop the sidecar serves on.
    await asyncio.to_thread(exec, compile(code, "README realtime snippet", "exec"), {})
    (record,) = await records.wait_for(1)
    assert (record.upstream, record.provider_name) == ("openai", "openai")
    assert (record.request.operation, record.request.request_model) == ("chat", "gpt-realtime")
    assert record.outcome == "ok" and record.output_tokens and record.cost_usd
    assert simulator.sim.realtime.sessions[-1].path_qs == "/v1/realtime?model=gpt-realtime"
