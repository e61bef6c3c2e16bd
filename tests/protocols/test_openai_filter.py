"""Stream usage injection, and the filter that hides it from the app byte-exactly."""

from __future__ import annotations

import orjson
import pytest

from sidecar.protocols.openai import OpenAIProtocol
from sidecar.protocols.openai_filter import InjectedFieldsFilter
from tests.helpers.openai_streams import COMPLETION_STREAM, chat_stream
from tests.helpers.wire import new_record, parse, split

OPENAI = OpenAIProtocol()
CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Hi"}]


def inject(body: dict[str, object], raw: bytes | None = None, path: str = CHAT) -> bytes | None:
    raw = orjson.dumps(body) if raw is None else raw
    return OPENAI.inject_stream_usage(OPENAI.classify("POST", path, "", body), body, raw)


def filtered(stream: bytes, piece_size: int) -> bytes:
    stream_filter = OPENAI.stream_filter()
    out = [stream_filter.feed(piece) for piece in split(stream, piece_size)]
    out.append(stream_filter.flush())
    return b"".join(out)


# --- injection -------------------------------------------------------------------


def test_inject_appends_before_final_brace() -> None:
    raw = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "}"}], '
    raw += b'"stream": true}\n'
    body = orjson.loads(raw)
    injected = inject(body, raw)
    assert injected == raw[:-2] + b',"stream_options":{"include_usage":true}}\n'
    assert orjson.loads(injected) == {**body, "stream_options": {"include_usage": True}}


@pytest.mark.parametrize(
    "options",
    [{"include_usage": False}, {"include_obfuscation": False}, None],
)
def test_inject_merges_existing_stream_options(options: object) -> None:
    body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True, "stream_options": options}
    injected = inject(body)
    assert injected is not None
    merged = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    assert orjson.loads(injected) == {**body, "stream_options": merged}


def test_inject_text_completion_stream() -> None:
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "Once", "stream": True}
    injected = inject(body, path="/v1/completions")
    assert injected is not None
    assert orjson.loads(injected)["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (
            {
                "model": "m",
                "messages": MESSAGES,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
            CHAT,
        ),
        ({"model": "m", "messages": MESSAGES}, CHAT),
        ({"model": "m", "messages": MESSAGES, "stream": "true"}, CHAT),
        ({"model": "m", "input": "Hi", "stream": True}, "/v1/responses"),
        ({"model": "m", "input": "Hi", "stream": True}, "/v1/embeddings"),
        ({"model": "m", "messages": MESSAGES, "stream": True}, "/v1/models"),
    ],
)
def test_inject_not_needed(body: dict[str, object], path: str) -> None:
    assert inject(body, path=path) is None


def test_inject_ignores_non_object_bodies() -> None:
    info = OPENAI.classify("POST", CHAT, "", [1, 2])
    assert OPENAI.inject_stream_usage(info, [1, 2], b"[1,2]") is None


# --- the filter -------------------------------------------------------------------


@pytest.mark.parametrize("piece_size", [1, 2, 7, 64, 100_000])
def test_round_trip_is_byte_exact(piece_size: int) -> None:
    assert filtered(chat_stream(injected=True), piece_size) == chat_stream(injected=False)


@pytest.mark.parametrize("piece_size", [1, 5, 100_000])
def test_round_trip_with_crlf_framing(piece_size: int) -> None:
    upstream = chat_stream(injected=True).replace(b"\n", b"\r\n")
    expected = chat_stream(injected=False).replace(b"\n", b"\r\n")
    assert filtered(upstream, piece_size) == expected


def test_round_trip_text_completions() -> None:
    expected = (
        COMPLETION_STREAM.replace(b',"usage":null', b"")
        .replace(b'data: {"id":"cmpl-9a","object":"text_completion","created":1719000000,'
                 b'"model":"gpt-3.5-turbo-instruct","choices":[],"usage":{"prompt_tokens":5,'
                 b'"completion_tokens":7,"total_tokens":12}}\n\n', b"")
    )  # fmt: skip
    assert expected.count(b"data:") == 4
    assert filtered(COMPLETION_STREAM, 3) == expected


def test_parser_sees_usage_while_app_does_not() -> None:
    upstream = chat_stream(injected=True)
    record = new_record(OPENAI, CHAT, {"model": "gpt-4o-mini", "messages": MESSAGES})
    parse(OPENAI, record, "text/event-stream", upstream, "pieces")
    assert record.input_tokens == 2006
    app_bytes = filtered(upstream, 9)
    assert b'"usage"' not in app_bytes
    assert app_bytes.endswith(b"data: [DONE]\n\n")


def test_spaced_usage_fields_are_removed() -> None:
    upstream = (
        b'data: {"usage": null, "id": "c1", "choices": [{"delta": {"content": "A"}}]}\n\n'
        b'data: {"id": "c1", "choices": [{"index": 0, "delta": {}}], "usage" : null}\n\n'
        b'data: {"id": "c1", "choices": [], "usage": {"prompt_tokens": 3}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert filtered(upstream, 4) == (
        b'data: {"id": "c1", "choices": [{"delta": {"content": "A"}}]}\n\n'
        b'data: {"id": "c1", "choices": [{"index": 0, "delta": {}}]}\n\n'
        b"data: [DONE]\n\n"
    )


def test_usage_attached_to_a_choice_chunk_is_cut_from_it() -> None:
    upstream = (
        b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":3,"completion_tokens":1,"prompt_tokens_details":'
        b'{"cached_tokens":0}},"x":"}"}\n\n'
        b'data: {"usage":{"prompt_tokens":3,"note":"a \\"}\\" b"},"id":"c2","choices":[]}\n\n'
        b"data: [DONE]\n\n"
    )
    assert filtered(upstream, 3) == (
        b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
        b'"x":"}"}\n\n'
        b"data: [DONE]\n\n"
    )


def test_other_bytes_pass_unchanged_and_partial_events_are_held() -> None:
    stream_filter = InjectedFieldsFilter(usage=True, logprobs=False)
    first = b': keep-alive\n\ndata: {"id":"c","choices":[{"delta":{"content":"usage"}}]}\n\n'
    assert stream_filter.feed(first + b'data: {"id":"c","cho') == first
    assert stream_filter.feed(b'ices":[]}\n') == b""
    assert stream_filter.feed(b"\n") == b'data: {"id":"c","choices":[]}\n\n'
    assert stream_filter.feed(b"data: [DO") == b""
    assert stream_filter.flush() == b"data: [DO"
    assert stream_filter.flush() == b""


def test_content_mentioning_usage_is_untouched() -> None:
    # Inside JSON strings quotes are escaped, so look-alikes of the field never match.
    event = (
        b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"say \\"usage\\":null, '
        b'\\"choices\\":[] and ,\\"usage\\":null"}}]}\n\n'
    )
    assert filtered(event, 5) == event


def test_flush_strips_a_final_event_without_blank_line() -> None:
    stream_filter = InjectedFieldsFilter(usage=True, logprobs=False)
    out = stream_filter.feed(b'data: {"id":"c","choices":[{"delta":{}}],"usage":null}')
    assert out + stream_filter.flush() == b'data: {"id":"c","choices":[{"delta":{}}]}'
