"""The probe against simulated models with known profiles: ranking, numbers, repeatability.

Tolerances: histogram quantiles can only be as exact as the duration buckets (the semconv
boundaries double: 0.02, 0.04, 0.08, ... s), so a quantile must lie in the bucket holding
the profile's latency or the next one up. The mean is exact (sum / count): it must be no
less than the profile's latency minus 10 ms, and at most 150 ms above it (a shared CI
machine delays calls; it never speeds them up).
"""

from __future__ import annotations

import bisect
from pathlib import Path

import pytest

from sidecar.simulate.profiles import default_profiles
from sidecar.telemetry.conventions import DURATION_BUCKETS
from tests.helpers.probe import probe
from tests.helpers.simulator import RunningSimulator

MINI, GPT4O, SONNET, NANO = (
    "openai:gpt-4o-mini",
    "openai:gpt-4o",
    "anthropic:claude-sonnet-4",
    "openai:gpt-4.1-nano",
)
MEAN_SLACK_BELOW = 0.010
MEAN_SLACK_ABOVE = 0.150


def expected_latency(model: str) -> float:
    """Seconds a call to the simulated model takes: time to first token plus output time."""
    profile = default_profiles()[model.split(":", 1)[1]]
    return profile.ttft_s + profile.output_tokens / profile.tokens_per_second


def bucket_range(seconds: float) -> tuple[float, float]:
    """The lower bound of the bucket holding `seconds`, and the upper bound of the next one."""
    index = bisect.bisect_left(DURATION_BUCKETS, seconds)
    lower = DURATION_BUCKETS[index - 1] if index else 0.0
    return lower, DURATION_BUCKETS[min(index + 1, len(DURATION_BUCKETS) - 1)]


@pytest.mark.slow
async def test_table_ranks_models_and_matches_their_profiles(
    simulator: RunningSimulator, prompts_file: Path
) -> None:
    run = await probe(
        [SONNET, NANO, GPT4O, MINI],
        {"openai": simulator.url, "anthropic": simulator.url},
        prompts_file,
        requests=24,
        concurrency=4,
        repeat=4,
        repeat_prompts=3,
        logprobs=True,
    )
    assert run.status == 0, run.err
    ranked = [m["model"] for m in run.report["models"]]
    assert ranked.index(MINI) < ranked.index(GPT4O) < ranked.index(SONNET)
    assert [m["rank"] for m in run.report["models"]] == [1, 2, 3, 4]

    for label in (MINI, GPT4O, SONNET):
        result, expected = run.model(label), expected_latency(label)
        assert result["calls"] == 24 + 4 * 3 and result["sent"] == result["planned"] == 36
        assert result["errors"] == 0 and result["errors_by_type"] == {}
        assert expected - MEAN_SLACK_BELOW <= result["latency_mean_s"]
        assert result["latency_mean_s"] <= expected + MEAN_SLACK_ABOVE, label
        low, high = bucket_range(expected)
        assert low <= result["latency_p50_s"] <= high, label
        assert result["latency_p50_s"] <= result["latency_p95_s"] <= result["latency_p99_s"]
        assert result["ttft_p95_s"] is None  # not streamed
        assert result["cost_per_10k_calls_usd"] == result["cost_per_call_usd"] * 10_000
        assert result["cost_per_call_usd"] == result["cost_usd"] / result["calls"]
        assert result["repeat_compared"] == 3 * (4 - 1)
    # Prices: gpt-4o-mini is more than ten times cheaper per call than gpt-4o and Sonnet.
    mini, gpt4o, sonnet = run.model(MINI), run.model(GPT4O), run.model(SONNET)
    assert 10 * mini["cost_per_call_usd"] < gpt4o["cost_per_call_usd"]
    assert 10 * mini["cost_per_call_usd"] < sonnet["cost_per_call_usd"]
    # Repeatability: deterministic models always, gpt-4o (diverges half the time) not.
    assert mini["repeat_same_ratio"] == 1.0 and sonnet["repeat_same_ratio"] == 1.0
    assert gpt4o["repeat_same_ratio"] < 0.9
    # The flaky model: 429s and 500s, and unsure answers (low confidence) where logprobs exist.
    nano = run.model(NANO)
    assert 0.05 < nano["error_ratio"] < 0.5
    assert set(nano["errors_by_type"]) <= {"429", "500"} and nano["errors_by_type"]
    assert sum(nano["errors_by_type"].values()) == nano["errors"]
    assert nano["low_confidence_ratio"] > 0.2
    assert mini["low_confidence_ratio"] == 0.0
    assert sonnet["low_confidence_ratio"] is None  # Anthropic has no logprobs


async def test_streaming_measures_time_to_first_token_per_model(
    simulator: RunningSimulator, prompts_file: Path
) -> None:
    run = await probe(
        [MINI, SONNET],
        {"openai": simulator.url, "anthropic": simulator.url},
        prompts_file,
        requests=8,
        concurrency=4,
        stream=True,
    )
    assert run.status == 0, run.err
    for label in (MINI, SONNET):
        ttft = default_profiles()[label.split(":")[1]].ttft_s
        low, high = bucket_range(ttft)
        assert low <= run.model(label)["ttft_p95_s"] <= high, label
        assert run.model(label)["output_tokens_per_second"] > 0
    assert run.model(MINI)["ttft_p95_s"] < run.model(SONNET)["ttft_p95_s"]
