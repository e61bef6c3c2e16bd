"""The `anthropic-ratelimit-*` header family (the Anthropic API): a limit, remaining count and
reset time (RFC 3339) for requests, tokens, input tokens and output tokens."""

from __future__ import annotations

# kind, limit header, remaining header, reset header
HEADERS = tuple(
    (
        kind,
        f"anthropic-ratelimit-{name}-limit",
        f"anthropic-ratelimit-{name}-remaining",
        f"anthropic-ratelimit-{name}-reset",
    )
    for kind, name in (
        ("requests", "requests"),
        ("tokens", "tokens"),
        ("input_tokens", "input-tokens"),
        ("output_tokens", "output-tokens"),
    )
)
