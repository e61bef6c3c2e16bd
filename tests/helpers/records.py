"""CallRecords for tests: a sink that keeps them, and one finished call with every field known."""

from __future__ import annotations

import asyncio
from typing import Any

from sidecar.record import CallRecord, RequestInfo


class RecordingSink:
    """A sink that keeps every finished CallRecord, for assertions."""

    name = "recording"

    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self.started: list[CallRecord] = []
        self._arrived = asyncio.Event()

    def call_started(self, record: CallRecord) -> None:
        self.started.append(record)

    def call_finished(self, record: CallRecord) -> None:
        self.records.append(record)
        self._arrived.set()

    def dropped(self, record: CallRecord) -> None:
        return None

    def close(self) -> None:
        return None

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[CallRecord]:
        """Wait until at least `count` records arrived; return them all."""
        async with asyncio.timeout(timeout):
            while len(self.records) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.records


# The call make_record describes: an app's traced OpenAI chat stream with content captured.
PROMPT = "What is the capital of France? (a secret prompt)"
ANSWER = "Paris is the capital of France."
APP_TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
APP_SPAN_ID = 0x00F067AA0BA902B7
CALL_SPAN_ID = 0x1122334455667788
START_NS = 1_764_000_000_123_456_789


def make_record(**changes: Any) -> CallRecord:
    """A finished, streamed OpenAI chat call with every field known; `changes` override."""
    request = RequestInfo(
        operation="chat",
        request_model="gpt-4o-mini",
        stream=True,
        temperature=0.2,
        max_tokens=256,
        top_p=0.9,
        seed=7,
        choice_count=2,
    )
    record = CallRecord(
        upstream="openai",
        protocol="openai",
        provider_name="openai",
        method="POST",
        path="/v1/chat/completions",
        server_address="api.openai.com",
        server_port=443,
        request=request,
        request_body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]},
        start_unix_ns=START_NS,
        received=100.0,
        upstream_headers=100.1,
        first_chunk=100.25,
        end=101.5,
        upstream_wait=1.4,
        client_wait=0.05,
        http_status=200,
        response_model="gpt-4o-mini-2024-07-18",
        response_id="chatcmpl-123",
        finish_reasons=["stop", "length"],
        input_tokens=120,
        output_tokens=40,
        cache_read_tokens=100,
        cache_creation_tokens=3,
        reasoning_tokens=16,
        client_retry_count=1,
        sidecar_retries=0,
        trace_id=APP_TRACE_ID,
        span_id=CALL_SPAN_ID,
        parent_span_id=APP_SPAN_ID,
        trace_sampled=True,
        cost_usd=0.00042,
        confidence=0.93,
        experiment="exp-a",
        variant="candidate",
        output_text=ANSWER,
    )
    for key, value in changes.items():
        setattr(record, key, value)
    return record
