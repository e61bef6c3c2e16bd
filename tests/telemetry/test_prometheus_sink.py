"""PrometheusSink fed with hand-built CallRecords: exact counts, sums, labels and bounds."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from sidecar.config.models import TelemetryConfig
from sidecar.record import (
    CONNECTION_ERROR,
    OK,
    UPSTREAM_ERROR,
    CallRecord,
    RequestInfo,
    RetryAttempt,
)
from sidecar.telemetry import metrics_doc, prometheus
from sidecar.telemetry.conventions import ALL_METRICS, V1_41, metrics_for
from sidecar.telemetry.drops import TelemetryDrops
from sidecar.telemetry.labels import OTHER, ModelLabels
from sidecar.telemetry.prometheus import PrometheusSink
from sidecar.telemetry.registry import MetricRegistry

API_KEY = "sk-test-SECRET-0123456789abcdef"

PROVIDERS = {
    # protocol: (provider name, operation)
    "openai": ("openai", "chat"),
    "anthropic": ("anthropic", "chat"),
    "gemini": ("gcp.gemini", "generate_content"),
}


def make_record(
    protocol: str,
    model: str,
    *,
    stream: bool = False,
    response_model: str | None = None,
    status: int | None = 200,
    outcome: str = OK,
    duration: float = 0.5,
    chunks: int = 0,
    **fields: object,
) -> CallRecord:
    """A finished call as the proxy would record it."""
    provider, operation = PROVIDERS[protocol]
    record = CallRecord(
        upstream=protocol,
        protocol=protocol,
        provider_name=provider,
        method="POST",
        path=f"/v1/x?key={API_KEY}",
        server_address="127.0.0.1",
        server_port=9,
        request=RequestInfo(operation=operation, request_model=model, stream=stream),
        request_body={"model": model, "messages": [{"role": "user", "content": API_KEY}]},
    )
    record.received = 100.0
    record.end = 100.0 + duration
    record.upstream_wait = duration - 0.0001
    record.http_status = status
    record.outcome = outcome
    record.response_model = response_model
    if stream and chunks:
        record.first_chunk = 100.1
        record.chunk_times = [100.1 + 0.02 * index for index in range(chunks)]
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def feed(sink: PrometheusSink, *records: CallRecord) -> None:
    for record in records:
        sink.call_started(record)
        sink.call_finished(record)


def scrape(sink: PrometheusSink) -> list[Sample]:
    body, content_type = sink.render("")
    assert content_type.startswith("text/plain; version=0.0.4")
    return [
        sample
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    ]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    return sum(
        sample.value
        for sample in samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def label_values(samples: list[Sample], name: str, label: str) -> set[str]:
    return {sample.labels[label] for sample in samples if sample.name == name}


def new_sink(max_model_labels: int = 100) -> PrometheusSink:
    telemetry = TelemetryConfig(max_model_labels=max_model_labels)
    return PrometheusSink(MetricRegistry(telemetry, TelemetryDrops()))


KNOWN_CALLS = (
    # OpenAI, not streaming: cached input and reasoning output, priced.
    make_record(
        "openai", "gpt-4o", response_model="gpt-4o-2024-08-06", input_tokens=100,
        output_tokens=20, cache_read_tokens=30, reasoning_tokens=5, cost_usd=0.002,
    ),
    # OpenAI, streaming, 5 chunks, usage reported, retried by the SDK, unpriced.
    make_record(
        "openai", "gpt-4o", stream=True, chunks=5, response_model="gpt-4o-2024-08-06",
        input_tokens=50, output_tokens=10, client_retry_count=1, confidence=0.9,
    ),
    # Anthropic, streaming, 3 chunks: input = 10 + cache read 200 + cache creation 40.
    make_record(
        "anthropic", "claude-sonnet-4", stream=True, chunks=3, response_model="claude-sonnet-4",
        input_tokens=250, output_tokens=30, cache_read_tokens=200, cache_creation_tokens=40,
        cost_usd=0.01, sidecar_retries=2,
        retry_attempts=[RetryAttempt(2, "503", 0.1, 0), RetryAttempt(3, "connection_error", 0, 0)],
    ),
    # Gemini, not streaming: output = candidates 15 + thoughts 25.
    make_record(
        "gemini", "gemini-2.5-flash", response_model="gemini-2.5-flash", input_tokens=12,
        output_tokens=40, reasoning_tokens=25, cost_usd=0.0005,
    ),
    # OpenAI rate limited: no usage.
    make_record("openai", "gpt-4o", status=429, outcome=UPSTREAM_ERROR, duration=0.05),
    # Gemini upstream unreachable: no status at all.
    make_record("gemini", "gemini-2.5-flash", status=None, outcome=CONNECTION_ERROR, stream=True),
)  # fmt: skip


def test_known_calls_give_exact_counts_token_sums_and_labels() -> None:
    sink = new_sink()
    feed(sink, *KNOWN_CALLS)
    samples = scrape(sink)

    requests = "model_sidecar_requests_total"
    assert total(samples, requests) == 6
    assert total(samples, requests, gen_ai_request_model="gpt-4o", outcome="ok") == 2
    assert total(samples, requests, outcome="upstream_error", http_status_code="429") == 1
    assert total(samples, requests, outcome="connection_error", http_status_code="") == 1
    assert label_values(samples, requests, "gen_ai_provider_name") == {
        "openai",
        "anthropic",
        "gcp.gemini",
    }
    assert label_values(samples, requests, "gen_ai_operation_name") == {
        "chat",
        "generate_content",
    }
    # No response model on the failed calls: an empty label, never a guess.
    assert label_values(samples, requests, "gen_ai_response_model") == {
        "",
        "gpt-4o-2024-08-06",
        "claude-sonnet-4",
        "gemini-2.5-flash",
    }

    duration = "gen_ai_client_operation_duration_seconds_count"
    assert total(samples, duration) == 6
    assert total(samples, duration, error_type="") == 4
    assert total(samples, duration, error_type="429") == 1
    assert total(samples, duration, error_type="connection_error") == 1
    duration_sum = "gen_ai_client_operation_duration_seconds_sum"
    assert total(samples, duration_sum, error_type="429") == pytest.approx(0.05)

    tokens = "model_sidecar_tokens_total"
    expected_tokens = {
        "input": 100 + 50 + 250 + 12,
        "output": 20 + 10 + 30 + 40,
        "cache_read": 30 + 200,
        "cache_creation": 40,
        "reasoning": 5 + 25,
    }
    for token_type, expected in expected_tokens.items():
        assert total(samples, tokens, gen_ai_token_type=token_type) == expected, token_type
    anthropic_input = total(
        samples, tokens, gen_ai_provider_name="anthropic", gen_ai_token_type="input"
    )
    assert anthropic_input == 250
    usage = "gen_ai_client_token_usage"
    for token_type in ("input", "output"):
        usage_sum = total(samples, f"{usage}_sum", gen_ai_token_type=token_type)
        assert usage_sum == expected_tokens[token_type]
        # The two failed calls reported no usage.
        assert total(samples, f"{usage}_count", gen_ai_token_type=token_type) == 4
    assert label_values(samples, "gen_ai_client_token_usage_count", "gen_ai_token_type") == {
        "input",
        "output",
    }

    # Streams only: one TTFC per stream that produced a chunk, chunks - 1 intervals each.
    ttfc = "gen_ai_client_operation_time_to_first_chunk_seconds_count"
    assert total(samples, ttfc) == 2
    assert label_values(samples, ttfc, "gen_ai_request_model") == {"gpt-4o", "claude-sonnet-4"}
    assert total(samples, ttfc.replace("_count", "_sum")) == pytest.approx(0.2)
    per_chunk = "gen_ai_client_operation_time_per_output_chunk_seconds_count"
    assert total(samples, per_chunk) == (5 - 1) + (3 - 1)
    assert total(samples, per_chunk.replace("_count", "_bucket"), le="0.04") == 6
    assert total(samples, per_chunk.replace("_count", "_bucket"), le="0.01") == 0

    assert total(samples, "model_sidecar_retries_total", source="client") == 1
    assert total(samples, "model_sidecar_retries_total", source="sidecar") == 2
    assert total(samples, "model_sidecar_confidence_count") == 1
    assert total(samples, "model_sidecar_confidence_bucket", le="0.85") == 0
    assert total(samples, "model_sidecar_confidence_bucket", le="0.9") == 1
    assert total(samples, "model_sidecar_cost_usd_total") == pytest.approx(0.0125)
    # Usage but no price: only the OpenAI stream.
    assert total(samples, "model_sidecar_cost_unknown_total") == 1
    assert total(samples, "model_sidecar_cost_unknown_total", gen_ai_request_model="gpt-4o") == 1
    assert total(samples, "model_sidecar_overhead_seconds_count") == 6
    assert total(samples, "model_sidecar_overhead_seconds_bucket", le="0.00015") == 6
    assert total(samples, "model_sidecar_in_flight_requests") == 0


def test_no_chunk_series_for_calls_that_did_not_stream() -> None:
    sink = new_sink()
    feed(
        sink,
        make_record("openai", "gpt-4o", input_tokens=1, output_tokens=1),
        # Asked to stream but failed before the first chunk.
        make_record("anthropic", "claude", stream=True, status=500, outcome=UPSTREAM_ERROR),
    )
    names = {sample.name for sample in scrape(sink)}
    assert "gen_ai_client_operation_duration_seconds_count" in names
    assert not any("time_to_first_chunk" in name for name in names)
    assert not any("time_per_output_chunk" in name for name in names)
    assert not any("model_sidecar_confidence" in name for name in names)


def test_bucket_boundaries() -> None:
    sink = new_sink()
    feed(
        sink,
        make_record("openai", "m", stream=True, chunks=2, duration=900.0, input_tokens=1,
                    output_tokens=1, confidence=0.5),
    )  # fmt: skip
    samples = scrape(sink)

    def bounds(name: str) -> list[float]:
        return sorted({float(s.labels["le"]) for s in samples if s.name == f"{name}_bucket"})

    duration = bounds("gen_ai_client_operation_duration_seconds")
    assert duration[-1] == float("inf")
    assert duration[-2] == 600.0
    assert duration[:3] == [0.01, 0.02, 0.04] and 81.92 in duration and 327.68 in duration
    assert bounds("gen_ai_client_operation_time_to_first_chunk_seconds") == duration
    assert bounds("gen_ai_client_token_usage")[:-1] == [4.0**power for power in range(14)]
    # The client duration boundaries of the conventions (not the server's per-token ones).
    assert bounds("gen_ai_client_operation_time_per_output_chunk_seconds") == [
        *duration[:14],
        1e999,
    ]
    overhead = bounds("model_sidecar_overhead_seconds")
    assert 5e-05 in overhead and overhead[0] < 5e-05 and overhead[-2] == 1.0
    confidence = bounds("model_sidecar_confidence")
    assert confidence[0] == 0.05 and confidence[-2] == 1.0
    # A 900 s call lands above 600 s: counted, never capped into a finite bucket.
    assert total(samples, "gen_ai_client_operation_duration_seconds_bucket", le="600.0") == 0
    assert total(samples, "gen_ai_client_operation_duration_seconds_bucket", le="+Inf") == 1


def test_in_flight_gauge_follows_started_and_finished_calls() -> None:
    sink = new_sink()
    first = make_record("openai", "gpt-4o")
    second = make_record("openai", "gpt-4o", stream=True)
    third = make_record("gemini", "gemini-2.5-pro")
    for record in (first, second, third):
        sink.call_started(record)
    sink.call_finished(first)
    samples = scrape(sink)
    in_flight = "model_sidecar_in_flight_requests"
    assert total(samples, in_flight, upstream="openai", gen_ai_operation_name="chat") == 1
    assert total(samples, in_flight, gen_ai_provider_name="gcp.gemini") == 1
    sink.call_finished(second)
    sink.call_finished(third)
    assert total(scrape(sink), in_flight) == 0


def test_model_labels_are_capped_and_memory_stays_bounded() -> None:
    cap = 10
    sink = new_sink(max_model_labels=cap)
    feed(
        sink,
        *(make_record("openai", f"model-{i}", response_model=f"resp-{i}") for i in range(2000)),
    )
    samples = scrape(sink)
    requests = "model_sidecar_requests_total"
    request_models = label_values(samples, requests, "gen_ai_request_model")
    response_models = label_values(samples, requests, "gen_ai_response_model")
    assert len(request_models) == cap + 1 and OTHER in request_models
    assert len(response_models) == cap + 1 and OTHER in response_models
    assert total(samples, requests) == 2000
    assert total(samples, requests, gen_ai_request_model=OTHER) == 2000 - cap
    overflow = "model_sidecar_label_overflow_total"
    assert total(samples, overflow, label="gen_ai_request_model") == 2000 - cap
    assert total(samples, overflow, label="gen_ai_response_model") == 2000 - cap
    # Label sets: the cap's own names paired with themselves, plus (other, other).
    assert len(sink._label_sets) == cap + 1

    # 10,000 more distinct names grow nothing: no new series, no new cached state.
    series_before = len(samples)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        feed(sink, *(make_record("openai", f"late-{i}", response_model=f"late-{i}")
                     for i in range(10_000)))  # fmt: skip
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024
    assert len(sink.request_models) == cap and len(sink.response_models) == cap
    assert len(sink._label_sets) == cap + 1
    assert len(scrape(sink)) == series_before


def test_label_set_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus, "MAX_CACHED_LABEL_SETS", 20)
    sink = new_sink()
    # 10 x 10 request/response pairs: more label sets than the cache keeps.
    pairs = [(f"m{i}", f"r{j}") for i in range(10) for j in range(10)]
    feed(sink, *(make_record("openai", model, response_model=resp) for model, resp in pairs))
    assert len(sink._label_sets) == 20
    # Evicted label sets keep counting into the same series.
    feed(sink, *(make_record("openai", model, response_model=resp) for model, resp in pairs))
    samples = scrape(sink)
    assert total(samples, "model_sidecar_requests_total") == 200
    assert total(samples, "model_sidecar_requests_total", gen_ai_request_model="m0") == 20
    assert len(label_values(samples, "model_sidecar_requests_total", "gen_ai_response_model")) == 10


def test_model_labels_admit_then_overflow() -> None:
    labels = ModelLabels(2)
    assert labels.resolve(None) == "" and labels.resolve("") == ""
    assert [labels.resolve(name) for name in ("a", "b", "c", "a", "x" * 300)] == [
        "a",
        "b",
        OTHER,
        "a",
        OTHER,
    ]
    assert labels.overflowed == 2
    assert len(labels) == 2
    long_names = ModelLabels(5)
    assert long_names.resolve("y" * 300) == OTHER and len(long_names) == 0


def test_api_key_and_prompt_never_appear() -> None:
    sink = new_sink()
    feed(sink, *KNOWN_CALLS)
    plain, _ = sink.render("text/plain")
    openmetrics, _ = sink.render("application/openmetrics-text")
    for body in (plain, openmetrics):
        assert b"gen_ai_client_operation_duration_seconds" in body
        assert API_KEY.encode() not in body
        assert b"SECRET" not in body


def test_openmetrics_is_served_when_asked_for() -> None:
    sink = new_sink()
    feed(sink, *KNOWN_CALLS)
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    body, content_type = sink.render(accept)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")
    families = {family.name: family for family in openmetrics_families(body.decode())}
    duration = families["gen_ai_client_operation_duration_seconds"]
    assert duration.type == "histogram" and duration.unit == "seconds"
    assert families["model_sidecar_requests"].type == "counter"
    requests = [s for s in families["model_sidecar_requests"].samples if s.name.endswith("_total")]
    assert sum(sample.value for sample in requests) == 6

    plain_body, plain_type = sink.render("text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    assert plain_type == "text/plain; version=0.0.4; charset=utf-8"
    assert b"# EOF" not in plain_body


def test_dropped_telemetry_of_every_sink_is_exported() -> None:
    drops = TelemetryDrops()
    sink = PrometheusSink(MetricRegistry(TelemetryConfig(), drops))
    dropped = "model_sidecar_telemetry_dropped_total"
    assert total(scrape(sink), dropped, sink="pipeline") == 0  # present before any drop
    calls = [KNOWN_CALLS[0], KNOWN_CALLS[1], KNOWN_CALLS[0], KNOWN_CALLS[2]]
    for record in calls:
        sink.call_started(record)
    for record in calls:
        sink.dropped(record)
    drops.add("tracing", 7)
    samples = scrape(sink)
    assert total(samples, dropped, sink="pipeline") == 4
    assert total(samples, dropped, sink="tracing") == 7
    # A dropped call is no longer in flight.
    assert total(samples, "model_sidecar_in_flight_requests") == 0


def test_each_sink_has_its_own_registry_with_process_metrics() -> None:
    first, second = new_sink(), new_sink()
    feed(first, *KNOWN_CALLS)
    assert total(scrape(first), "model_sidecar_requests_total") == 6
    second_samples = scrape(second)
    assert total(second_samples, "model_sidecar_requests_total") == 0
    names = {sample.name for sample in second_samples}
    assert "process_cpu_seconds_total" in names
    assert "python_gc_collections_total" in names
    assert "python_info" in names


def test_every_defined_metric_is_exported() -> None:
    sink = new_sink()
    feed(sink, *KNOWN_CALLS)
    body, _ = sink.render("")
    exported = {family.name for family in text_string_to_metric_families(body.decode())}
    for metric in metrics_for((V1_41,)):
        assert metric.name.removesuffix("_total") in exported, metric.name


def test_metrics_doc_is_up_to_date(tmp_path: Path) -> None:
    assert metrics_doc.main(["--check"]) == 0
    stale = tmp_path / "metrics.md"
    stale.write_text("# stale\n")
    assert metrics_doc.main(["--check", "--path", str(stale)]) == 1
    assert metrics_doc.main(["--path", str(stale)]) == 0
    assert metrics_doc.main(["--check", "--path", str(stale)]) == 0
    text = stale.read_text()
    for metric in ALL_METRICS:
        assert f"`{metric.name}`" in text
    assert "163.84, 327.68, 600, +Inf" in text
