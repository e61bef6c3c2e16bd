"""`model-sidecar serve` with a `bedrock` upstream, as a pod runs it: the pod's credentials in
its environment, the app's in the app's. Bedrock calls show up in /metrics and as spans, the
README's snippet works, and no credential reaches a log line, a metric or a span."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from genai_prices import Usage, calc_price
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.aws import (
    POD_ACCESS_KEY,
    POD_SECRET_KEY,
    POD_SESSION_TOKEN,
    pod_environ,
)
from tests.helpers.bedrock import (
    APP_ACCESS_KEY,
    APP_SECRET_KEY,
    REGION,
    SONNET,
    app_client,
    in_thread,
)
from tests.helpers.chart import REPO
from tests.helpers.metrics import total
from tests.helpers.otlp import SPAN_KIND_CLIENT, OtlpReceiver, start_receiver
from tests.helpers.serve import serve_process
from tests.helpers.simulator import RunningSimulator

MESSAGES = [{"role": "user", "content": [{"text": "What is a sidecar? Two sentences."}]}]
COMMON = {"gen_ai_provider_name": "aws.bedrock", "upstream": "bedrock"}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = start_receiver("http/protobuf")
    yield running
    running.stop()


def write_config(path: Path, simulator: RunningSimulator) -> Path:
    config = {
        "upstreams": {"bedrock": {"url": simulator.url, "region": REGION}},
        "log": {"level": "debug", "access_log": True},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def readme_snippet() -> str:
    """The README's boto3 example (the Python block that makes a bedrock-runtime client)."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    (snippet,) = [block for block in blocks if 'boto3.client("bedrock-runtime"' in block]
    return snippet


def cost_of(usage: dict[str, int]) -> float:
    read, write = usage["cacheReadInputTokens"], usage["cacheWriteInputTokens"]
    priced = Usage(
        input_tokens=usage["inputTokens"] + read + write,
        cache_read_tokens=read,
        cache_write_tokens=write,
        output_tokens=usage["outputTokens"],
    )
    return float(calc_price(priced, SONNET, provider_id="aws").total_price)


@pytest.mark.slow
async def test_a_served_sidecar_measures_bedrock_and_shows_no_credential(
    simulator: RunningSimulator,
    receiver: OtlpReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    simulator.sim.aws.accept(POD_ACCESS_KEY, POD_SECRET_KEY, session_token=POD_SESSION_TOKEN)
    config = write_config(tmp_path / "sidecar.yaml", simulator)
    env = {**pod_environ(tmp_path), **receiver.environ(), "MODEL_SIDECAR_CONFIG": str(config)}
    # The README's snippet runs as an app would: its own keys and region in its environment.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", APP_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", APP_SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)

    async with serve_process(simulator.url, env) as served:
        client = app_client(served.proxy)

        def stream() -> list[dict[str, Any]]:
            reply = client.converse_stream(modelId=SONNET, messages=MESSAGES)
            return list(reply["stream"])

        events = await in_thread(stream)
        snippet = readme_snippet().replace("http://127.0.0.1:8788", served.proxy)
        namespace: dict[str, Any] = {}
        await in_thread(lambda: exec(snippet, namespace))
        async with aiohttp.ClientSession() as http:
            async with http.get(served.admin + "/metrics") as response:
                exposition = await response.text()
        spans = await receiver.wait_for_spans(2)
        signatures = [r.headers["Authorization"] for r in simulator.sim.received]
        served.process.terminate()
        assert served.process.stderr is not None
        logged = served.startup.encode() + await served.process.stderr.read()
        assert await asyncio.wait_for(served.process.wait(), 30) == 0

    # The calls were signed by the sidecar with the pod's key, and answered.
    assert all(f"Credential={POD_ACCESS_KEY}/" in signature for signature in signatures)
    assert namespace["reply"]["stopReason"] == "end_turn"
    usages = [events[-1]["metadata"]["usage"], namespace["reply"]["usage"]]

    # /metrics: both calls, exact tokens, the cost of both, one time to first chunk (the stream).
    samples = [s for family in text_string_to_metric_families(exposition) for s in family.samples]
    labels = {**COMMON, "gen_ai_request_model": SONNET, "gen_ai_operation_name": "chat"}
    assert total(samples, "model_sidecar_requests_total", outcome="ok", **labels) == 2
    tokens = {
        kind: total(samples, "model_sidecar_tokens_total", gen_ai_token_type=kind, **labels)
        for kind in ("input", "output", "cache_read", "cache_creation")
    }
    assert tokens == {
        "input": sum(
            u["inputTokens"] + u["cacheReadInputTokens"] + u["cacheWriteInputTokens"]
            for u in usages
        ),
        "output": sum(u["outputTokens"] for u in usages),
        "cache_read": sum(u["cacheReadInputTokens"] for u in usages),
        "cache_creation": sum(u["cacheWriteInputTokens"] for u in usages),
    }
    cost = total(samples, "model_sidecar_cost_usd_total", **labels)
    assert cost == pytest.approx(sum(cost_of(u) for u in usages))
    ttfc = "gen_ai_client_operation_time_to_first_chunk_seconds_count"
    assert total(samples, ttfc, **labels) == 1

    # The ConverseStream call's span.
    (span,) = [s for s in spans if s.attributes.get("gen_ai.response.time_to_first_chunk")]
    assert (span.name, span.kind) == (f"chat {SONNET}", SPAN_KIND_CLIENT)
    attributes = span.attributes
    assert attributes["gen_ai.provider.name"] == "aws.bedrock"
    assert attributes["gen_ai.request.model"] == SONNET
    assert attributes["gen_ai.usage.input_tokens"] == tokens["input"] - (
        usages[1]["inputTokens"]
        + usages[1]["cacheReadInputTokens"]
        + usages[1]["cacheWriteInputTokens"]
    )
    assert attributes["gen_ai.usage.output_tokens"] == usages[0]["outputTokens"]
    assert attributes["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert attributes["model_sidecar.cost_usd"] == pytest.approx(cost_of(usages[0]))
    assert attributes["server.address"] == "127.0.0.1"
    latency = events[-1]["metadata"]["metrics"]["latencyMs"] / 1000
    assert attributes["model_sidecar.provider_latency_seconds"] == pytest.approx(latency)

    # No credential anywhere: not the pod's key, secret or session token, not the app's.
    span_bytes = receiver.raw_bytes
    shown = {"logs": logged, "metrics": exposition.encode(), "spans": span_bytes}
    assert b"AWS credentials found (env)" in logged  # the logs are there to look into
    for secret in (
        POD_ACCESS_KEY,
        POD_SECRET_KEY,
        POD_SESSION_TOKEN,
        APP_ACCESS_KEY,
        APP_SECRET_KEY,
        *(s.split("Signature=")[1] for s in signatures),
    ):
        for where, data in shown.items():
            assert secret.encode() not in data, f"{secret!r} reached the {where}"


async def test_without_botocore_a_bedrock_upstream_is_a_one_line_start_up_error() -> None:
    code = (
        "import sys; sys.modules['botocore'] = None\n"
        "from sidecar.cli import main\n"
        "sys.exit(main(['serve', '--upstream', "
        "'bedrock=https://bedrock-runtime.us-east-1.amazonaws.com']))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    lines = err.decode().splitlines()
    assert lines[0] == "model-sidecar: invalid configuration:"
    (problem,) = lines[1:]
    assert "upstream 'bedrock'" in problem and "pip install 'model-sidecar[aws]'" in problem
    assert "Traceback" not in err.decode()
