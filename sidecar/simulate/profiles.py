"""Model profiles: how fast, how long, how flaky and how sure each simulated model is."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """The behaviour of one simulated model; every field has a realistic default."""

    name: str
    # The model the provider names in its response (a dated snapshot), None = `name`.
    response_model: str | None = None
    # The `system_fingerprint` OpenAI-style answers carry; None: derived from the model.
    system_fingerprint: str | None = None
    # Seconds from the request until the first output token.
    ttft_s: float = 0.05
    # Output speed; the pause between stream chunks is tokens_per_chunk / tokens_per_second.
    tokens_per_second: float = 400.0
    tokens_per_chunk: int = 1
    # Visible output tokens of an answer (capped by the request's max tokens).
    output_tokens: int = 24
    # Hidden reasoning ("thinking") tokens reported in usage on top of the visible ones.
    reasoning_tokens: int = 0
    # Share of calls answered 500 / 429 (drawn from the Simulator's seeded RNG).
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    # Share of calls whose answer differs from the canonical one for the same request;
    # 0 means deterministic (also at temperature 0).
    divergence_rate: float = 0.0
    # Share of the input reported as read from / written to the provider's prompt cache.
    cache_read_share: float = 0.0
    cache_write_share: float = 0.0
    # Typical probability of each chosen token: ~0.95 confident, ~0.5 unsure.
    token_confidence: float = 0.95
    # Length of embedding vectors when the request does not ask for `dimensions`.
    embedding_dimensions: int = 256

    @property
    def reported_model(self) -> str:
        """The model name the response carries."""
        return self.response_model or self.name

    @property
    def deterministic(self) -> bool:
        """True when the same request always gets the same answer."""
        return self.divergence_rate <= 0.0

    @property
    def chunk_interval_s(self) -> float:
        """Seconds between two stream chunks."""
        if self.tokens_per_second <= 0:
            return 0.0
        return self.tokens_per_chunk / self.tokens_per_second


FALLBACK_PROFILE = ModelProfile(name="default", ttft_s=0.02, tokens_per_second=1000.0)

DEFAULT_PROFILES: tuple[ModelProfile, ...] = (
    # OpenAI
    ModelProfile(
        name="gpt-4o-mini",
        response_model="gpt-4o-mini-2024-07-18",
        ttft_s=0.03,
        tokens_per_second=600.0,
        cache_read_share=0.25,
    ),
    ModelProfile(  # not repeatable at temperature 0, as real large models often are not
        name="gpt-4o",
        response_model="gpt-4o-2024-08-06",
        ttft_s=0.08,
        tokens_per_second=250.0,
        output_tokens=32,
        divergence_rate=0.5,
        token_confidence=0.85,
    ),
    ModelProfile(  # flaky: rate limited often, sometimes fails, unsure of its tokens
        name="gpt-4.1-nano",
        response_model="gpt-4.1-nano-2025-04-14",
        ttft_s=0.02,
        tokens_per_second=800.0,
        rate_limit_rate=0.2,
        error_rate=0.05,
        token_confidence=0.5,
    ),
    ModelProfile(
        name="o3-mini",
        response_model="o3-mini-2025-01-31",
        ttft_s=0.25,
        tokens_per_second=300.0,
        reasoning_tokens=64,
    ),
    ModelProfile(name="gpt-3.5-turbo-instruct", ttft_s=0.02, tokens_per_second=800.0),
    ModelProfile(name="text-embedding-3-small", ttft_s=0.01, embedding_dimensions=1536),
    # Transcription: whisper-1 reports the audio's duration, gpt-4o-transcribe tokens.
    ModelProfile(name="whisper-1", ttft_s=0.2, tokens_per_second=600.0),
    ModelProfile(name="gpt-4o-transcribe", ttft_s=0.15, tokens_per_second=500.0),
    # Realtime (WebSocket sessions): a few tokens per delta; later turns read the earlier
    # ones from the prompt cache.
    ModelProfile(
        name="gpt-realtime",
        response_model="gpt-realtime-2025-08-28",
        ttft_s=0.06,
        tokens_per_second=400.0,
        tokens_per_chunk=2,
        output_tokens=16,
        cache_read_share=0.5,
    ),
    ModelProfile(
        name="gpt-realtime-mini",
        response_model="gpt-realtime-mini-2025-10-06",
        ttft_s=0.03,
        tokens_per_second=800.0,
        tokens_per_chunk=2,
        output_tokens=12,
        cache_read_share=0.5,
    ),
    # Anthropic
    ModelProfile(
        name="claude-3-5-haiku-latest",
        response_model="claude-3-5-haiku-20241022",
        ttft_s=0.04,
        tokens_per_second=500.0,
        cache_write_share=0.25,
    ),
    ModelProfile(  # slower and steadier
        name="claude-sonnet-4",
        response_model="claude-sonnet-4-20250514",
        ttft_s=0.12,
        tokens_per_second=150.0,
        output_tokens=40,
        cache_read_share=0.6,
        token_confidence=0.97,
    ),
    # Claude on Vertex AI: the model is named `name@version` and answers under that name.
    ModelProfile(
        name="claude-sonnet-4@20250514",
        ttft_s=0.12,
        tokens_per_second=150.0,
        output_tokens=40,
        cache_read_share=0.6,
        token_confidence=0.97,
    ),
    # Gemini (streams a few tokens per chunk, as Google does)
    ModelProfile(
        name="gemini-2.0-flash",
        response_model="gemini-2.0-flash-001",
        ttft_s=0.03,
        tokens_per_second=900.0,
        tokens_per_chunk=4,
    ),
    ModelProfile(
        name="gemini-2.5-flash",
        ttft_s=0.06,
        tokens_per_second=600.0,
        tokens_per_chunk=4,
        reasoning_tokens=48,
        cache_read_share=0.5,
    ),
    ModelProfile(name="gemini-embedding-001", ttft_s=0.01, embedding_dimensions=768),
    # Vertex AI's text-embedding models (served by `predict`)
    ModelProfile(name="text-embedding-005", ttft_s=0.01, embedding_dimensions=768),
    # Ollama (a small local model on CPU: slower, one token a line; Ollama names it as asked)
    ModelProfile(name="llama3.2", ttft_s=0.06, tokens_per_second=120.0),
    ModelProfile(name="nomic-embed-text", ttft_s=0.01, embedding_dimensions=768),
)


def default_profiles() -> dict[str, ModelProfile]:
    """A fresh name → profile map of the default profiles."""
    return {profile.name: profile for profile in DEFAULT_PROFILES}


def without_delays(profile: ModelProfile) -> ModelProfile:
    """The same model with every delay and random fault removed (benchmark mode)."""
    return replace(
        profile,
        ttft_s=0.0,
        tokens_per_second=0.0,
        error_rate=0.0,
        rate_limit_rate=0.0,
    )
