"""The `x-ratelimit-*` header family: OpenAI, Azure OpenAI and OpenAI-compatible vendors (Groq,
Together, DeepSeek, ...). Limits and remaining counts are integers; resets are Go-style
durations (`6m0s`, `1s`, `20ms`). Azure sends only the remaining counts."""

from __future__ import annotations

# kind, limit header, remaining header, reset header
HEADERS = (
    (
        "requests",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    ),
    (
        "tokens",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    ),
)
