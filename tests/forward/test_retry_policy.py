"""The sidecar's own retry policy and retry budget, unit by unit: which failures are retried,
how long the wait is (backoff with jitter, or the upstream's Retry-After), and how the budget
keeps retries a bounded share of the calls in its sliding window."""

from __future__ import annotations

import random
import time
from email.utils import formatdate
from typing import Any

import pytest
from multidict import CIMultiDict

from sidecar.config.retry import RetryConfig
from sidecar.forward.retry import CONNECTION_ERROR, RetryBudget, RetryPolicy, retry_after_seconds

NOW = 1_800_000_000.0


def policy(seed: int = 7, **settings: Any) -> RetryPolicy:
    """A policy from a validated config (retries on), with a seeded jitter source."""
    return RetryPolicy(RetryConfig(enabled=True, **settings), rng=random.Random(seed))


def headers(**values: str) -> CIMultiDict[str]:
    return CIMultiDict({name.replace("_", "-"): value for name, value in values.items()})


# Backoff


def test_backoff_doubles_from_the_initial_wait_up_to_the_cap_with_jitter_in_range() -> None:
    retry = policy(backoff_initial_seconds=0.25, backoff_max_seconds=4.0)
    ceilings = [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # before attempts 2..8
    for attempt, ceiling in enumerate(ceilings, start=2):
        waits = [retry.backoff(attempt) for _ in range(300)]
        # Equal jitter: at least half the ceiling, never more than the ceiling...
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits), (attempt, ceiling)
        # ...and really spread over that range, not a constant.
        assert min(waits) < ceiling * 0.55 and max(waits) > ceiling * 0.95


def test_backoff_is_reproducible_with_a_seeded_rng_and_varies_between_seeds() -> None:
    first = [policy(seed=11).backoff(attempt) for attempt in (2, 3, 4)]
    again = [policy(seed=11).backoff(attempt) for attempt in (2, 3, 4)]
    other = [policy(seed=12).backoff(attempt) for attempt in (2, 3, 4)]
    assert first == again
    assert first != other


def test_without_retry_after_the_wait_is_the_backoff() -> None:
    retry = policy(backoff_initial_seconds=0.2, backoff_max_seconds=1.0)
    for attempt, ceiling in ((2, 0.2), (3, 0.4)):
        wait = retry.delay(attempt, "503", headers(), NOW)
        assert wait is not None and ceiling / 2 <= wait <= ceiling
    wait = retry.delay(2, CONNECTION_ERROR, None, NOW)
    assert wait is not None and 0.1 <= wait <= 0.2


# Retry-After


def test_retry_after_in_seconds_is_the_wait() -> None:
    assert policy().delay(2, "429", headers(Retry_After="2"), NOW) == 2.0
    assert policy().delay(2, "503", headers(Retry_After=" 1.5 "), NOW) == 1.5


def test_retry_after_ms_is_read_and_beats_retry_after() -> None:
    assert policy().delay(2, "429", headers(retry_after_ms="150"), NOW) == pytest.approx(0.15)
    both = headers(retry_after_ms="250", Retry_After="9")
    assert policy().delay(2, "429", both, NOW) == pytest.approx(0.25)


def test_retry_after_as_an_http_date_counts_from_now() -> None:
    assert retry_after_seconds(headers(Retry_After=formatdate(NOW + 12, usegmt=True)), NOW) == 12
    # A date already past means "now", never a negative wait.
    assert retry_after_seconds(headers(Retry_After=formatdate(NOW - 60, usegmt=True)), NOW) == 0
    # Through the policy, which reads the wall clock: a date ~20 s ahead is waited for.
    ahead = headers(Retry_After=formatdate(time.time() + 20, usegmt=True))
    wait = policy(max_retry_after_seconds=30).delay(2, "503", ahead, NOW)
    assert wait is not None and 18 <= wait <= 20


def test_unreadable_or_negative_retry_after_is_never_a_negative_or_broken_wait() -> None:
    assert retry_after_seconds(headers(Retry_After="-5"), NOW) == 0
    assert retry_after_seconds(headers(retry_after_ms="-5"), NOW) == 0
    assert retry_after_seconds(headers(Retry_After="soon"), NOW) is None
    assert retry_after_seconds(headers(), NOW) is None
    # A garbled header falls back to the backoff instead of failing the call.
    wait = policy(backoff_initial_seconds=0.25).delay(2, "503", headers(Retry_After="soon"), NOW)
    assert wait is not None and 0.125 <= wait <= 0.25


def test_a_retry_after_longer_than_the_maximum_is_not_waited_for() -> None:
    retry = policy(max_retry_after_seconds=5)
    assert retry.delay(2, "429", headers(Retry_After="6"), NOW) is None
    assert retry.delay(2, "429", headers(retry_after_ms="5001"), NOW) is None
    far = headers(Retry_After=formatdate(NOW + 3600, usegmt=True))
    assert retry.delay(2, "503", far, NOW) is None
    assert retry.delay(2, "429", headers(Retry_After="5"), NOW) == 5.0


