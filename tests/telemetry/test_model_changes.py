"""Silent model changes: a provider swapping the snapshot behind an alias (response model) or
the backend (system_fingerprint) is counted once per change, logged once with the old and new
values, and the info gauge shows what serves the model now; going back to a pair already
served is not counted again."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sidecar.app import Sidecar
from sidecar.simulate.profiles import ModelProfile
from tests.helpers.logs import captured_logs
from tests.helpers.metrics import scrape, series, total
from tests.helpers.sdk import SDKClients
from tests.helpers.simulator import RunningSimulator

ALIAS = "acme-chat-latest"
CHANGES = "model_sidecar_model_change_total"
INFO = "model_sidecar_model_info"
QUESTION: list[Any] = [{"role": "user", "content": "Is the snapshot the same as yesterday?"}]


async def calls(client: Any, count: int = 4) -> None:
    for index in range(count):
        if index % 2:
            stream = await client.chat.completions.create(
                model=ALIAS, messages=QUESTION, stream=True
            )
            async for _ in stream:
                pass
        else:
            await client.chat.completions.create(model=ALIAS, messages=QUESTION)


async def serving(sidecar: Sidecar) -> tuple[float, list[dict[str, str]]]:
    samples = await scrape(sidecar.admin_url)
    current = [dict(sample.labels) for sample in series(samples, INFO) if sample.value == 1]
    return total(samples, CHANGES, gen_ai_request_model=ALIAS), current


async def test_a_model_change_and_a_fingerprint_change_are_each_counted_once(
    simulator: RunningSimulator, sidecar: Sidecar, sdk: SDKClients
) -> None:
    profiles: dict[str, ModelProfile] = simulator.sim.profiles
    profiles[ALIAS] = ModelProfile(
        ALIAS, response_model="acme-chat-2026-01-01", system_fingerprint="fp_aaa", ttft_s=0.0
    )
    client = sdk.openai(sidecar.proxy_url)
    with captured_logs("sidecar.model_changes") as logs:
        await calls(client)
        count, current = await serving(sidecar)
        assert count == 0
        assert current == [
            {
                "gen_ai_request_model": ALIAS,
                "gen_ai_response_model": "acme-chat-2026-01-01",
                "system_fingerprint": "fp_aaa",
            }
        ]
        # The provider swaps the snapshot behind the alias.
        profiles[ALIAS] = replace(profiles[ALIAS], response_model="acme-chat-2026-02-01")
        await calls(client)
        count, current = await serving(sidecar)
        assert count == 1
        assert [c["gen_ai_response_model"] for c in current] == ["acme-chat-2026-02-01"]
        # Then only the backend fingerprint changes.
        profiles[ALIAS] = replace(profiles[ALIAS], system_fingerprint="fp_bbb")
        await calls(client)
        count, current = await serving(sidecar)
        assert count == 2
        assert [c["system_fingerprint"] for c in current] == ["fp_bbb"]
        # A backend alternating with one it already served moves the gauge, not the count.
        profiles[ALIAS] = replace(profiles[ALIAS], system_fingerprint="fp_aaa")
        await calls(client)
        count, current = await serving(sidecar)
        assert count == 2
        assert [c["system_fingerprint"] for c in current] == ["fp_aaa"]
    lines = logs.containing("changed what serves " + ALIAS)
    assert len(lines) == 2, lines
    assert "acme-chat-2026-01-01" in lines[0] and "acme-chat-2026-02-01" in lines[0]
    assert "fp_aaa" in lines[1] and "fp_bbb" in lines[1]
