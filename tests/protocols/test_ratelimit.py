"""Rate-limit headers of every provider family, parsed exactly: OpenAI, Azure OpenAI, an
OpenAI-compatible vendor (Groq), Anthropic; malformed and missing values are ignored and
counted, providers that send none read nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from multidict import CIMultiDict

from sidecar.protocols.ratelimit import parse_duration, read_rate_limits
from sidecar.record import RateLimit

NOW = datetime(2026, 12, 5, 6, 0, 0, tzinfo=UTC).timestamp()


def test_openai_headers_as_openai_sends_them() -> None:
    headers = CIMultiDict(
        {
            "X-RateLimit-Limit-Requests": "10000",
            "x-ratelimit-limit-tokens": "2000000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-remaining-tokens": "1999985",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    assert read_rate_limits("openai", headers, NOW) == (
        (
            RateLimit("requests", 10000, 9999, 0.006),
            RateLimit("tokens", 2_000_000, 1_999_985, 360.0),
        ),
        0,
    )


def test_azure_sends_remaining_counts_only() -> None:
    headers = CIMultiDict(
        {"x-ratelimit-remaining-requests": "99", "x-ratelimit-remaining-tokens": "99000"}
    )
    assert read_rate_limits("azure", headers, NOW) == (
        (RateLimit("requests", None, 99, None), RateLimit("tokens", None, 99000, None)),
        0,
    )


def test_an_openai_compatible_vendor_groq() -> None:
    # Groq behind a path prefix speaks the openai protocol and the same header family.
    headers = CIMultiDict(
        {
            "x-ratelimit-limit-requests": "14400",
            "x-ratelimit-limit-tokens": "18000",
            "x-ratelimit-remaining-requests": "14370",
            "x-ratelimit-remaining-tokens": "17997",
            "x-ratelimit-reset-requests": "2m59.56s",
            "x-ratelimit-reset-tokens": "7.66s",
        }
    )
    limits, errors = read_rate_limits("openai", headers, NOW)
    assert errors == 0
    assert limits[0] == RateLimit("requests", 14400, 14370, pytest.approx(179.56))
    assert limits[1] == RateLimit("tokens", 18000, 17997, pytest.approx(7.66))


def test_anthropic_headers_with_rfc3339_resets() -> None:
    headers = CIMultiDict()
    for name, limit, remaining, reset in (
        ("requests", "50", "49", "2026-12-05T06:00:01Z"),
        ("tokens", "100000", "99000", "2026-12-05T06:00:30Z"),
        ("input-tokens", "80000", "79500", "2026-12-05T06:00:30+00:00"),
        ("output-tokens", "20000", "19500", "2026-12-05T07:00:00+01:00"),
    ):
        headers[f"anthropic-ratelimit-{name}-limit"] = limit
        headers[f"anthropic-ratelimit-{name}-remaining"] = remaining
        headers[f"anthropic-ratelimit-{name}-reset"] = reset
    assert read_rate_limits("anthropic", headers, NOW) == (
        (
            RateLimit("requests", 50, 49, 1.0),
            RateLimit("tokens", 100000, 99000, 30.0),
            RateLimit("input_tokens", 80000, 79500, 30.0),
            RateLimit("output_tokens", 20000, 19500, 0.0),
        ),
        0,
    )


def test_a_reset_in_the_past_is_zero_seconds() -> None:
    headers = CIMultiDict({"anthropic-ratelimit-requests-reset": "2026-12-05T05:00:00Z"})
    assert read_rate_limits("anthropic", headers, NOW) == (
        (RateLimit("requests", None, None, 0.0),),
        0,
    )


def test_malformed_values_are_ignored_and_counted() -> None:
    headers = CIMultiDict(
        {
            "x-ratelimit-limit-requests": "lots",
            "x-ratelimit-remaining-requests": "-3",
            "x-ratelimit-reset-requests": "6 minutes",
            "x-ratelimit-limit-tokens": "1000",
            "x-ratelimit-remaining-tokens": "nan",
            "x-ratelimit-reset-tokens": "1h2m3.5s",
        }
    )
    assert read_rate_limits("openai", headers, NOW) == (
        (RateLimit("tokens", 1000, None, 3723.5),),
        4,
    )
    anthropic = CIMultiDict(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-reset": "tomorrow",
            "anthropic-ratelimit-tokens-reset": "2026-12-05T06:00:30",  # no offset
        }
    )
    assert read_rate_limits("anthropic", anthropic, NOW) == (
        (RateLimit("requests", 50, None, None),),
        2,
    )


@pytest.mark.parametrize(
    "protocol", ["openai", "anthropic", "gemini", "vertex", "bedrock", "ollama"]
)
def test_missing_headers_read_nothing(protocol: str) -> None:
    assert read_rate_limits(protocol, CIMultiDict({"content-type": "application/json"}), NOW) == (
        (),
        0,
    )


def test_providers_without_rate_limit_headers_are_not_read() -> None:
    # Even an x-ratelimit header is not Gemini's: nothing is read for the protocols that send none.
    headers = CIMultiDict({"x-ratelimit-remaining-requests": "5"})
    assert read_rate_limits("gemini", headers, NOW) == ((), 0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("20ms", 0.02), ("6m0s", 360.0), ("1h", 3600.0), ("12", 12.0), ("0.5", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "5x", "1s2", "m1s", "-1s", "1 s"])
def test_bad_durations(text: str) -> None:
    assert parse_duration(text) is None