def test_a_refused_retry_after_leaves_the_budget_untouched() -> None:
    retry = policy(max_retry_after_seconds=5, budget_ratio=0, budget_min_retries=1)
    for _ in range(5):
        assert retry.delay(2, "429", headers(Retry_After="60"), NOW) is None
    # The one retry the budget allows is still there.
    assert retry.delay(2, "429", headers(Retry_After="1"), NOW) == 1.0
    assert retry.delay(2, "429", headers(Retry_After="1"), NOW) is None


# Which failures


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_the_default_statuses_are_retried(status: int) -> None:
    assert policy().delay(2, str(status), headers(), NOW) is not None


@pytest.mark.parametrize("reason", ["400", "401", "404", "413", "500", "501", "timeout", ""])
def test_statuses_not_in_the_list_and_other_failures_are_not_retried(reason: str) -> None:
    assert policy().delay(2, reason, headers(Retry_After="1"), NOW) is None


def test_the_configured_statuses_replace_the_defaults() -> None:
    retry = policy(statuses=[500])
    assert retry.delay(2, "500", headers(), NOW) is not None
    assert retry.delay(2, "429", headers(), NOW) is None


def test_connection_errors_are_retried_only_when_enabled() -> None:
    assert policy(retry_connect_errors=True).delay(2, CONNECTION_ERROR, None, NOW) is not None
    assert policy(retry_connect_errors=False).delay(2, CONNECTION_ERROR, None, NOW) is None
    # Statuses are still retried with connection errors off.
    assert policy(retry_connect_errors=False).delay(2, "503", headers(), NOW) is not None


@pytest.mark.parametrize("max_attempts", [1, 2, 3, 5])
def test_no_retry_past_max_attempts(max_attempts: int) -> None:
    retry = policy(max_attempts=max_attempts, budget_min_retries=10)
    for attempt in range(2, max_attempts + 1):
        assert retry.delay(attempt, "503", headers(), NOW) is not None, attempt
    assert retry.delay(max_attempts + 1, "503", headers(), NOW) is None
    assert retry.delay(max_attempts + 1, CONNECTION_ERROR, None, NOW) is None


def test_an_exhausted_budget_stops_retries_through_the_policy() -> None:
    retry = policy(budget_ratio=0.1, budget_min_retries=2, budget_window_seconds=60)
    assert retry.delay(2, "503", headers(), NOW) is not None
    assert retry.delay(2, CONNECTION_ERROR, None, NOW) is not None
    assert retry.delay(2, "503", headers(Retry_After="1"), NOW) is None
    assert retry.delay(2, CONNECTION_ERROR, None, NOW) is None


# The budget


def spend_all(budget: RetryBudget, now: float, limit: int = 1000) -> int:
    """Take retries at `now` until the budget refuses; how many it gave."""
    given = 0
    while given < limit and budget.try_spend(now):
        given += 1
    return given


def test_with_few_calls_the_minimum_is_allowed() -> None:
    budget = RetryBudget(ratio=0.1, window_seconds=60, minimum=3)
    assert spend_all(budget, NOW) == 3
    for _ in range(9):
        budget.record_call(NOW)
    # 9 calls: 10 % is 0.9 retries, so the minimum still rules.
    assert spend_all(budget, NOW) == 0


def test_with_many_calls_the_ratio_of_calls_in_the_window_is_allowed() -> None:
    budget = RetryBudget(ratio=0.1, window_seconds=60, minimum=3)
    for _ in range(100):
        budget.record_call(NOW)
    # The minimum is a floor, not added to the share: 10 % of 100 calls.
    assert spend_all(budget, NOW) == 10
    for _ in range(50):
        budget.record_call(NOW + 1)
    assert spend_all(budget, NOW + 1) == 5


def test_a_zero_budget_allows_no_retry() -> None:
    budget = RetryBudget(ratio=0, window_seconds=60, minimum=0)
    for _ in range(1000):
        budget.record_call(NOW)
    assert spend_all(budget, NOW) == 0


def test_spent_retries_leave_the_window_and_free_the_budget() -> None:
    budget = RetryBudget(ratio=0.1, window_seconds=10, minimum=3)
    assert spend_all(budget, NOW) == 3
    assert spend_all(budget, NOW + 5) == 0
    # Still inside the window (counted by whole-second buckets): still spent.
    assert spend_all(budget, NOW + 10.5) == 0
    # Past it: the minimum is available again.
    assert spend_all(budget, NOW + 11) == 3


def test_calls_leave_the_window_too_so_an_old_burst_buys_no_retries() -> None:
    budget = RetryBudget(ratio=0.1, window_seconds=10, minimum=3)
    for _ in range(100):
        budget.record_call(NOW)
    assert spend_all(budget, NOW + 11) == 3


def test_the_window_slides_instead_of_resetting() -> None:
    def budget_with_two_bursts() -> RetryBudget:
        budget = RetryBudget(ratio=0.1, window_seconds=10, minimum=0)
        for when in (NOW, NOW + 5):
            for _ in range(50):
                budget.record_call(when)
        return budget

    # Both bursts are inside the window...
    assert spend_all(budget_with_two_bursts(), NOW + 10.5) == 10
    # ...then only the first has left it: the second still counts.
    assert spend_all(budget_with_two_bursts(), NOW + 12) == 5
    assert spend_all(budget_with_two_bursts(), NOW + 16) == 0
