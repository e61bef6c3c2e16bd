"""/metrics in each convention mode after the known calls (tests/helpers/known_calls.py): exact
names, types, buckets and values; v1.41 byte for byte what the sidecar served before the
generations existed, apart from the time-per-chunk buckets; exemplars only in OpenMetrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.telemetry.conventions import (
    ATTRIBUTION_METRICS,
    DUP_OPT_IN,
    GENAI,
    LATEST_OPT_IN,
    QUOTA_METRICS,
    REALTIME_METRICS,
    ROLLOUT_METRICS,
    V1_41,
    generations_for,
    opt_in_value,
)
from tests.helpers.known_calls import known_calls, stable_exposition
from tests.helpers.semconv import (
    OPENMETRICS,
    bounds,
    families,
    feed,
    genai_families,
    sink_in_mode,
    value,
)

GOLDEN = Path(__file__).parent / "golden" / "metrics-v1.41-before-19.txt"
TIME_PER_CHUNK = "gen_ai_client_operation_time_per_output_chunk_seconds"
# Families added after the golden was taken (#22, #21, #18): no call of the golden records them.
ADDED_SINCE = tuple(
    metric.name
    for metric in (*REALTIME_METRICS, *QUOTA_METRICS, *ATTRIBUTION_METRICS, *ROLLOUT_METRICS)
)
H = "histogram"
C = "counter"
V1_41_FAMILIES = {
    "gen_ai_client_operation_duration_seconds": H,
    "gen_ai_client_operation_time_to_first_chunk_seconds": H,
    "gen_ai_client_operation_time_per_output_chunk_seconds": H,
    "gen_ai_client_token_usage": H,
}
LATEST_FAMILIES = {
    "gen_ai_client_inference_duration_seconds": H,
    "gen_ai_client_embeddings_duration_seconds": H,
    "gen_ai_client_operation_duration_seconds": H,
    "gen_ai_client_inference_time_to_first_chunk_seconds": H,
    "gen_ai_client_inference_time_per_output_chunk_seconds": H,
    "gen_ai_client_inference_usage_input_tokens": C,
    "gen_ai_client_inference_usage_output_tokens": C,
    "gen_ai_client_inference_usage_cache_read_input_tokens": C,
    "gen_ai_client_inference_usage_cache_write_input_tokens": C,
    "gen_ai_client_inference_usage_reasoning_output_tokens": C,
    "gen_ai_client_inference_operation_input_tokens": H,
    "gen_ai_client_inference_operation_output_tokens": H,
    "gen_ai_client_embeddings_operation_input_tokens": H,
}
EXPECTED_FAMILIES = {
    "v1.41": V1_41_FAMILIES,
    "latest": LATEST_FAMILIES,
    "dup": {**V1_41_FAMILIES, **LATEST_FAMILIES},
}
CLIENT_DURATION = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                   40.96, 81.92]  # fmt: skip
DURATION = [*CLIENT_DURATION, 163.84, 327.68, 600.0, float("inf")]
TOKENS = [*(4.0**power for power in range(14)), float("inf")]


def exposition(mode: str, accept: str = "") -> str:
    sink = sink_in_mode(mode)
    feed(sink, known_calls())
    body, _ = sink.render(accept)
    return body.decode()


def without_family(text: str, name: str) -> str:
    return "\n".join(line for line in text.splitlines() if name not in line)


def test_v1_41_mode_is_byte_for_byte_the_old_output_apart_from_the_chunk_buckets() -> None:
    now = stable_exposition(exposition("v1.41"))
    # Only the HELP and TYPE lines of the families added since: no known call records them.
    added = tuple(f"# {kind} {name} " for name in ADDED_SINCE for kind in ("HELP", "TYPE"))
    assert sum(line.startswith(added) for line in now.splitlines()) == len(added)
    now = "\n".join(line for line in now.splitlines() if not line.startswith(added))
    before = GOLDEN.read_text()
    assert without_family(now, TIME_PER_CHUNK) == without_family(before, TIME_PER_CHUNK)
    # The fix: the conventions' client duration bounds, not 0.01 … 2.5 s.
    assert 'le="2.5"' in "\n".join(line for line in before.splitlines() if TIME_PER_CHUNK in line)
    chunk = families(now)[TIME_PER_CHUNK]
    assert bounds(chunk) == [*CLIENT_DURATION, float("inf")]
    # The same observations, only re-bucketed.
    old_chunk = families(before)[TIME_PER_CHUNK]
    for suffix in ("_count", "_sum"):
        assert value(chunk, TIME_PER_CHUNK + suffix) == value(old_chunk, TIME_PER_CHUNK + suffix)


@pytest.mark.parametrize("mode", ["v1.41", "latest", "dup"])
def test_each_mode_exports_exactly_its_names_and_types(mode: str) -> None:
    found = families(exposition(mode))
    assert genai_families(found) == EXPECTED_FAMILIES[mode]
    # model_sidecar_* is the same in every mode.
    sidecar = {name: f.type for name, f in found.items() if name.startswith("model_sidecar_")}
    assert sidecar == {
        name: f.type
        for name, f in families(exposition("v1.41")).items()
        if name.startswith("model_sidecar_")
    }


@pytest.mark.parametrize("mode", ["v1.41", "latest", "dup"])
def test_buckets_in_every_mode(mode: str) -> None:
    found = genai_families(families(exposition(mode)))
    parsed = families(exposition(mode))
    for name, kind in found.items():
        if kind != H:
            continue
        expected = (
            TOKENS
            if "token" in name
            else [*CLIENT_DURATION, float("inf")]
            if "per_output_chunk" in name
            else DURATION
        )
        assert bounds(parsed[name]) == expected, name


def test_v1_41_values() -> None:
    found = families(exposition("v1.41"))
    duration = found["gen_ai_client_operation_duration_seconds"]
    name = "gen_ai_client_operation_duration_seconds"
    assert value(duration, f"{name}_count") == 12
    assert value(duration, f"{name}_sum") == pytest.approx(9.16)
    assert value(duration, f"{name}_count", error_type="429") == 1
    assert value(duration, f"{name}_count", gen_ai_operation_name="other") == 1
    first = found["gen_ai_client_operation_time_to_first_chunk_seconds"]
    assert value(first, "gen_ai_client_operation_time_to_first_chunk_seconds_count") == 4
    assert value(first, "gen_ai_client_operation_time_to_first_chunk_seconds_sum") == (
        pytest.approx(2.25)
    )
    chunk = found[TIME_PER_CHUNK]
    assert value(chunk, f"{TIME_PER_CHUNK}_count") == 10
    assert value(chunk, f"{TIME_PER_CHUNK}_sum") == pytest.approx(2.8)
    usage = found["gen_ai_client_token_usage"]
    assert value(usage, "gen_ai_client_token_usage_count", gen_ai_token_type="input") == 8
    assert value(usage, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") == 534
    assert value(usage, "gen_ai_client_token_usage_count", gen_ai_token_type="output") == 6
    assert value(usage, "gen_ai_client_token_usage_sum", gen_ai_token_type="output") == 392


@pytest.mark.parametrize("mode", ["latest", "dup"])
def test_latest_values(mode: str) -> None:
    found = families(exposition(mode))

    def hist(name: str, **labels: str) -> tuple[float, float]:
        family = found[name]
        return value(family, f"{name}_count", **labels), value(family, f"{name}_sum", **labels)

    inference = "gen_ai_client_inference_duration_seconds"
    assert hist(inference) == (9, pytest.approx(9.04))
    assert hist(inference, error_type="429") == (1, pytest.approx(0.03))
    assert hist(inference, error_type="stream_interrupted")[0] == 1
    assert hist(inference, error_type="connection_error")[0] == 1
    assert hist("gen_ai_client_embeddings_duration_seconds") == (2, pytest.approx(0.1))
    # Operations that are neither inference nor embeddings stay on operation.duration; in
    # dup mode every call is there once (v1.41), the `other` call not twice.
    operation = hist("gen_ai_client_operation_duration_seconds")
    assert operation == ((12, pytest.approx(9.16)) if mode == "dup" else (1, pytest.approx(0.02)))
    assert hist("gen_ai_client_operation_duration_seconds", gen_ai_operation_name="other")[0] == 1
    assert hist("gen_ai_client_inference_time_to_first_chunk_seconds") == (4, pytest.approx(2.25))
    gaps = hist("gen_ai_client_inference_time_per_output_chunk_seconds")
    assert gaps == (10, pytest.approx(2.8))

    # Usage counters: every inference call, failed ones with 0, modality unknown.
    counters = {
        "input_tokens": 521,
        "output_tokens": 392,
        "cache_read_input_tokens": 300,
        "cache_write_input_tokens": 50,
        "reasoning_output_tokens": 191,
    }
    for suffix, expected in counters.items():
        family = found[f"gen_ai_client_inference_usage_{suffix}"]
        name = f"gen_ai_client_inference_usage_{suffix}_total"
        assert value(family, name) == expected, suffix
        samples = [s for s in family.samples if s.name == name]
        assert {s.labels["gen_ai_token_modality"] for s in samples} == {"unknown"}
        failed = [s for s in samples if s.labels["gen_ai_request_model"] == "claude-sonnet-4"
                  and s.labels["gen_ai_response_model"] == ""]  # fmt: skip
        assert [s.value for s in failed] == [0.0], suffix
        assert not any(s.labels["gen_ai_operation_name"] == "embeddings" for s in samples)
    # Per-operation histograms: calls that ended ok and reported the count.
    assert hist("gen_ai_client_inference_operation_input_tokens") == (6, 521)
    assert hist("gen_ai_client_inference_operation_output_tokens") == (6, 392)
    assert hist("gen_ai_client_embeddings_operation_input_tokens") == (2, 13)


def test_dup_mode_records_each_call_once_under_both_names() -> None:
    found = families(exposition("dup"))
    old = "gen_ai_client_operation_duration_seconds"
    new = "gen_ai_client_inference_duration_seconds"
    for operation in ("chat", "text_completion", "generate_content"):
        for suffix in ("_count", "_sum"):
            assert value(found[old], old + suffix, gen_ai_operation_name=operation) == value(
                found[new], new + suffix, gen_ai_operation_name=operation
            )
    old_first = "gen_ai_client_operation_time_to_first_chunk_seconds"
    new_first = "gen_ai_client_inference_time_to_first_chunk_seconds"
    for suffix in ("_count", "_sum", "_bucket"):
        assert value(found[old_first], old_first + suffix) == value(
            found[new_first], new_first + suffix
        )
    # Same inference tokens in the old histogram and the new counter.
    assert value(
        found["gen_ai_client_token_usage"],
        "gen_ai_client_token_usage_sum",
        gen_ai_token_type="output",
    ) == value(
        found["gen_ai_client_inference_usage_output_tokens"],
        "gen_ai_client_inference_usage_output_tokens_total",
    )


def sampled_calls() -> list[object]:
    calls = known_calls()
    for index, record in enumerate(calls):
        record.trace_id = 0xABC0 + index
        record.span_sampled = index == 1  # only the OpenAI stream's span is exported
    return calls


@pytest.mark.parametrize("mode", ["v1.41", "latest", "dup"])
def test_exemplars_only_for_sampled_calls_and_only_in_openmetrics(mode: str) -> None:
    sink = sink_in_mode(mode)
    feed(sink, sampled_calls())  # type: ignore[arg-type]
    plain, _ = sink.render("")
    assert b"trace_id" not in plain and b"# {" not in plain
    body, content_type = sink.render(OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    trace_id = f"{0xABC0 + 1:032x}"
    found = families(body.decode(), openmetrics=True)
    with_exemplars = {
        (
            family.name,
            sample.labels["le"],
            sample.exemplar.labels["trace_id"],
            round(sample.exemplar.value, 6),
        )
        for family in found.values()
        for sample in family.samples
        if sample.exemplar is not None
    }
    durations = {
        "v1.41": ["gen_ai_client_operation_duration_seconds"],
        "latest": ["gen_ai_client_inference_duration_seconds"],
        "dup": ["gen_ai_client_operation_duration_seconds",
                "gen_ai_client_inference_duration_seconds"],
    }[mode]  # fmt: skip
    first_chunks = {
        "v1.41": ["gen_ai_client_operation_time_to_first_chunk_seconds"],
        "latest": ["gen_ai_client_inference_time_to_first_chunk_seconds"],
        "dup": ["gen_ai_client_operation_time_to_first_chunk_seconds",
                "gen_ai_client_inference_time_to_first_chunk_seconds"],
    }[mode]  # fmt: skip
    # The stream took 1.2 s (bucket 1.28) and its first chunk came after 0.3 s (bucket 0.32).
    assert with_exemplars == {
        *((name, "1.28", trace_id, 1.2) for name in durations),
        *((name, "0.32", trace_id, 0.3) for name in first_chunks),
    }


def test_opt_in_values() -> None:
    assert opt_in_value(None) is None and opt_in_value("") is None
    assert opt_in_value("http") is None
    assert opt_in_value("http, gen_ai_latest_experimental") == LATEST_OPT_IN
    assert opt_in_value("gen_ai_latest_experimental,gen_ai_latest_experimental/dup") == DUP_OPT_IN
    assert generations_for(None) == (V1_41,)
    assert generations_for("database") == (V1_41,)
    assert generations_for(LATEST_OPT_IN) == (GENAI,)
    assert generations_for(DUP_OPT_IN) == (V1_41, GENAI)
    # The config key applies when the variable names no GenAI value; the variable wins.
    assert generations_for(None, DUP_OPT_IN) == (V1_41, GENAI)
    assert generations_for("http", LATEST_OPT_IN) == (GENAI,)
    assert generations_for(LATEST_OPT_IN, DUP_OPT_IN) == (GENAI,)
