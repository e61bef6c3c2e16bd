"""`--budget-usd`: admit a call only while what was spent plus what open calls may cost fits.

Spend is the sidecar's own `model_sidecar_cost_usd_total` (the number dashboards show),
read from /metrics. Every call the last read does not cover (in flight, or finished since)
is reserved at the highest per-call cost seen for its model. A model's first call has no
price yet: it goes alone, and only while the spend is under the cap. /metrics is read only
when a call does not fit (or a price is missing, or the last read is stale), so a roomy
budget costs almost nothing. Overshoot is bounded by one call per model: its first call,
or a call that costs more than any seen before it for that model.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence

from sidecar.probe.metrics import MetricsReader

Key = tuple[str, str]
# Re-read /metrics at least this often while calls finish, to keep prices current.
STALE_AFTER_S = 0.5


class BudgetGate:
    """Decides before each call whether the budget allows it; stops the probe when it cannot."""

    def __init__(self, limit_usd: float, metrics: MetricsReader, keys: Sequence[Key]) -> None:
        self.limit_usd = limit_usd
        self.metrics = metrics
        self.spent_usd = 0.0  # as of the last read
        self.exhausted = False
        self.unpriced: set[Key] = set()
        self._keys = list(keys)
        self._in_flight: dict[Key, int] = defaultdict(int)
        self._finished: dict[Key, int] = defaultdict(int)
        self._covered: dict[Key, int] = defaultdict(int)  # finished calls the last read saw
        self._per_call: dict[Key, float] = {}
        self._seen: dict[Key, tuple[float, float]] = {}  # ok calls, cost at the last read
        self._read_at = 0.0
        self._changed = asyncio.Condition()

    async def admit(self, key: Key) -> bool:
        """Wait until a call to `key` fits the budget (True), or the budget is spent (False)."""
        async with self._changed:
            while not self.exhausted:
                unread = any(self._finished[k] > self._covered[k] for k in self._finished)
                stale = time.monotonic() - self._read_at > STALE_AFTER_S
                if unread and (key not in self._per_call or stale):
                    await self._read()
                    continue
                price = self._per_call.get(key)
                if price is None and self._in_flight[key]:
                    await self._changed.wait()  # a model's first call goes alone
                    continue
                projected = self.spent_usd + self._reserved()
                if price is None and projected < self.limit_usd:
                    return self._take(key)
                if price is not None and projected + price <= self.limit_usd:
                    return self._take(key)
                if unread:
                    await self._read()  # finished calls may have cost less than reserved
                elif any(self._in_flight.values()):
                    await self._changed.wait()
                else:
                    self.exhausted = True
                    self._changed.notify_all()
            return False

    async def finished(self, key: Key) -> None:
        """A call admitted for `key` is over (whatever its outcome)."""
        async with self._changed:
            self._in_flight[key] -= 1
            self._finished[key] += 1
            self._changed.notify_all()

    async def release(self, key: Key) -> None:
        """A call admitted for `key` was not sent after all."""
        async with self._changed:
            self._in_flight[key] -= 1
            self._changed.notify_all()

    def _take(self, key: Key) -> bool:
        self._in_flight[key] += 1
        return True

    def _reserved(self) -> float:
        """What the calls the last read does not cover may cost, at their model's price."""
        keys = set(self._in_flight) | set(self._finished)
        return sum(
            self._per_call.get(k, 0.0) * (self._in_flight[k] + self._finished[k] - self._covered[k])
            for k in keys
        )

    async def _read(self) -> None:
        """Read spend and per-call prices, once the sidecar has recorded every finished call."""
        covered = dict(self._finished)
        ledger = await self.metrics.wait_until_recorded(covered)
        self._read_at = time.monotonic()
        self._covered.update(covered)
        spent = 0.0
        for key in self._keys:
            stats = ledger.get(key)
            if stats is None:
                continue
            spent += stats.cost_usd
            ok_calls = stats.calls - stats.errors
            before_calls, before_cost = self._seen.get(key, (0.0, 0.0))
            if ok_calls > before_calls and stats.cost_usd > before_cost:
                price = (stats.cost_usd - before_cost) / (ok_calls - before_calls)
                self._per_call[key] = max(price, self._per_call.get(key, 0.0))
            elif ok_calls > before_calls and stats.cost_usd == 0:
                self.unpriced.add(key)  # unknown to genai-prices, or no usage reported
                self._per_call.setdefault(key, 0.0)
            self._seen[key] = (ok_calls, stats.cost_usd)
        self.spent_usd = spent
