"""Cardinality attack: 10,000 models, 2,000 experiment keys and paths: series and memory bounded."""

from __future__ import annotations

import asyncio
import resource

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.records import RecordingSink
from tests.helpers.sidecar import SidecarFactory

MODELS = 10_000
PATHS = 2_000
KEYS = 2_000
CAP = 100


def series_count(text: str) -> int:
    return sum(len(family.samples) for family in text_string_to_metric_families(text))


def label_values(text: str, label: str) -> set[str]:
    return {
        sample.labels[label]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if label in sample.labels
    }


EXPERIMENT = {
    "name": "keys",
    "match": {"model": "gpt-4o-mini"},
    "key_header": "x-user-id",
    "control": {"weight": 50},
    "candidates": [{"model": "gpt-4o", "weight": 50}],
}


@pytest.mark.slow
async def test_ten_thousand_models_keys_and_paths_stay_bounded(
    sidecar_factory: SidecarFactory, records: RecordingSink
) -> None:
    sidecar = await sidecar_factory({"experiments": [EXPERIMENT]})
    semaphore = asyncio.Semaphore(32)

    async def call(http: aiohttp.ClientSession, path: str, model: str, key: str = "") -> None:
        async with semaphore:
            body = {"model": model, "messages": [{"role": "user", "content": "x"}]}
            headers = {"x-user-id": key} if key else {}
            async with http.post(sidecar.proxy_url + path, json=body, headers=headers) as response:
                await response.read()

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(call(http, "/v1/chat/completions", f"m-{i}") for i in range(200)))
        async with http.get(sidecar.admin_url + "/metrics") as response:
            warm = await response.text()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        await asyncio.gather(
            *(call(http, "/v1/chat/completions", f"model-{i}") for i in range(MODELS)),
            *(call(http, f"/v1/unknown/{i}", "gpt-4o-mini") for i in range(PATHS)),
            *(call(http, "/v1/chat/completions", "gpt-4o-mini", f"user-{i}") for i in range(KEYS)),
        )
        await records.wait_for(200 + MODELS + PATHS + KEYS, timeout=60)
        async with http.get(sidecar.admin_url + "/metrics") as response:
            after = await response.text()
    rss_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024

    # At most CAP names plus "other" (an empty value means "no model", as on unknown paths).
    models = label_values(after, "gen_ai_request_model") - {""}
    assert len(models) <= CAP + 1 and "other" in models
    assert len(label_values(after, "gen_ai_response_model") - {""}) <= CAP + 1
    # Experiment keys are hashed into an arm, never a label; paths never become labels.
    assert label_values(after, "variant") <= {"", "control", "candidate"}
    assert not any(f"user-{i}" in after for i in (0, 1, KEYS - 1))
    assert label_values(after, "gen_ai_operation_name") <= {"chat", "other"}
    # Bound: the model cap fills up during warm-up, so 12,000 more calls add almost no series.
    assert series_count(after) < series_count(warm) * 1.5
    # Bound stated in docs/reliability.md: < 64 MiB peak RSS growth for the whole process
    # (client, simulator and sidecar together) over 12,000 calls.
    assert rss_growth_mib < 64, f"peak RSS grew {rss_growth_mib:.1f} MiB"
