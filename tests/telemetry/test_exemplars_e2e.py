"""From a latency bucket to its trace: a real Prometheus (exemplar storage on) scrapes a sidecar
that exports spans to a real OTLP receiver; /api/v1/query_exemplars returns, on the duration
and time-to-first-chunk buckets of a call, the trace id of the span the receiver got for that
call, in every convention mode. Unsampled calls leave no exemplar."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest

from sidecar.forward.tracecontext import format_traceparent
from tests.helpers.otlp import OtlpReceiver, start_receiver
from tests.helpers.prometheus import PrometheusServer, running_prometheus
from tests.helpers.sdk import API_KEY
from tests.helpers.semconv import MODES, mode_environ
from tests.helpers.sidecar import SidecarFactory

SAMPLED_MODEL = "gpt-4o-mini"
UNSAMPLED_MODEL = "gpt-4o"
# (duration, time to first chunk) histogram names per mode.
HISTOGRAMS = {
    "v1.41": [
        "gen_ai_client_operation_duration_seconds",
        "gen_ai_client_operation_time_to_first_chunk_seconds",
    ],
    "latest": [
        "gen_ai_client_inference_duration_seconds",
        "gen_ai_client_inference_time_to_first_chunk_seconds",
    ],
}
HISTOGRAMS["dup"] = HISTOGRAMS["v1.41"] + HISTOGRAMS["latest"]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = start_receiver("grpc")
    yield running
    running.stop()


async def exemplars_of(
    prometheus: PrometheusServer, histogram: str, model: str, since: float
) -> list[dict[str, Any]]:
    selector = f'{histogram}_bucket{{gen_ai_request_model="{model}"}}'
    found = await prometheus.exemplars(selector, since, time.time() + 60)
    return [exemplar for series in found for exemplar in series["exemplars"]]


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
async def test_an_exemplar_leads_to_the_calls_trace(
    mode: str, receiver: OtlpReceiver, sidecar_factory: SidecarFactory, tmp_path: Path
) -> None:
    environ = mode_environ(mode, **receiver.environ())
    sidecar = await sidecar_factory(environ=environ)
    admin = urlsplit(sidecar.admin_url).netloc
    started = time.time() - 5
    features = ("exemplar-storage",)
    async with running_prometheus([admin], tmp_path / "prom", features=features) as prometheus:
        await prometheus.wait_for_series('up{job="model-sidecar"} == 1')
        app = openai.AsyncOpenAI(base_url=f"{sidecar.proxy_url}/v1", api_key=API_KEY, max_retries=0)
        # A slow streamed call, sampled (a root span: the sidecar makes the trace id).
        stream = await app.chat.completions.create(
            model=SAMPLED_MODEL,
            messages=[{"role": "user", "content": "Which bucket am I in?"}],
            stream=True,
            extra_headers={"x-sim-stall-before-headers-ms": "400"},
        )
        async for _chunk in stream:
            pass
        # The app's parent is not sampled: neither is the call's span, and no exemplar.
        unsampled_trace = 0x5EED0000000000000000000000000001
        await app.chat.completions.create(
            model=UNSAMPLED_MODEL,
            messages=[{"role": "user", "content": "Not traced."}],
            extra_headers={"traceparent": format_traceparent(unsampled_trace, 0x77, False)},
        )
        await app.close()

        [span] = await receiver.wait_for_spans(1)
        assert span.name == f"chat {SAMPLED_MODEL}"
        trace_id = f"{span.trace_id:032x}"
        duration_s = (span.end_unix_ns - span.start_unix_ns) / 1e9
        assert duration_s >= 0.4

        for histogram in HISTOGRAMS[mode]:
            found = await exemplars_of(prometheus, histogram, SAMPLED_MODEL, started)
            deadline = time.monotonic() + 20
            while not found and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                found = await exemplars_of(prometheus, histogram, SAMPLED_MODEL, started)
            assert len(found) == 1, (histogram, found)
            [exemplar] = found
            # Prometheus returns exactly the span's trace id, as Grafana links it.
            assert exemplar["labels"] == {"trace_id": trace_id}
            if "duration" in histogram:
                assert float(exemplar["value"]) == pytest.approx(duration_s, abs=0.01)
            assert started <= float(exemplar["timestamp"]) <= time.time()
            assert await exemplars_of(prometheus, histogram, UNSAMPLED_MODEL, started) == []
        # Only the sampled call's span was exported.
        assert [s.trace_id for s in receiver.spans] == [span.trace_id]
