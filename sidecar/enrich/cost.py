"""What a call cost, priced with genai-prices' bundled data and the operator's overrides.

A genai-prices lookup plus its generic calculation costs tens of microseconds, too much
for the call path. `PriceBook` caches each (provider, model)'s resolved prices for a
minute and does the token arithmetic itself; the first time it sees a model it checks
that arithmetic against genai-prices on probe usages, and uses genai-prices' own
calculation for any model where they differ. Never a made-up price: a model neither
genai-prices nor an override knows is "unknown" and costs nothing.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sidecar.config.enrich import CostConfig, ModelPriceOverride
from sidecar.record import CallRecord, RequestInfo

log = logging.getLogger("sidecar.enrich.cost")

# The sidecar's provider names (`gen_ai.provider.name`) → genai-prices provider ids, tried
# in order; a provider name that is itself a genai-prices id (`openrouter`, `together`, ...)
# is looked up as it is.
PROVIDER_IDS: dict[str, tuple[str, ...]] = {
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    "gcp.gemini": ("google",),
    # Azure OpenAI's prices are OpenAI's where genai-prices lists no Azure price.
    "azure.ai.openai": ("azure", "openai"),
    # Vertex AI serves Google's models and Anthropic's at their own providers' prices.
    "gcp.vertex_ai": ("google", "anthropic"),
    "groq": ("groq",),
    "deepseek": ("deepseek",),
    "mistral_ai": ("mistral",),
    "x_ai": ("x-ai",),
    "perplexity": ("perplexity",),
    "cohere": ("cohere",),
    "aws.bedrock": ("aws",),
}
# Bedrock's cross-region inference profiles prefix the model id with their geography.
BEDROCK_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "jp.", "au.", "ca.", "in.", "us-gov.", "global.")
PER_MILLION = Decimal(1_000_000)
# Prices can change at a date or a time of day: resolve them again after this long.
PRICE_TTL_S = 60.0
MAX_CACHED_MODELS = 1024
MAX_WARNED_MODELS = 100
_TOKEN_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
_PROBES = (
    (1_000_003, 100_019, 10_007, 50_021, 7_001),
    (12, 0, 0, 3, 0),
)


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """The provider-reported counts a price needs; input includes cache reads and writes,
    output includes reasoning."""

    input: int
    output: int
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0
    # Audio tokens (part of `input`, `output` and `cache_read`): priced by genai-prices' own
    # calculation, which knows each model's audio prices.
    audio_input: int = 0
    audio_output: int = 0
    audio_cache_read: int = 0

    @classmethod
    def of(cls, record: CallRecord) -> TokenUsage | None:
        """The usage of a call, or None when the provider reported none."""
        if record.input_tokens is None and record.output_tokens is None:
            return None
        return cls(
            input=record.input_tokens or 0,
            output=record.output_tokens or 0,
            cache_read=record.cache_read_tokens or 0,
            cache_write=record.cache_creation_tokens or 0,
            reasoning=record.reasoning_tokens or 0,
            audio_input=record.input_audio_tokens or 0,
            audio_output=record.output_audio_tokens or 0,
            audio_cache_read=record.cache_read_audio_tokens or 0,
        )

    @property
    def has_audio(self) -> bool:
        """Whether any of the counts is audio."""
        return bool(self.audio_input or self.audio_output or self.audio_cache_read)

    def genai_usage(self) -> Any:
        """The same counts as a `genai_prices.Usage`."""
        from genai_prices import Usage

        return Usage(
            input_tokens=self.input,
            output_tokens=self.output,
            cache_read_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
            output_reasoning_tokens=self.reasoning,
            input_audio_tokens=self.audio_input,
            output_audio_tokens=self.audio_output,
            cache_audio_read_tokens=self.audio_cache_read,
        )


class TokenPrices:
    """Per-million-token prices (flat or tiered by total input) and the arithmetic on them."""

    __slots__ = ("cache_read", "cache_write", "input", "output", "reasoning")

    def __init__(
        self,
        input: Any,
        output: Any,
        cache_read: Any = None,
        cache_write: Any = None,
        reasoning: Any = None,
    ) -> None:
        self.input = input
        self.output = output
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.reasoning = reasoning

    @classmethod
    def from_override(cls, override: ModelPriceOverride) -> TokenPrices:
        """An operator's override (cache prices default to the input price)."""

        def price(value: float | None) -> Decimal:
            return Decimal(str(override.input if value is None else value))

        return cls(
            price(override.input),
            Decimal(str(override.output)),
            price(override.cache_read),
            price(override.cache_write),
        )

    def cost(self, usage: TokenUsage) -> Decimal | None:
        """USD for `usage`; None when the counts contradict each other (parts > whole)."""
        cache_read = usage.cache_read if self.cache_read is not None else 0
        cache_write = usage.cache_write if self.cache_write is not None else 0
        reasoning = usage.reasoning if self.reasoning is not None else 0
        uncached = usage.input - cache_read - cache_write
        visible = usage.output - reasoning
        if uncached < 0 or visible < 0:
            return None
        total_input = usage.input
        total = Decimal(0)
        for price, count in (
            (self.input, uncached),
            (self.cache_read, cache_read),
            (self.cache_write, cache_write),
            (self.output, visible),
            (self.reasoning, reasoning),
        ):
            if price is not None and count:
                total += _rate(price, total_input) * count / PER_MILLION
        return total


