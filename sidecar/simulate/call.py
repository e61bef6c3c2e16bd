"""One simulated call: the request, its model profile, and the answer and usage it gets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from sidecar.simulate.faults import Controls
from sidecar.simulate.profiles import ModelProfile
from sidecar.simulate.text import TokenChoice, generate_tokens, seed_of, token_choices


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call; input includes cached tokens, output excludes reasoning."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus visible output plus reasoning tokens."""
        return self.input_tokens + self.output_tokens + self.reasoning_tokens


@dataclass(frozen=True, slots=True)
class Answer:
    """The generated output of one choice."""

    tokens: list[str]
    finish_reason: str  # "stop" or "length" (each wire renames it)
    seed: bytes

    @property
    def text(self) -> str:
        """The whole answer text."""
        return "".join(self.tokens)

    def chunks(self, size: int) -> list[list[str]]:
        """The tokens grouped `size` to a stream chunk (at least one chunk, maybe empty)."""
        size = max(1, size)
        groups = [self.tokens[i : i + size] for i in range(0, len(self.tokens), size)]
        return groups or [[]]

    def choices(self, confidence: float, alternatives: int = 3) -> list[TokenChoice]:
        """Each token with its log-probability and `alternatives` less likely tokens."""
        return token_choices(self.seed, self.tokens, confidence, alternatives)


@dataclass(slots=True)
class Call:
    """Everything a wire module needs to answer one request."""

    request: web.Request
    body: bytes
    payload: dict[str, Any]
    model: str
    profile: ModelProfile
    controls: Controls
    created: int
    # Mixed into the answer's seed when the profile diverges on this call (else b"").
    divergence: bytes
    on_disconnect: Callable[[], None]
    request_seed: bytes = b""
    # The provider's rate-limit headers for this call (simulate/quota.py), sent with its reply.
    quota_headers: dict[str, str] = field(default_factory=dict)
    response: web.StreamResponse | None = field(default=None)
    disconnected: bool = False

    def __post_init__(self) -> None:
        # Ids hash the decoded body less `stream_options`: a proxy that re-encodes the JSON
        # or adds `include_usage` upstream (and strips the usage chunk) keeps the same ids.
        payload = self.payload
        if "stream_options" in payload:
            payload = {key: value for key, value in payload.items() if key != "stream_options"}
        try:
            canonical = orjson.dumps(payload)
        except TypeError:  # nested deeper than orjson serialises: hash the raw body
            canonical = self.body
        self.request_seed = seed_of(canonical, self.divergence)

    def client_left(self) -> None:
        """Note, once, that the client closed its connection before the reply was complete."""
        if not self.disconnected:
            self.disconnected = True
            self.on_disconnect()

    def ident(self, length: int = 24) -> str:
        """A hex id derived from the request (the same request gets the same id)."""
        return self.request_seed.hex()[:length]

    @property
    def ttft_s(self) -> float:
        """Seconds before the first output chunk."""
        override = self.controls.ttft_s
        return self.profile.ttft_s if override is None else override

    @property
    def chunk_interval_s(self) -> float:
        """Seconds between two output chunks."""
        override = self.controls.chunk_interval_s
        return self.profile.chunk_interval_s if override is None else override

    @property
    def chunk_size(self) -> int:
        """Tokens per stream chunk."""
        return max(1, self.profile.tokens_per_chunk)

    def answer(self, prompt: Any, max_tokens: Any = None, index: int = 0) -> Answer:
        """The answer to `prompt` (a pure function of model, prompt and index, unless diverging)."""
        chunks = self.controls.chunks
        count = chunks * self.chunk_size if chunks is not None else self.profile.output_tokens
        finish = "stop"
        if isinstance(max_tokens, int) and 0 <= max_tokens < count:
            count = max_tokens
            finish = "length"
        seed = seed_of(
            self.model.encode(), orjson.dumps(prompt), self.divergence, index.to_bytes(4, "little")
        )
        return Answer(generate_tokens(seed, max(0, count)), finish, seed)

    def usage(self, input_tokens: int, answers: list[Answer]) -> Usage:
        """Usage of this call as the profile says: cache shares of the input, reasoning tokens."""
        input_tokens = max(1, input_tokens)
        profile = self.profile
        return Usage(
            input_tokens=input_tokens,
            output_tokens=sum(len(answer.tokens) for answer in answers),
            cache_read_tokens=int(input_tokens * profile.cache_read_share),
            cache_write_tokens=int(input_tokens * profile.cache_write_share),
            reasoning_tokens=profile.reasoning_tokens,
        )
