"""OpenAI streams exactly as the API sends them (chat with and without include_usage, legacy
completions), shared by the parser tests and the usage-chunk filter tests."""

from __future__ import annotations

# The fields every chunk of one chat stream repeats, up to its `choices`.
CHUNK_HEAD = (
    b'data: {"id":"chatcmpl-C3xYz","object":"chat.completion.chunk","created":1754500000,'
    b'"model":"gpt-4o-mini-2024-07-18","service_tier":"default",'
    b'"system_fingerprint":"fp_560af6e559","choices":'
)


def chat_stream(*, injected: bool) -> bytes:
    """A real chat stream; with `injected`, as OpenAI sends it under include_usage."""
    usage_null = b',"usage":null' if injected else b""
    choices = (
        b'[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
        b'"logprobs":null,"finish_reason":null}]',
        b'[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]',
        b'[{"index":0,"delta":{"content":" there!\\n"},"logprobs":null,"finish_reason":null}]',
        b'[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]',
    )
    obfuscation = (b"Hk3", b"x", b"", b"qQ9a")
    out = [
        CHUNK_HEAD + c + usage_null + b',"obfuscation":"' + o + b'"}\n\n'
        for c, o in zip(choices, obfuscation, strict=True)
    ]
    if injected:
        out.append(
            CHUNK_HEAD + b'[],"usage":{"prompt_tokens":2006,"completion_tokens":300,'
            b'"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920,'
            b'"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":192,'
            b'"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},'
            b'"obfuscation":"mZ"}\n\n'
        )
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


COMPLETION_STREAM = (
    b'data: {"id":"cmpl-9a","object":"text_completion","created":1719000000,"choices":'
    b'[{"text":"\\n\\nOnce","index":0,"logprobs":null,"finish_reason":null}],'
    b'"model":"gpt-3.5-turbo-instruct","usage":null}\n\n'
    b'data: {"id":"cmpl-9a","object":"text_completion","created":1719000000,"choices":'
    b'[{"text":" upon","index":0,"logprobs":null,"finish_reason":null}],'
    b'"model":"gpt-3.5-turbo-instruct","usage":null}\n\n'
    b'data: {"id":"cmpl-9a","object":"text_completion","created":1719000000,"choices":'
    b'[{"text":"","index":0,"logprobs":null,"finish_reason":"length"}],'
    b'"model":"gpt-3.5-turbo-instruct","usage":null}\n\n'
    b'data: {"id":"cmpl-9a","object":"text_completion","created":1719000000,'
    b'"model":"gpt-3.5-turbo-instruct","choices":[],"usage":{"prompt_tokens":5,'
    b'"completion_tokens":7,"total_tokens":12}}\n\n'
    b"data: [DONE]\n\n"
)
