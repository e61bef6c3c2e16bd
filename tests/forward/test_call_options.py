"""What a call carries to the stages and sinks is decided once, before it is forwarded: the
request body only when a stage needs it (and within a budget), a hash for repeatability."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from sidecar.forward.exchange import failure_outcome
from sidecar.forward.facts import MAX_KEPT_BODY_BYTES
from sidecar.http1.errors import UpstreamConnectError, UpstreamPayloadError
from sidecar.record import (
    CLIENT_CANCELLED,
    CONNECTION_ERROR,
    NEED_AUDIT,
    NEED_OUTPUT,
    NO_OPTIONS,
    STREAM_INTERRUPTED,
    TIMEOUT,
    options_for,
)
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import SidecarFactory

QUESTION = [{"role": "user", "content": "hello"}]


def test_options_are_frozen_and_shared_per_combination() -> None:
    options = options_for(NEED_OUTPUT | NEED_AUDIT)
    assert options is options_for(NEED_AUDIT | NEED_OUTPUT)
    assert options.keep_output and options.audit
    assert not (options.keep_request_body or options.fingerprint or options.logprobs)
    assert options_for(0) is NO_OPTIONS
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.audit = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("error", "response_began", "outcome"),
    [
        (TimeoutError(), False, TIMEOUT),
        (TimeoutError(), True, TIMEOUT),
        (UpstreamConnectError("refused"), False, CONNECTION_ERROR),
        (ConnectionResetError(), False, CONNECTION_ERROR),
        (UpstreamPayloadError("cut"), True, STREAM_INTERRUPTED),
        (ConnectionResetError(), True, STREAM_INTERRUPTED),
        (asyncio.CancelledError(), False, CLIENT_CANCELLED),
        (asyncio.CancelledError(), True, CLIENT_CANCELLED),
    ],
)
def test_one_mapping_from_an_exception_to_an_outcome(
    error: BaseException, response_began: bool, outcome: str
) -> None:
    assert failure_outcome(error, response_began) == outcome


async def test_the_request_body_reaches_the_sinks_only_when_a_stage_needs_it(
    sidecar_factory: SidecarFactory, records: RecordingSink, sdk: SDKClients, tmp_path: Path
) -> None:
    plain = await sidecar_factory()
    await sdk.openai(plain.proxy_url).chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION
    )
    [record] = await records.wait_for(1)
    assert record.request_body is None and not record.options.keep_request_body
    assert record.output_text is None  # nothing asked the parser to keep it

    path = tmp_path / "audit.jsonl"
    audited = await sidecar_factory({"audit": {"sample_rate": 1.0, "path": str(path)}})
    client = sdk.openai(audited.proxy_url)
    await client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    big = [{"role": "user", "content": "x" * MAX_KEPT_BODY_BYTES}]
    await client.chat.completions.create(model="gpt-4o-mini", messages=big)
    _, small_record, big_record = await records.wait_for(3)
    assert small_record.options.audit and small_record.request_body["messages"] == QUESTION
    # Over the budget the body stays behind; the call is still audited, without its request.
    assert big_record.options.audit and big_record.request_body is None
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["request"] is None for line in lines] == [False, True]


async def test_repeatability_keeps_a_hash_of_the_request_not_the_request(
    sidecar_factory: SidecarFactory, records: RecordingSink, sdk: SDKClients
) -> None:
    sidecar = await sidecar_factory()
    client = sdk.openai(sidecar.proxy_url)
    await client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, temperature=0)
    await client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, temperature=0)
    await client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    first, second, other = await records.wait_for(3)
    assert first.request_fingerprint is not None and len(first.request_fingerprint) == 16
    assert second.request_fingerprint == first.request_fingerprint
    assert second.repeat_result == "same"
    assert first.request_body is None and second.request_body is None
    assert other.request_fingerprint is None and other.repeat_result is None
