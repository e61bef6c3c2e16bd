"""The per-model summary read from /metrics: quantiles as Prometheus computes them, and `report`."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import pytest

from sidecar.app import Sidecar
from sidecar.tools.report import DURATION, Histogram, summarize
from sidecar.tools.report_prometheus import window_increase
from tests.helpers.known_calls import known_calls
from tests.helpers.records import RecordingSink
from tests.helpers.semconv import feed, sink_in_mode


def test_quantile_interpolates_within_the_bucket_like_histogram_quantile() -> None:
    histogram = Histogram()
    for le, count in ((0.1, 10), (0.2, 30), (0.4, 40), (float("inf"), 40)):
        histogram.add(le, count)
    # rank 20 of 40 lies halfway through the (0.1, 0.2] bucket.
    assert histogram.quantile(0.5) == pytest.approx(0.15)
    # rank 38 of 40: 8 of the 10 calls in (0.2, 0.4].
    assert histogram.quantile(0.95) == pytest.approx(0.2 + 0.2 * 8 / 10)
    assert Histogram().quantile(0.5) is None


async def test_summary_and_report_command_read_a_live_sidecar(
    sidecar: Sidecar, records: RecordingSink
) -> None:
    async with aiohttp.ClientSession() as http:
        for model, status in (("gpt-4o-mini", "200"), ("gpt-4o-mini", "503"), ("o3-mini", "200")):
            headers = {} if status == "200" else {"x-sim-status": status}
            async with http.post(
                sidecar.proxy_url + "/v1/chat/completions",
                json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                headers=headers,
            ) as response:
                await response.read()
        await records.wait_for(3)
        async with http.get(sidecar.admin_url + "/metrics") as response:
            text = await response.text()
    stats = {s.key[0]: s for s in summarize(text)}
    assert stats["gpt-4o-mini"].calls == 2 and stats["gpt-4o-mini"].error_ratio == 0.5
    assert stats["o3-mini"].calls == 1 and stats["o3-mini"].error_ratio == 0
    assert stats["o3-mini"].tokens["reasoning"] > 0
    p50 = stats["o3-mini"].duration.quantile(0.5)
    assert p50 is not None and 0 < p50 < 5

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar.cli",
        "report",
        sidecar.admin_url,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    lines = out.decode().splitlines()
    mini = next(line for line in lines if "gpt-4o-mini" in line)
    assert "50.0%" in mini
    assert any("o3-mini" in line for line in lines)


def exposition(mode: str) -> str:
    sink = sink_in_mode(mode)
    feed(sink, known_calls())
    return sink.render("")[0].decode()


@pytest.mark.parametrize("mode", ["latest", "dup"])
def test_the_summary_is_the_same_in_every_convention_mode(mode: str) -> None:
    """Durations and times to first chunk are read under whichever names the mode exports,
    each call once (dup mode exports inference calls under both names)."""
    before = {stats.key: stats for stats in summarize(exposition("v1.41"))}
    after = {stats.key: stats for stats in summarize(exposition(mode))}
    assert set(before) == set(after) and len(before) >= 6
    for key, stats in before.items():
        for histogram in ("duration", "ok_duration", "ttfc"):
            old, new = getattr(stats, histogram), getattr(after[key], histogram)
            assert (new.buckets, new.count) == (old.buckets, old.count), (key, histogram)
            assert new.total == pytest.approx(old.total)
        assert after[key].calls == stats.calls
    gpt = before[("gpt-4o",)]
    assert gpt.ttfc.buckets[float("inf")] == 1 and gpt.duration.count == 3


def test_prometheus_report_reads_every_generation_newest_first() -> None:
    expr = window_increase(DURATION + "_bucket", "1h", "gen_ai_request_model, le")
    names = [
        "gen_ai_client_inference_duration_seconds_bucket",
        "gen_ai_client_embeddings_duration_seconds_bucket",
        "gen_ai_client_operation_duration_seconds_bucket",
    ]
    assert [expr.index(f"increase({name}[1h])") for name in names] == sorted(
        expr.index(f"increase({name}[1h])") for name in names
    )
    # Each name: its increase or its whole value; the three names joined: five `or`s.
    assert expr.count(" or ") == 5 and expr.startswith("sum by (")
    plain = window_increase("model_sidecar_requests_total", "1h", "outcome")
    assert plain == (
        "sum by (outcome) (((increase(model_sidecar_requests_total[1h]) and "
        "model_sidecar_requests_total offset 1h) or model_sidecar_requests_total))"
    )