def _rate(price: Any, total_input: int) -> Decimal:
    """A flat price, or the tier of a tiered one that `total_input` tokens reach."""
    if isinstance(price, Decimal):
        return price
    rate: Decimal = price.base
    for tier in reversed(price.tiers):
        if total_input > tier.start:
            return Decimal(tier.price)
    return rate


@dataclass(slots=True)
class _Entry:
    """A cached model: its prices (or the library's price object) until `expires`."""

    prices: TokenPrices | None  # when the sidecar's arithmetic agrees with genai-prices'
    library_price: Any  # genai_prices ModelPrice (None: the model is unknown)
    expires: float


class PriceBook:
    """Prices calls: overrides first, then genai-prices, cached per (provider, model)."""

    def __init__(self, overrides: dict[str, ModelPriceOverride] | None = None) -> None:
        self._overrides = {
            name: TokenPrices.from_override(price) for name, price in (overrides or {}).items()
        }
        self._cache: dict[tuple[str, str], _Entry] = {}

    def price(
        self, provider_name: str, models: tuple[str | None, ...], usage: TokenUsage
    ) -> Decimal | None:
        """USD for `usage` of the first of `models` with a known price; None when unknown."""
        for model in models:
            if model and model in self._overrides:
                return self._overrides[model].cost(usage)
        for provider in provider_ids(provider_name):
            for model in models:
                if not model:
                    continue
                entry = self._entry(provider, model)
                if entry.prices is not None and not usage.has_audio:
                    return entry.prices.cost(usage)
                if entry.library_price is not None:
                    return _library_cost(entry.library_price, usage)
        return None

    def _entry(self, provider: str, model: str) -> _Entry:
        key = (provider, model)
        now = time.monotonic()
        entry = self._cache.get(key)
        if entry is None or entry.expires <= now:
            if len(self._cache) >= MAX_CACHED_MODELS:
                self._cache.clear()
            entry = self._cache[key] = _resolve(provider, model, now + PRICE_TTL_S)
        return entry


def provider_ids(provider_name: str) -> tuple[str, ...]:
    """The genai-prices providers whose prices apply to calls of `provider_name`."""
    known = PROVIDER_IDS.get(provider_name)
    if known is not None:
        return known
    return (provider_name,) if provider_name in _library_provider_ids() else ()


@cache
def _library_provider_ids() -> frozenset[str]:
    return frozenset(provider.id for provider in price_data().providers)


@cache
def price_data() -> Any:
    """genai-prices' bundled data (its `DataSnapshot`), loaded on the first priced call.

    Not at start-up (issue #23): importing and loading it takes ~0.15 s and ~15 MB that a
    sidecar whose calls are never priced does not need. In a process that exempted its
    start-up heap from garbage collection (`model-sidecar serve`, sidecar/cli.py), the data's
    tens of thousands of long-lived objects are exempted too, for the same reason: a full
    collection scanning them stalls the event loop.
    """
    from genai_prices.data_snapshot import get_snapshot

    snapshot = get_snapshot()
    if gc.get_freeze_count():
        gc.freeze()
    return snapshot


