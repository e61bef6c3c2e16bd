"""Shadow mode: the app sees only the control, undelayed; pairs and their deltas are exact."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sidecar.experiments.shadow import PairBook
from sidecar.record import CallRecord
from sidecar.simulate.profiles import ModelProfile
from tests.helpers.experiments import CANDIDATE_MODEL, CONTROL_MODEL, QUESTION, profile, shadow
from tests.helpers.metrics import scrape, total
from tests.helpers.otlp import OtlpReceiver, start_receiver
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

SLOW_MODEL = "exp-slow"
FAILING_MODEL = "exp-failing"
CALLS = 8


async def timed_calls(client: Any, count: int, *, stream: bool = False) -> list[float]:
    """Seconds each of `count` sequential calls took, as the app saw them."""
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        if stream:
            chunks = await client.chat.completions.create(
                model=CONTROL_MODEL, messages=QUESTION, stream=True
            )
            async for _chunk in chunks:
                pass
        else:
            answer = await client.chat.completions.create(model=CONTROL_MODEL, messages=QUESTION)
            assert answer.model == CONTROL_MODEL
        durations.append(time.perf_counter() - started)
    return durations


def by_variant(records: list[CallRecord], variant: str) -> list[CallRecord]:
    return [record for record in records if record.variant == variant]


@pytest.mark.slow
async def test_the_apps_latency_is_unchanged_when_the_candidate_is_2s_slower(
    sidecar_factory: SidecarFactory,
    sdk: SDKClients,
    models: dict[str, ModelProfile],
    records: RecordingSink,
) -> None:
    models[CONTROL_MODEL] = profile(CONTROL_MODEL, ttft_s=0.05)
    models[SLOW_MODEL] = profile(SLOW_MODEL, ttft_s=2.05)
    plain = await sidecar_factory()
    limits = {"max_concurrency": 32, "max_per_second": 100}
    shadowed = await sidecar_factory({"experiments": [shadow(SLOW_MODEL, shadow=limits)]})
    for stream in (False, True):
        baseline = await timed_calls(sdk.openai(plain.proxy_url), CALLS, stream=stream)
        measured = await timed_calls(sdk.openai(shadowed.proxy_url), CALLS, stream=stream)
        # Each call takes the control's ~50 ms, with or without a 2 s shadow running beside it.
        assert max(measured) < 0.5, measured
        assert sorted(measured)[CALLS // 2] < sorted(baseline)[CALLS // 2] + 0.05
    done = await records.wait_for(6 * CALLS, timeout=10)
    shadows = by_variant(done, "shadow")
    assert len(shadows) == 2 * CALLS
    assert all(r.duration >= 2.0 and r.outcome == "ok" for r in shadows)
    assert all(r.request.request_model == SLOW_MODEL for r in shadows)
    # The control calls finished while their shadows were still running.
    controls = {r.pair_id: r for r in by_variant(done, "control")}
    assert all(controls[r.pair_id].end < r.end - 1.5 for r in shadows)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = start_receiver("http/protobuf")
    yield running
    running.stop()


async def test_pairs_and_deltas_are_exact_for_known_models(
    sidecar_factory: SidecarFactory,
    sdk: SDKClients,
    models: dict[str, ModelProfile],
    records: RecordingSink,
    receiver: OtlpReceiver,
) -> None:
    models[CONTROL_MODEL] = profile(CONTROL_MODEL, ttft_s=0.05, output_tokens=20)
    models[CANDIDATE_MODEL] = profile(CANDIDATE_MODEL, ttft_s=0.25, output_tokens=36)
    prices = {
        CONTROL_MODEL: {"input": 1.0, "output": 2.0},
        CANDIDATE_MODEL: {"input": 3.0, "output": 4.0},
    }
    config = {"experiments": [shadow()], "cost": {"overrides": prices}}
    sidecar = await sidecar_factory(config, environ=receiver.environ())
    client = sdk.openai(sidecar.proxy_url)
    await timed_calls(client, 3, stream=True)
    await timed_calls(client, 3)
    done = await records.wait_for(12)
    controls, shadows = by_variant(done, "control"), by_variant(done, "shadow")
    assert len(controls) == len(shadows) == 6
    assert {r.pair_id for r in controls} == {r.pair_id for r in shadows}
    assert all(r.pair_id == r.request_id for r in controls)
    input_tokens = controls[0].input_tokens
    assert input_tokens is not None and input_tokens > 0
    assert all(r.input_tokens == input_tokens for r in done)
    assert [r.output_tokens for r in shadows] == [36] * 6

    samples = await scrape(sidecar.admin_url)
    arm = {"experiment": "shadow-exp", "variant": "shadow"}
    delta = "model_sidecar_shadow_token_delta"
    assert total(samples, delta + "_count", gen_ai_token_type="output", **arm) == 6
    # +16 output tokens in every pair: the bucket just above 16 holds them all, the one below none.
    assert total(samples, delta + "_bucket", gen_ai_token_type="output", le="4.0", **arm) == 0
    assert total(samples, delta + "_bucket", gen_ai_token_type="output", le="16.0", **arm) == 6
    assert total(samples, delta + "_bucket", gen_ai_token_type="input", le="-1.0", **arm) == 0
    assert total(samples, delta + "_bucket", gen_ai_token_type="input", le="0.0", **arm) == 6

    def sides(name: str, **labels: str) -> float:
        shadow_side = total(samples, name, side="shadow", **arm, **labels)
        return shadow_side - total(samples, name, side="control", **arm, **labels)

    tokens = "model_sidecar_shadow_paired_tokens_total"
    assert sides(tokens, gen_ai_token_type="output") == 6 * 16
    assert sides(tokens, gen_ai_token_type="input") == 0
    per_pair = (input_tokens * (3.0 - 1.0) + 36 * 4.0 - 20 * 2.0) / 1e6
    cost = sides("model_sidecar_shadow_paired_cost_usd_total")
    assert cost == pytest.approx(6 * per_pair, rel=1e-9)
    assert total(samples, "model_sidecar_shadow_cost_delta_usd_count", **arm) == 6
    latency = "model_sidecar_shadow_latency_delta_seconds"
    assert total(samples, latency + "_count", **arm) == 6
    assert total(samples, latency + "_bucket", le="0.1", **arm) == 0
    assert total(samples, latency + "_bucket", le="0.25", **arm) == 6
    mean = sides("model_sidecar_shadow_paired_duration_seconds_total") / 6
    assert mean == pytest.approx(0.2, abs=0.04)
    ttft = "model_sidecar_shadow_time_to_first_chunk_delta_seconds"
    assert total(samples, ttft + "_count", **arm) == 3
    mean = sides("model_sidecar_shadow_paired_time_to_first_chunk_seconds_total") / 3
    assert mean == pytest.approx(0.2, abs=0.04)
    pairs = "model_sidecar_shadow_pairs_total"
    assert total(samples, pairs, agreement="different", **arm) == 6
    assert total(samples, "model_sidecar_shadow_output_length_ratio_count", **arm) == 6
    # Shadow calls are calls of their own arm in every other metric.
    assert total(samples, "model_sidecar_requests_total", **arm) == 6
    assert total(samples, "model_sidecar_requests_total", variant="control") == 6

    # Each shadow span is a child of its control call's span, in the same trace.
    spans = await receiver.wait_for_spans(12)
    by_id = {span.span_id: span for span in spans}
    shadow_spans = [s for s in spans if s.attributes.get("model_sidecar.variant") == "shadow"]
    assert len(shadow_spans) == 6
    for span in shadow_spans:
        assert span.parent_span_id is not None
        parent = by_id[span.parent_span_id]
        assert parent.trace_id == span.trace_id
        assert parent.attributes["model_sidecar.variant"] == "control"
        assert (
            parent.attributes["model_sidecar.pair_id"] == span.attributes["model_sidecar.pair_id"]
        )


async def test_identical_answers_agree(
    sidecar_factory: SidecarFactory, sdk: SDKClients, models: dict[str, ModelProfile]
) -> None:
    sidecar = await sidecar_factory({"experiments": [shadow(CONTROL_MODEL)]})
    await timed_calls(sdk.openai(sidecar.proxy_url), 4)
    pairs = "model_sidecar_shadow_pairs_total"
    for _ in range(50):
        samples = await scrape(sidecar.admin_url)
        if total(samples, pairs) >= 4:
            break
        await asyncio.sleep(0.05)
    assert total(samples, pairs, agreement="same") == 4
    assert total(samples, "model_sidecar_shadow_token_delta_bucket", le="-1.0") == 0
    assert total(samples, "model_sidecar_shadow_token_delta_bucket", le="0.0") == 8


async def test_a_failing_candidate_never_affects_the_app(
    sidecar_factory: SidecarFactory,
    simulator: RunningSimulator,
    sdk: SDKClients,
    models: dict[str, ModelProfile],
    records: RecordingSink,
) -> None:
    models[FAILING_MODEL] = profile(FAILING_MODEL, error_rate=1.0)
    sidecar = await sidecar_factory({"experiments": [shadow(FAILING_MODEL)]})
    client = sdk.openai(sidecar.proxy_url)
    await timed_calls(client, 4)
    await timed_calls(client, 2, stream=True)
    done = await records.wait_for(12)
    assert all(r.outcome == "ok" for r in by_variant(done, "control"))
    assert [r.http_status for r in by_variant(done, "shadow")] == [500] * 6
    samples = await scrape(sidecar.admin_url)
    arm = {"experiment": "shadow-exp", "variant": "shadow"}
    assert total(samples, "model_sidecar_shadow_pairs_total", agreement="shadow_failed", **arm) == 6
    assert total(samples, "model_sidecar_shadow_latency_delta_seconds_count") == 0


async def test_an_unreachable_candidate_upstream_and_the_limits(
    sidecar_factory: SidecarFactory,
    sdk: SDKClients,
    models: dict[str, ModelProfile],
    records: RecordingSink,
) -> None:
    models[SLOW_MODEL] = profile(SLOW_MODEL, ttft_s=1.0)
    experiments = [
        shadow(SLOW_MODEL, shadow={"max_concurrency": 2, "max_per_second": 100}),
        shadow(name="nowhere", match={"model": "gpt-4o-mini", "upstream": "openai"})
        | {"candidates": [{"model": "gpt-4o", "upstream": "dead", "weight": 100}]},
    ]
    upstreams = {"dead": {"url": "http://127.0.0.1:9", "path_prefix": "/dead"}}
    sidecar = await sidecar_factory({"experiments": experiments, "upstreams": upstreams})
    client = sdk.openai(sidecar.proxy_url)
    await asyncio.gather(*(timed_calls(client, 1) for _ in range(5)))
    answer = await client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert answer.model == "gpt-4o-mini-2024-07-18"
    done = await records.wait_for(5 + 2 + 2, timeout=5)
    assert len(by_variant(done, "shadow")) == 3
    dead = [r for r in done if r.upstream == "dead"]
    assert [r.outcome for r in dead] == ["connection_error"]
    samples = await scrape(sidecar.admin_url)
    skipped = "model_sidecar_shadow_skipped_total"
    assert total(samples, skipped, experiment="shadow-exp", reason="concurrency") == 3


def test_a_pair_completes_whichever_half_arrives_first() -> None:
    def finished(variant: str, pair_id: str, text: str) -> CallRecord:
        record = CallRecord("openai", "openai", "openai", "POST", "/", "h", 1, end=1.0)
        record.variant, record.pair_id, record.output_text = variant, pair_id, text
        return record

    book = PairBook(capacity=2)
    assert book.add(finished("shadow", "a", "x")) == []
    ((variant, control, shadow_half),) = book.add(finished("control", "a", "x"))
    assert variant == "shadow" and control.output_digest == shadow_half.output_digest
    assert book.add(finished("control", "b", "y")) == []
    ((_, control, shadow_half),) = book.add(finished("shadow", "b", "yy"))
    assert (control.output_chars, shadow_half.output_chars) == (1, 2)
    for pair_id in "cde":  # past capacity the oldest waiting half is forgotten
        book.add(finished("shadow", pair_id, ""))
    assert book.add(finished("control", "c", "")) == []
    assert len(book.add(finished("control", "e", ""))) == 1
