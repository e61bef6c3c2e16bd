"""The Realtime API end to end: the openai SDK's realtime client (its `realtime` extra, over
`websockets`) through a real sidecar to the simulator. The app's events arrive byte for byte;
every response is measured (usage, time to first text or audio delta, cost) and is a child of
the session's span; either side leaving closes the other within a second; bad frames pass
unchanged; a key carried as a subprotocol reaches no log, metric or span."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import openai
import orjson
import pytest
import websockets
from genai_prices import Usage, calc_price
from websockets.asyncio.client import connect

from sidecar.record import CallRecord
from tests.helpers.logs import captured_logs
from tests.helpers.providers import Rig
from tests.helpers.realtime import Turn, kind, read_until, sdk_turn, ws_until
from tests.helpers.sdk import API_KEY
from tests.helpers.simulator import RunningSimulator

MODEL = "gpt-realtime"
SNAPSHOT = "gpt-realtime-2025-08-28"
TEXT_ONLY = {"type": "realtime", "output_modalities": ["text"]}
SESSIONS = "model_sidecar_realtime_sessions"
DURATION = "model_sidecar_realtime_session_duration_seconds_count"
FIRST_OUTPUT = "model_sidecar_realtime_time_to_first_output_seconds"


def client(base: str, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=0, **options)


def price(usage: dict[str, Any]) -> float:
    """What genai-prices says a response.done usage of gpt-realtime costs."""
    details = usage["input_token_details"]
    counts = Usage(
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        cache_read_tokens=details["cached_tokens"],
        input_audio_tokens=details["audio_tokens"],
        cache_audio_read_tokens=details["cached_tokens_details"]["audio_tokens"],
        output_audio_tokens=usage["output_token_details"]["audio_tokens"],
    )
    return float(calc_price(counts, SNAPSHOT, provider_id="openai").total_price)


def check_response(record: CallRecord, turn: Turn) -> None:
    """A response's record says exactly what its response.done said, and the time to its first
    output delta as the sidecar saw it lies within what the app saw."""
    usage = turn.usage
    details = usage["input_token_details"]
    assert record.response_id == turn.done["response"]["id"]
    assert (record.provider_name, record.request.operation) == ("openai", "chat")
    assert (record.request.request_model, record.response_model) == (MODEL, SNAPSHOT)
    assert record.request.stream is True
    assert (record.outcome, record.finish_reasons) == ("ok", ["completed"])
    assert (record.input_tokens, record.output_tokens) == (
        usage["input_tokens"],
        usage["output_tokens"],
    )
    assert record.cache_read_tokens == details["cached_tokens"]
    assert record.input_audio_tokens == details["audio_tokens"]
    assert record.cache_read_audio_tokens == details["cached_tokens_details"]["audio_tokens"]
    assert record.output_audio_tokens == usage["output_token_details"]["audio_tokens"]
    assert record.cost_usd == pytest.approx(price(usage), rel=1e-9)
    ttfc = record.time_to_first_chunk
    assert ttfc is not None
    # The sidecar saw response.create after the app sent it and the delta before the app got it.
    assert ttfc <= turn.time_to_first_output < ttfc + 0.05


async def session_ended(rig: Rig, count: int = 1) -> None:
    async with asyncio.timeout(5):
        while await rig.series(DURATION) < count:
            await asyncio.sleep(0.02)


async def test_a_text_session_is_relayed_byte_for_byte_and_measured_per_response(
    rig: Rig, simulator: RunningSimulator
) -> None:
    app = client(rig.url)
    headers = {"x-sim-ttft-ms": "120"}
    async with app.realtime.connect(model=MODEL, extra_headers=headers) as connection:
        received = await read_until(connection, "session.created")
        await connection.session.update(session=TEXT_ONLY)
        received += await read_until(connection, "session.updated")
        first = await sdk_turn(connection, "Which model handles this voice call?")
        second = await sdk_turn(connection, "And the next turn, please.")
        received += first.messages + second.messages
        received += await read_until(connection, "rate_limits.updated")
    await app.close()

    transcript = simulator.sim.realtime.sessions[-1]
    # Every event the simulator sent reached the app as it was sent, in order, nothing else.
    assert received == transcript.sent
    assert transcript.path_qs == f"/v1/realtime?model={MODEL}"
    assert transcript.headers["Authorization"] == f"Bearer {API_KEY}"
    assert [kind(message) for message in transcript.received] == [
        "session.update",
        *("conversation.item.create", "response.create") * 2,
    ]

    records = await rig.records_after(2)
    for record, turn in zip(records, (first, second), strict=True):
        check_response(record, turn)
        assert turn.time_to_first_output >= 0.12
    # The second turn reads the first from the prompt cache.
    assert records[1].cache_read_tokens and records[1].input_tokens > records[0].input_tokens

    await session_ended(rig)
    assert await rig.series(SESSIONS) == 0
    assert await rig.series(DURATION, error_type="", upstream="openai") == 1
    assert await rig.series(FIRST_OUTPUT + "_count", modality="text") == 2
    assert await rig.series(FIRST_OUTPUT + "_sum", modality="text") == pytest.approx(
        sum(record.first_text_chunk - record.received for record in records)  # type: ignore[operator]
    )
    assert (
        await rig.series("model_sidecar_requests_total", gen_ai_operation_name="chat", outcome="ok")
        == 2
    )
    assert await rig.series("model_sidecar_tokens_total", gen_ai_token_type="cache_read") == sum(
        record.cache_read_tokens or 0 for record in records
    )
    session_cost = await rig.series("model_sidecar_realtime_session_cost_usd_total")
    assert session_cost == pytest.approx(sum(record.cost_usd or 0 for record in records))
    await rig.assert_no_credentials()


async def test_the_session_span_has_a_child_span_per_response(rig: Rig) -> None:
    app = client(rig.url)
    async with app.realtime.connect(model=MODEL) as connection:
        await connection.session.update(session=TEXT_ONLY)
        await sdk_turn(connection, "First question.")
        await sdk_turn(connection, "Second question.")
    await app.close()
    records = await rig.records_after(2)
    await session_ended(rig)
    spans = await rig.receiver.wait_for_spans(3)
    (session,) = [span for span in spans if span.name == f"realtime_session {MODEL}"]
    children = [span for span in spans if span.parent_span_id == session.span_id]
    assert sorted(child.span_id for child in children) == sorted(
        record.span_id
        for record in records  # type: ignore[misc]
    )
    for child, record in zip(
        sorted(children, key=lambda span: span.start_unix_ns), records, strict=True
    ):
        assert child.name == f"chat {MODEL}"
        assert child.trace_id == session.trace_id
        assert session.start_unix_ns <= child.start_unix_ns <= child.end_unix_ns
        assert child.end_unix_ns <= session.end_unix_ns
        assert child.attributes["gen_ai.response.id"] == record.response_id
        assert child.attributes["gen_ai.usage.output_tokens"] == record.output_tokens
        assert child.attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(
            record.time_to_first_chunk
        )
    attributes = session.attributes
    assert attributes["model_sidecar.realtime.close_code"] == 1000
    assert attributes["model_sidecar.realtime.closed_by"] == "client"
    assert attributes["model_sidecar.realtime.responses"] == 2
    assert attributes["gen_ai.conversation.id"].startswith("sess_")
    assert attributes["gen_ai.response.model"] == SNAPSHOT
    assert attributes["gen_ai.usage.output_tokens"] == sum(r.output_tokens or 0 for r in records)
    assert attributes["model_sidecar.cost_usd"] == pytest.approx(
        sum(record.cost_usd or 0 for record in records)
    )
    assert attributes["http.response.status_code"] == 101
    assert "error.type" not in attributes


async def test_audio_answers_and_turn_detection_time_the_first_audio(rig: Rig) -> None:
    """Audio output, started by the server's turn detection when the user stops speaking: the
    clock starts at the end of the speech, the first audio delta is timed on its own."""
    app = client(rig.url)
    silence = {"turn_detection": {"type": "server_vad", "silence_duration_ms": 100}}
    update = {"type": "realtime", "audio": {"input": silence}}
    speech = base64.b64encode(bytes(48_000)).decode()  # one second of 24 kHz PCM
    async with app.realtime.connect(model=MODEL) as connection:
        await connection.session.update(session=update)
        await read_until(connection, "session.updated")
        await connection.input_audio_buffer.append(audio=speech)
        stopped = first_audio = None
        while True:
            event = orjson.loads(await connection.recv_bytes())
            now = time.perf_counter()
            if event["type"] == "input_audio_buffer.speech_stopped":
                stopped = now
            if event["type"] == "response.output_audio.delta" and first_audio is None:
                first_audio = now
            if event["type"] == "response.done":
                done = event
                break
    await app.close()
    assert stopped is not None and first_audio is not None
    (record,) = await rig.records_after(1)
    turn = Turn(asked=stopped, first_output=first_audio, done=done)
    check_response(record, turn)
    assert record.request.output_type == "speech"
    assert record.output_audio_tokens and record.input_audio_tokens
    assert record.first_audio_chunk is not None and record.first_text_chunk is None
    assert record.first_audio_chunk == record.first_chunk
    await session_ended(rig)
    assert await rig.series(FIRST_OUTPUT + "_count", modality="audio") == 1
    assert await rig.series(FIRST_OUTPUT + "_count", modality="text") == 0
    assert (
        await rig.series("model_sidecar_tokens_total", gen_ai_token_type="output_audio")
        == record.output_audio_tokens
    )


async def test_azure_realtime_through_the_sidecar(rig: Rig, simulator: RunningSimulator) -> None:
    """openai.AsyncAzureOpenAI's realtime client: `/openai/realtime?api-version=&deployment=`
    with an `api-key` header, to the azure upstream."""
    base = rig.url.replace("http://", "ws://")
    app = openai.AsyncAzureOpenAI(
        azure_endpoint=rig.url,
        api_key=API_KEY,
        api_version="2025-04-01-preview",
        websocket_base_url=f"{base}/openai",
        max_retries=0,
    )
    async with app.realtime.connect(model="realtime-prod") as connection:
        await connection.session.update(session=TEXT_ONLY)
        turn = await sdk_turn(connection, "Hello from Azure.")
    await app.close()
    transcript = simulator.sim.realtime.sessions[-1]
    assert transcript.path_qs == (
        "/openai/realtime?api-version=2025-04-01-preview&deployment=realtime-prod"
    )
    assert transcript.headers["api-key"] == API_KEY
    (record,) = await rig.records_after(1)
    assert (record.provider_name, record.upstream) == ("azure.ai.openai", "azure")
    assert (record.request.request_model, record.response_model) == ("realtime-prod", SNAPSHOT)
    assert (record.input_tokens, record.output_tokens) == (
        turn.usage["input_tokens"],
        turn.usage["output_tokens"],
    )
    assert record.cost_usd is not None and record.cost_usd > 0


async def test_the_app_leaving_closes_the_upstream_within_a_second(
    rig: Rig, simulator: RunningSimulator
) -> None:
    url = rig.url.replace("http://", "ws://") + f"/v1/realtime?model={MODEL}"
    headers = {"Authorization": f"Bearer {API_KEY}", "x-sim-chunk-interval-ms": "200"}
    async with connect(url, additional_headers=headers, max_size=None) as ws:
        await ws_until(ws, "session.created")
        await ws.send(orjson.dumps({"type": "response.create"}).decode())
        await ws_until(ws, "response.output_audio.delta")  # a response is under way
        left = time.monotonic()
        ws.transport.abort()  # the app vanishes without a Close frame
    transcript = simulator.sim.realtime.sessions[-1]
    ended = await simulator.sim.realtime.wait_ended(transcript)
    assert ended - left < 1.0
    (record,) = await rig.records_after(1)
    assert record.outcome == "client_cancelled" and record.first_chunk is not None
    assert record.input_tokens is None  # it never reached response.done
    await session_ended(rig)
    assert await rig.series(DURATION, error_type="client_cancelled") == 1
    assert await rig.series(SESSIONS) == 0


async def test_the_upstream_leaving_closes_the_app_within_a_second(
    rig: Rig, simulator: RunningSimulator
) -> None:
    app = client(rig.url)
    headers = {"x-sim-drop-after-chunks": "2"}
    async with app.realtime.connect(model=MODEL, extra_headers=headers) as connection:
        await connection.session.update(session=TEXT_ONLY)
        await connection.response.create()
        with pytest.raises(websockets.ConnectionClosedError):
            while True:
                await connection.recv_bytes()
        noticed = time.monotonic()
    await app.close()
    transcript = simulator.sim.realtime.sessions[-1]
    assert transcript.ended is not None and noticed - transcript.ended < 1.0
    (record,) = await rig.records_after(1)
    assert record.outcome == "stream_interrupted"
    assert len(record.chunk_times) == 2
    await session_ended(rig)
    assert await rig.series(DURATION, error_type="stream_interrupted") == 1
    spans = await rig.receiver.wait_for_spans(2)
    (session,) = [span for span in spans if span.name.startswith("realtime_session")]
    assert session.attributes["model_sidecar.realtime.closed_by"] == "upstream"
    assert session.status_message == "stream_interrupted"


async def test_oversized_and_malformed_frames_pass_unchanged(
    rig: Rig, simulator: RunningSimulator
) -> None:
    url = rig.url.replace("http://", "ws://") + f"/v1/realtime?model={MODEL}"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    audio = base64.b64encode(bytes(15 * 1024 * 1024)).decode()  # 20 MiB of base64
    oversized = orjson.dumps({"type": "input_audio_buffer.append", "audio": audio})
    no_turns = orjson.dumps(
        {
            "type": "session.update",
            "session": {**TEXT_ONLY, "audio": {"input": {"turn_detection": None}}},
        }
    )
    async with connect(url, additional_headers=headers, max_size=None) as ws:
        await ws_until(ws, "session.created")
        await ws.send(no_turns.decode())
        await ws_until(ws, "session.updated")
        await ws.send(oversized.decode())
        await ws.send("this is not JSON {")
        error = (await ws_until(ws, "error"))[-1]
        assert orjson.loads(error)["error"]["code"] == "invalid_json"
        transcript = simulator.sim.realtime.sessions[-1]
        assert transcript.received == [no_turns, oversized, b"this is not JSON {"]
        # Not UTF-8 in a text frame: the simulator's WebSocket library ends the session with
        # 1007, and that Close frame reaches the app as it was sent.
        await ws.send(b"\xff\xfe\xfd", text=True)
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    await session_ended(rig)
    assert await rig.series(DURATION, error_type="1007") == 1
    assert (
        await rig.series("model_sidecar_realtime_errors_total", error_type="invalid_request_error")
        == 1
    )
    # The sidecar goes on: the next session is served.
    app = client(rig.url)
    async with app.realtime.connect(model=MODEL) as connection:
        await connection.session.update(session=TEXT_ONLY)
        await sdk_turn(connection, "Still there?")
    await app.close()


async def test_a_key_in_a_subprotocol_reaches_no_log_metric_or_span(
    rig: Rig, simulator: RunningSimulator
) -> None:
    secret = "sk-subprotocol-SECRET-9f8e7d6c5b4a"
    url = rig.url.replace("http://", "ws://") + f"/v1/realtime?model={MODEL}"
    protocols = ["realtime", f"openai-insecure-api-key.{secret}", "openai-beta.realtime-v1"]
    with captured_logs("sidecar", "aiohttp", "asyncio") as logs:
        async with connect(url, subprotocols=protocols) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == "realtime"
            await ws_until(ws, "session.created")
            update = {"type": "session.update", "session": TEXT_ONLY}
            await ws.send(orjson.dumps(update).decode())
            await ws.send(orjson.dumps({"type": "response.create"}).decode())
            await ws_until(ws, "response.done")
        await rig.records_after(1)
        await session_ended(rig)
        await rig.receiver.wait_for_spans(2)
    # The credential went where it belongs: to the upstream.
    offered = simulator.sim.realtime.sessions[-1].headers["Sec-WebSocket-Protocol"]
    assert f"openai-insecure-api-key.{secret}" in offered
    assert not logs.containing(secret)
    assert secret not in await rig.metrics_text()
    assert secret.encode() not in rig.receiver.raw_bytes


async def test_a_refused_handshake_reaches_the_app_as_the_upstream_sent_it(
    rig: Rig, simulator: RunningSimulator
) -> None:
    app = client(rig.url)
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with app.realtime.connect(model=MODEL, extra_headers={"x-sim-status": "429"}):
            pass
    await app.close()
    response = refused.value.response
    assert response.status_code == 429
    assert orjson.loads(response.body)["error"]["code"] == "rate_limit_exceeded"
    await session_ended(rig)
    assert await rig.series(DURATION, error_type="429") == 1
    assert await rig.series(SESSIONS) == 0
