"""Repeatability: deterministic models give only `same`, nondeterministic ones `different`;
the fingerprint LRU stays within its bound and holds hashes, never prompts."""

from __future__ import annotations

from sidecar.config.enrich import RepeatabilityConfig
from sidecar.enrich.repeatability import RepeatabilityEnricher
from sidecar.forward.facts import request_fingerprint
from sidecar.record import CallRecord, RequestInfo
from tests.helpers.metrics import scrape, series, total
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import SidecarFactory

REPEATS = "model_sidecar_repeat_outputs_total"


async def test_deterministic_model_gives_only_same(
    sidecar_factory: SidecarFactory, records: RecordingSink, sdk: SDKClients
) -> None:
    sidecar = await sidecar_factory()
    client = sdk.openai(sidecar.proxy_url)
    messages = [{"role": "user", "content": "classify: refund please"}]
    for stream in (False, False, False, True, True, True):
        if stream:
            async for _ in await client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, temperature=0, stream=True
            ):
                pass
        else:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, temperature=0
            )
    # Not at temperature 0 and no seed: not fingerprinted.
    await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    await records.wait_for(7)
    assert all(record.output_text is None for record in records.records)  # never kept
    samples = await scrape(sidecar.admin_url)
    assert total(samples, REPEATS, result="same", gen_ai_request_model="gpt-4o-mini") == 4
    assert total(samples, REPEATS, result="different") == 0


async def test_nondeterministic_model_gives_different(
    sidecar_factory: SidecarFactory, records: RecordingSink, sdk: SDKClients
) -> None:
    sidecar = await sidecar_factory()
    client = sdk.openai(sidecar.proxy_url)
    messages = [{"role": "user", "content": "classify: refund please"}]
    calls = 12
    for _ in range(calls):
        await client.chat.completions.create(
            model="gpt-4o",
            messages=messages,
            seed=7,  # a fixed seed, default temperature
        )
    await records.wait_for(calls)
    samples = await scrape(sidecar.admin_url)
    different = total(samples, REPEATS, result="different", gen_ai_request_model="gpt-4o")
    same = total(samples, REPEATS, result="same", gen_ai_request_model="gpt-4o")
    assert different >= 1
    assert same + different == calls - 1
    assert {s.labels["gen_ai_response_model"] for s in series(samples, REPEATS)} == {
        "gpt-4o-2024-08-06"
    }


def repeatable_record(prompt: str) -> CallRecord:
    record = CallRecord(
        upstream="openai",
        protocol="openai",
        provider_name="openai",
        method="POST",
        path="/v1/chat/completions",
        server_address="127.0.0.1",
        server_port=1,
        request=RequestInfo(operation="chat", temperature=0.0),
        request_fingerprint=request_fingerprint(
            "openai",
            "POST",
            "/v1/chat/completions",
            {"model": "m", "temperature": 0, "messages": [{"content": prompt}]},
        ),
    )
    record.finish_reasons = ["stop"]
    record.output_text = "answer to " + prompt
    return record


def test_the_lru_stays_bounded_after_100000_distinct_prompts() -> None:
    enricher = RepeatabilityEnricher(RepeatabilityConfig(max_fingerprints=1000))
    secret = "PROMPT-TEXT-"
    for index in range(100_000):
        record = repeatable_record(f"{secret}{index}")
        enricher(record)
        assert record.repeat_result is None  # every prompt is new
    lru = enricher.fingerprints
    assert len(lru) == 1000
    entries = list(lru._entries.items())
    assert all(len(key) == 16 and len(value) == 16 for key, value in entries)
    assert not any(secret.encode() in key + value for key, value in entries)
    # The most recent prompts are remembered, the oldest forgotten.
    recent = repeatable_record(f"{secret}{99_999}")
    enricher(recent)
    assert recent.repeat_result == "same"
    oldest = repeatable_record(f"{secret}0")
    enricher(oldest)
    assert oldest.repeat_result is None
