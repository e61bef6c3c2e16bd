"""Deterministic text, token counts, log-probabilities and embeddings from a seed."""

from __future__ import annotations

import base64
import hashlib
import math
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# The simulated vocabulary: every output token is one of these words.
VOCABULARY: tuple[str, ...] = (
    "the", "model", "answer", "is", "a", "simple", "token", "stream", "of", "words",
    "that", "looks", "like", "text", "and", "carries", "no", "meaning", "but", "has",
    "length", "for", "tests", "to", "measure", "latency", "cost", "quality", "in", "every",
    "call", "through", "sidecar", "proxy", "with", "care", "each", "chunk", "arrives", "on",
    "time", "as", "expected", "by", "clients", "who", "read", "it", "here", "now",
    "more", "data", "flows", "one", "way", "from", "provider", "app", "while", "metrics",
    "count", "what", "passes", "by",
)  # fmt: skip

# Keys under which prompt text lives in the three providers' request bodies.
_TEXT_KEYS = ("content", "text", "parts")


def count_tokens(text: str) -> int:
    """The simulated tokenizer: one token per four characters, at least one for any text."""
    if not text:
        return 0
    return (len(text) + 3) // 4


def prompt_texts(value: Any) -> Iterator[str]:
    """Every piece of prompt text in a request value (a string, messages, contents or parts)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from prompt_texts(item)
    elif isinstance(value, dict):
        for key in _TEXT_KEYS:
            if key in value:
                yield from prompt_texts(value[key])


def count_prompt_tokens(value: Any) -> int:
    """Tokens of all prompt text in a request value (a string, messages, contents or parts)."""
    return sum(count_tokens(text) for text in prompt_texts(value))


def count_prompt_characters(value: Any) -> int:
    """Characters of all prompt text in a request value but whitespace (Vertex bills these)."""
    return sum(1 for text in prompt_texts(value) for char in text if not char.isspace())


def seed_of(*parts: bytes) -> bytes:
    """A 16-byte seed hashed from the given bytes."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part)
    return digest.digest()


@dataclass(frozen=True, slots=True)
class TokenChoice:
    """One output token with its log-probability and the alternatives' (best first)."""

    token: str
    logprob: float
    alternatives: tuple[tuple[str, float], ...]

    def top(self, count: int) -> list[tuple[str, float]]:
        """The `count` most likely tokens at this position, the chosen one included."""
        ranked = sorted(((self.token, self.logprob), *self.alternatives), key=_by_logprob)
        return ranked[:count]


def _by_logprob(item: tuple[str, float]) -> float:
    return -item[1]


def generate_tokens(seed: bytes, count: int) -> list[str]:
    """`count` tokens of text, a pure function of the seed: the first bare, the rest spaced."""
    if count <= 0:
        return []
    picks = hashlib.shake_128(seed).digest(count)
    words = VOCABULARY
    size = len(words)
    tokens = [" " + words[b % size] for b in picks]
    tokens[0] = tokens[0][1:].capitalize()
    return tokens


def token_choices(
    seed: bytes, tokens: list[str], confidence: float, alternatives: int = 3
) -> list[TokenChoice]:
    """Log-probabilities for `tokens`: chosen-token probability near `confidence`."""
    jitter = hashlib.shake_128(b"logprob" + seed).digest(max(1, len(tokens)))
    confidence = min(max(confidence, 1e-6), 1.0 - 1e-9)
    size = len(VOCABULARY)
    choices = []
    for position, token in enumerate(tokens):
        # Exponent in [0.5, 1.5): the chosen probability spreads around `confidence`.
        chosen = confidence ** (0.5 + jitter[position] / 256.0)
        rest = 1.0 - chosen
        base = jitter[position] % size
        others = tuple(
            (" " + VOCABULARY[(base + k + 1) % size], round(math.log(rest * 0.5 ** (k + 1)), 6))
            for k in range(alternatives)
        )
        choices.append(TokenChoice(token, round(math.log(chosen), 6), others))
    return choices


def embedding_vector(seed: bytes, dimensions: int) -> array[float]:
    """A unit-length float32 vector, a pure function of the seed."""
    raw = array("H", hashlib.shake_128(seed).digest(dimensions * 2))
    values = [v / 32768.0 - 1.0 for v in raw]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return array("f", [v / norm for v in values])


def encode_embedding(vector: array[float], encoding_format: str) -> list[float] | str:
    """The vector as OpenAI sends it: a float list, or base64 of little-endian float32."""
    if encoding_format == "base64":
        if sys.byteorder == "big":
            vector = array("f", vector)
            vector.byteswap()
        return base64.b64encode(vector.tobytes()).decode("ascii")
    return vector.tolist()
