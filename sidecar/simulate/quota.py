"""The providers' quotas, simulated: a request and a token budget per model and fixed window,
reported on every reply in the provider's own rate-limit headers, and a 429 once spent.

OpenAI (and OpenAI-compatible servers) send `x-ratelimit-{limit,remaining,reset}-{requests,
tokens}` with Go-style reset durations; Azure OpenAI only the remaining counts; Anthropic
`anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}` with
RFC 3339 reset times. Gemini, Vertex AI, Bedrock and Ollama send none.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

# Defaults no load meets: the simulator serves benchmarks and fleet tests at thousands of calls
# a second (10,000 a minute ran out in a three-pod rollout test); a test that wants a 429 sets
# its own quota.
DEFAULT_REQUESTS = 100_000_000
DEFAULT_TOKENS = 100_000_000_000
DEFAULT_WINDOW_S = 60.0
HEADER_PROVIDERS = frozenset(("openai", "azure", "anthropic"))


@dataclass(slots=True)
class _Window:
    start: float
    requests: int = 0
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class QuotaState:
    """A model's quota as one call left it."""

    requests_limit: int
    requests_remaining: int
    tokens_limit: int
    tokens_remaining: int
    reset_s: float
    # The call found the request budget spent: it gets a 429.
    exhausted: bool


def go_duration(seconds: float) -> str:
    """Seconds as OpenAI writes a reset: `20ms` below a second, else `1m30s`-style."""
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    rest = round(rest, 3)
    if minutes:
        return f"{int(minutes)}m{rest:g}s"
    return f"{rest:g}s"


class Quotas:
    """Every model's quota window; a window starts with its first call and lasts `window_s`."""

    def __init__(
        self,
        requests: int = DEFAULT_REQUESTS,
        tokens: int = DEFAULT_TOKENS,
        window_s: float = DEFAULT_WINDOW_S,
    ) -> None:
        self.requests = requests
        self.tokens = tokens
        self.window_s = window_s
        # Bounded by the simulated models (profiles and the names tests ask for).
        self._windows: dict[tuple[str, str], _Window] = {}

    def take(self, provider: str, model: str, tokens: int, now: float) -> QuotaState:
        """Count one call of `model` costing about `tokens`; its quota state afterwards."""
        key = (provider, model)
        window = self._windows.get(key)
        if window is None or now - window.start >= self.window_s:
            window = self._windows[key] = _Window(now)
        exhausted = window.requests >= self.requests
        if not exhausted:
            window.requests += 1
            window.tokens = min(self.tokens, window.tokens + tokens)
        return QuotaState(
            self.requests,
            self.requests - window.requests,
            self.tokens,
            self.tokens - window.tokens,
            max(0.0, window.start + self.window_s - now),
            exhausted,
        )

    @staticmethod
    def headers(provider: str, state: QuotaState) -> dict[str, str]:
        """The rate-limit headers `provider` sends with `state`."""
        if provider == "anthropic":
            reset = datetime.fromtimestamp(math.ceil(time.time() + state.reset_s), UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            result = {
                "anthropic-ratelimit-requests-limit": str(state.requests_limit),
                "anthropic-ratelimit-requests-remaining": str(state.requests_remaining),
                "anthropic-ratelimit-requests-reset": reset,
            }
            for name in ("tokens", "input-tokens", "output-tokens"):
                result[f"anthropic-ratelimit-{name}-limit"] = str(state.tokens_limit)
                result[f"anthropic-ratelimit-{name}-remaining"] = str(state.tokens_remaining)
                result[f"anthropic-ratelimit-{name}-reset"] = reset
            return result
        remaining = {
            "x-ratelimit-remaining-requests": str(state.requests_remaining),
            "x-ratelimit-remaining-tokens": str(state.tokens_remaining),
        }
        if provider == "azure":
            return remaining
        reset = go_duration(state.reset_s)
        return {
            "x-ratelimit-limit-requests": str(state.requests_limit),
            "x-ratelimit-limit-tokens": str(state.tokens_limit),
            **remaining,
            "x-ratelimit-reset-requests": reset,
            "x-ratelimit-reset-tokens": reset,
        }
