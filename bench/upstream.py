"""A tiny OpenAI-compatible upstream for the benchmark: canned chat completions, fast.

A raw asyncio protocol on uvloop, so that the upstream is never what limits a contender:
`python -m bench.upstream --listen 127.0.0.1:0` prints `listening on http://HOST:PORT`.
Every POST gets a chat completion (12 input, 20 output tokens, with logprobs when the body
asks for them); a body with `"stream": true` gets an SSE stream of `--chunks` (default 20)
content chunks sent `--chunk-interval-ms` apart, then the finish chunk, the usage chunk when
`stream_options.include_usage` was asked for, and `[DONE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from typing import cast

import orjson

CHUNKS = 20
MODEL = "gpt-4o-mini-2024-07-18"
TOKENS = [f" word{index}" for index in range(CHUNKS)]
USAGE = {"prompt_tokens": 12, "completion_tokens": CHUNKS, "total_tokens": 12 + CHUNKS}
LOGPROB = -0.0123

_STREAM = re.compile(rb'"stream"\s*:\s*true')
_INCLUDE_USAGE = re.compile(rb'"include_usage"\s*:\s*true')
_LOGPROBS = re.compile(rb'"logprobs"\s*:\s*true')


def _logprobs(tokens: list[str]) -> dict[str, object]:
    return {"content": [{"token": t, "logprob": LOGPROB, "top_logprobs": []} for t in tokens]}


def completion_body(logprobs: bool) -> bytes:
    """A whole chat completion."""
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": "".join(TOKENS)},
        "logprobs": _logprobs(TOKENS) if logprobs else None,
        "finish_reason": "stop",
    }
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [choice],
            "usage": USAGE,
        }
    )


def stream_events(logprobs: bool, include_usage: bool, chunks: int = CHUNKS) -> list[bytes]:
    """The SSE events of one stream: one per content chunk, then the tail in one piece."""
    tokens = [f" word{index}" for index in range(chunks)]
    usage_numbers = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
    usage_null = {"usage": None} if include_usage else {}

    def event(delta: dict[str, object], finish: str | None, token: str | None) -> bytes:
        choice = {
            "index": 0,
            "delta": delta,
            "logprobs": _logprobs([token]) if logprobs and token else None,
            "finish_reason": finish,
        }
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [choice],
            **usage_null,
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    events = [event({"role": "assistant", "content": tokens[0]}, None, tokens[0])]
    events += [event({"content": token}, None, token) for token in tokens[1:]]
    tail = event({}, "stop", None)
    if include_usage:
        usage = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [],
            "usage": usage_numbers,
        }
        tail += b"data: " + orjson.dumps(usage) + b"\n\n"
    events.append(tail + b"data: [DONE]\n\n")
    return events


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Replies:
    """Every reply, encoded once at start-up."""

    def __init__(self, chunks: int = CHUNKS) -> None:
        self.whole: dict[bool, bytes] = {}
        for logprobs in (False, True):
            body = completion_body(logprobs)
            self.whole[logprobs] = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
        self.streams = {
            (logprobs, usage): [_http_chunk(e) for e in stream_events(logprobs, usage, chunks)]
            for logprobs in (False, True)
            for usage in (False, True)
        }
        self.stream_head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
        )


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; requests are answered in order."""

    def __init__(self, replies: Replies, interval: float) -> None:
        self.replies = replies
        self.interval = interval
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._serve()

    def _serve(self) -> None:
        while not self.streaming and self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            length = 0
            if at >= 0:
                line_end = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : line_end if line_end > 0 else None])
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            logprobs = _LOGPROBS.search(body) is not None
            if _STREAM.search(body) is None:
                self.transport.write(self.replies.whole[logprobs])
                continue
            usage = _INCLUDE_USAGE.search(body) is not None
            self.streaming = True
            events = self.replies.streams[(logprobs, usage)]
            self.transport.write(self.replies.stream_head + events[0])
            asyncio.get_running_loop().call_later(self.interval, self._next_event, events, 1)

    def _next_event(self, events: list[bytes], index: int) -> None:
        if self.transport is None:
            return
        self.transport.write(events[index])
        if index + 1 < len(events):
            asyncio.get_running_loop().call_later(
                self.interval, self._next_event, events, index + 1
            )
            return
        self.transport.write(b"0\r\n\r\n")
        self.streaming = False
        self._serve()


async def serve(host: str, port: int, interval: float, chunks: int = CHUNKS) -> None:
    """Serve until cancelled, after printing the bound URL."""
    replies = Replies(chunks)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: UpstreamProtocol(replies, interval), host, port, backlog=4096
    )
    bound = server.sockets[0].getsockname()
    print(f"listening on http://{bound[0]}:{bound[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    """`python -m bench.upstream`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--chunk-interval-ms", type=float, default=5.0)
    parser.add_argument("--chunks", type=int, default=CHUNKS, help="content chunks per stream")
    args = parser.parse_args()
    if args.chunks < 1:
        parser.error("--chunks must be at least 1")
    host, _, port = args.listen.rpartition(":")
    import uvloop

    uvloop.run(serve(host, int(port), args.chunk_interval_ms / 1000, args.chunks))


if __name__ == "__main__":
    main()
