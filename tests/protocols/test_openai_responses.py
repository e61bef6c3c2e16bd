"""OpenAI Responses API: the typed event stream and the response object."""

from __future__ import annotations

import re

import orjson
import pytest

from sidecar.protocols.openai import OpenAIProtocol
from tests.helpers.wire import WAYS, new_record, parse

OPENAI = OpenAIProtocol()
PATH = "/v1/responses"
REQUEST = {"model": "gpt-4.1-mini", "input": "Say hi", "stream": True}
SSE = "text/event-stream; charset=utf-8"

_MESSAGE = {
    "id": "msg_68a1",
    "type": "message",
    "status": "completed",
    "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Hi there"}],
    "role": "assistant",
}


def response_object(status: str, **changes: object) -> dict[str, object]:
    """A Responses API object as OpenAI returns it."""
    done = status != "in_progress"
    response: dict[str, object] = {
        "id": "resp_68a1",
        "object": "response",
        "created_at": 1755000000,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "gpt-4.1-mini-2025-04-14",
        "output": [_MESSAGE] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": 1312,
            "input_tokens_details": {"cached_tokens": 1152},
            "output_tokens": 148,
            "output_tokens_details": {"reasoning_tokens": 128},
            "total_tokens": 1460,
        }
        if done
        else None,
        "user": None,
        "metadata": {},
    }
    response.update(changes)
    return response


def event(kind: str, sequence: int, **fields: object) -> bytes:
    """One SSE event with its `event:` line, as the Responses API sends it."""
    data = orjson.dumps({"type": kind, "sequence_number": sequence, **fields})
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def responses_stream(terminal: str = "response.completed", **changes: object) -> bytes:
    item = {"item_id": "msg_68a1", "output_index": 0, "content_index": 0}
    final_status = {
        "response.completed": "completed",
        "response.incomplete": "incomplete",
        "response.failed": "failed",
    }[terminal]
    return b"".join(
        (
            event("response.created", 0, response=response_object("in_progress")),
            event("response.in_progress", 1, response=response_object("in_progress")),
            event(
                "response.output_item.added",
                2,
                output_index=0,
                item={**_MESSAGE, "status": "in_progress", "content": []},
            ),
            event(
                "response.content_part.added",
                3,
                **item,
                part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
            ),
            event("response.output_text.delta", 4, **item, delta="Hi", logprobs=[]),
            event("response.output_text.delta", 5, **item, delta=" there", logprobs=[]),
            event("response.output_text.done", 6, **item, text="Hi there", logprobs=[]),
            event("response.output_item.done", 7, output_index=0, item=_MESSAGE),
            event(terminal, 8, response=response_object(final_status, **changes)),
        )
    )


@pytest.mark.parametrize("way", WAYS)
def test_completed_stream(way: str) -> None:
    record = new_record(OPENAI, PATH, REQUEST)
    parser = parse(OPENAI, record, SSE, responses_stream(), way)
    assert record.request.operation == "chat"
    assert parser.complete
    assert record.response_id == "resp_68a1"
    assert record.response_model == "gpt-4.1-mini-2025-04-14"
    assert record.finish_reasons == ["stop"]
    assert (record.input_tokens, record.output_tokens) == (1312, 148)
    assert (record.cache_read_tokens, record.reasoning_tokens) == (1152, 128)
    assert len(record.chunk_times) == 2
    assert record.output_text is None


def test_stream_without_event_lines_uses_type_field() -> None:
    stream = re.sub(rb"event: [^\n]*\n", b"", responses_stream())
    record = new_record(OPENAI, PATH, REQUEST, capture=True)
    parser = parse(OPENAI, record, SSE, stream, "pieces")
    assert parser.complete
    assert len(record.chunk_times) == 2
    assert record.output_text == "Hi there"


def test_incomplete_stream_reports_reason() -> None:
    stream = responses_stream(
        "response.incomplete", incomplete_details={"reason": "max_output_tokens"}
    )
    record = new_record(OPENAI, PATH, REQUEST)
    parser = parse(OPENAI, record, SSE, stream)
    assert parser.complete
    assert record.finish_reasons == ["max_output_tokens"]


def test_failed_stream_reports_error_code() -> None:
    error = {"code": "server_error", "message": "The model failed to generate a response."}
    record = new_record(OPENAI, PATH, REQUEST)
    parser = parse(OPENAI, record, SSE, responses_stream("response.failed", error=error))
    assert parser.complete
    assert record.finish_reasons == ["failed"]
    assert record.provider_error_type == "server_error"


def test_error_event_and_cut_stream() -> None:
    stream = responses_stream()
    cut = stream[: stream.index(b"event: response.output_text.done")]
    error = b'event: error\ndata: {"type":"error","code":"ERR_SOMETHING","message":"x","param":null,"sequence_number":6}\n\n'  # noqa: E501
    record = new_record(OPENAI, PATH, REQUEST)
    parser = parse(OPENAI, record, SSE, cut + error, "crlf")
    assert not parser.complete
    assert record.provider_error_type == "ERR_SOMETHING"
    assert record.response_id == "resp_68a1"  # from response.created
    assert record.input_tokens is None
    assert record.finish_reasons == []


def test_function_call_output_finishes_with_tool_calls() -> None:
    call = {
        "id": "fc_1",
        "type": "function_call",
        "status": "completed",
        "arguments": '{"city":"Paris"}',
        "call_id": "call_1",
        "name": "get_weather",
    }
    body = orjson.dumps(response_object("completed", output=[call]))
    record = new_record(OPENAI, PATH, {**REQUEST, "stream": False}, capture=True)
    parse(OPENAI, record, "application/json", body, "gzip")
    assert record.finish_reasons == ["tool_calls"]
    assert record.output_text == ""


@pytest.mark.parametrize("way", WAYS)
def test_response_body(way: str) -> None:
    body = orjson.dumps(response_object("completed"), option=orjson.OPT_INDENT_2)
    record = new_record(OPENAI, PATH, {**REQUEST, "stream": False}, capture=True)
    parse(OPENAI, record, "application/json", body, way)
    assert record.response_id == "resp_68a1"
    assert record.finish_reasons == ["stop"]
    assert (record.input_tokens, record.output_tokens) == (1312, 148)
    assert (record.cache_read_tokens, record.reasoning_tokens) == (1152, 128)
    assert record.output_text == "Hi there"


def test_responses_request_is_never_given_include_usage() -> None:
    info = OPENAI.classify("POST", PATH, "", REQUEST)
    assert OPENAI.inject_stream_usage(info, REQUEST, orjson.dumps(REQUEST)) is None