def _resolve(provider: str, model: str, expires: float) -> _Entry:
    """Look a model up in genai-prices; prefer the sidecar's arithmetic when it agrees."""
    try:
        _, info = price_data().find_provider_model(model, None, provider, None)
    except LookupError:
        return _Entry(None, None, expires)
    library_price = info.get_prices(datetime.now(tz=UTC))
    prices = _token_prices(library_price)
    if prices is not None and _agrees(prices, library_price):
        return _Entry(prices, library_price, expires)
    return _Entry(None, library_price, expires)


def _token_prices(library_price: Any) -> TokenPrices | None:
    """The four token prices of a genai-prices ModelPrice, None without input/output prices."""
    values = {key: getattr(library_price, key, None) for key in _TOKEN_KEYS}
    if values["input_mtok"] is None and values["output_mtok"] is None:
        return None
    return TokenPrices(
        values["input_mtok"],
        values["output_mtok"],
        values["cache_read_mtok"],
        values["cache_write_mtok"],
        getattr(library_price, "output_reasoning_mtok", None),
    )


def _agrees(prices: TokenPrices, library_price: Any) -> bool:
    """Whether the sidecar's arithmetic matches genai-prices' on probe usages (tiers too)."""
    probes = [TokenUsage(*probe) for probe in _PROBES]
    for price in (prices.input, prices.output, prices.cache_read):
        for tier in getattr(price, "tiers", ()):
            probes.append(TokenUsage(tier.start + 1, 5, 0, 0, 0))
            probes.append(TokenUsage(tier.start, 5, 0, 0, 0))
    for probe in probes:
        expected = _library_cost(library_price, probe)
        if expected is None or prices.cost(probe) != expected:
            return False
    return True


def _library_cost(library_price: Any, usage: TokenUsage) -> Decimal | None:
    try:
        total: Decimal = library_price.calc_price(usage.genai_usage())["total_price"]
    except (ValueError, ArithmeticError):
        return None
    return total


def priced_models(record: CallRecord) -> tuple[str | None, ...]:
    """The model names a call is priced by, best first: the response model, else the request's.

    Bedrock is priced by its model id (the request's: it also tells a cross-region profile
    from the model), then by the id inside an ARN, then without a profile's geography prefix.
    """
    if record.provider_name == "aws.bedrock":
        return (*bedrock_model_ids(record.request.request_model), record.response_model)
    return (record.response_model, record.request.request_model)


def bedrock_model_ids(model_id: str | None) -> tuple[str, ...]:
    """`model_id`, the resource id of an ARN (`arn:aws:bedrock:...:inference-profile/ID`), and
    that id without an inference profile's prefix (`us.anthropic.claude-...` →
    `anthropic.claude-...`)."""
    if not model_id:
        return ()
    ids = [model_id]
    resource = model_id.rpartition("/")[2] if model_id.startswith("arn:") else model_id
    if resource != model_id:
        ids.append(resource)
    for prefix in BEDROCK_PROFILE_PREFIXES:
        if resource.startswith(prefix):
            ids.append(resource[len(prefix) :])
            break
    return tuple(ids)


class CostEnricher:
    """Stage: sets `cost_usd` from the call's usage; warns once per model it cannot price."""

    name = "cost"

    def __init__(self, config: CostConfig, book: PriceBook | None = None) -> None:
        self.book = book if book is not None else PriceBook(config.overrides)
        self._warned: set[str] = set()

    def needs(self, request: RequestInfo, body: Any) -> int:
        """Nothing beyond the usage every response parser records."""
        return 0

    def __call__(self, record: CallRecord) -> None:
        # A whole body's cost is derived once, before the app gets its response headers
        # (the exchange records it with the response); pricing it again here would give
        # the same value for ~6 µs more. An unknown cost is cheap to look up again.
        if record.cost_usd is not None:
            return
        usage = TokenUsage.of(record)
        if usage is None:
            return
        models = priced_models(record)
        cost = self.book.price(record.provider_name, models, usage)
        if cost is None:
            self._warn_unknown(record.response_model or record.request.request_model or "")
            return
        record.cost_usd = float(cost)

    def _warn_unknown(self, model: str) -> None:
        if model in self._warned or len(self._warned) >= MAX_WARNED_MODELS:
            return
        self._warned.add(model)
        log.warning(
            "no price for model %r: its calls count in model_sidecar_cost_unknown_total; "
            "set cost.overrides to price it",
            model,
            extra={"model": model},
        )
