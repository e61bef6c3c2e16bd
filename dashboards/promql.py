"""PromQL building blocks shared by every dashboard: scoped selectors, rates, quantiles, ratios.

Every selector carries the dashboard's variable matchers, so a query never forgets a filter.
A measurement the convention generations name differently (`Alternatives`) is read under every
name, newest first, joined with `or` (alerts/series.py), so one query works in every mode.
`$job` expands to the exact jobs Grafana found; `$namespace`, `$pod`, `$provider` and `$model`
use the All value `.*`, which also matches a series without that label (a plain,
non-Kubernetes scrape has no `namespace` or `pod`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alerts.recording import ERROR_MATCHERS
from alerts.series import Series, names

# The Grafana window for rate(): at least four scrape intervals, so 15 s to 60 s scrapes work.
RATE_WINDOW = "$__rate_interval"
# The dashboard's whole time range, for tables and top-N lists.
RANGE_WINDOW = "$__range"

JOB_MATCHER = 'job=~"$job"'
NAMESPACE_MATCHER = 'namespace=~"$namespace"'
POD_MATCHER = 'pod=~"$pod"'
PROVIDER_MATCHER = 'gen_ai_provider_name=~"$provider"'
MODEL_MATCHER = 'gen_ai_request_model=~"$model"'
SIDECAR_MATCHERS = (JOB_MATCHER, NAMESPACE_MATCHER, POD_MATCHER)
CALL_MATCHERS = (*SIDECAR_MATCHERS, PROVIDER_MATCHER, MODEL_MATCHER)
# Calls that failed on the provider's side or on the way: the alerts' definition, shared so an
# error ratio on a dashboard is the one ModelErrorBudgetBurn fires on.
PROVIDER_ERRORS = ERROR_MATCHERS

MODEL = ("gen_ai_provider_name", "gen_ai_request_model")


def by_clause(labels: Sequence[str]) -> str:
    """`sum by (a, b) ` for `labels`, or `sum ` when there are none."""
    return f"sum by ({', '.join(labels)}) " if labels else "sum "


@dataclass(frozen=True, slots=True)
class Scope:
    """The label matchers every selector of a dashboard carries."""

    matchers: tuple[str, ...]

    def selector(self, metric: str, *extra: str) -> str:
        """`metric{scope matchers, extra matchers}`."""
        return f"{metric}{{{', '.join((*self.matchers, *extra))}}}"

    def _each(
        self, function: str, metric: Series, extra: Sequence[str], window: str, suffix: str
    ) -> str:
        return " or ".join(
            f"{function}({self.selector(name, *extra)}[{window}])" for name in names(metric, suffix)
        )

    def rate(self, metric: Series, *extra: str, window: str = RATE_WINDOW, suffix: str = "") -> str:
        """Per-second rate of a counter over `window`."""
        return self._each("rate", metric, extra, window, suffix)

    def increase(
        self, metric: Series, *extra: str, window: str = RANGE_WINDOW, suffix: str = ""
    ) -> str:
        """Increase of a counter over `window` (by default the dashboard's time range)."""
        return self._each("increase", metric, extra, window, suffix)

    def sum_rate(
        self,
        metric: Series,
        *extra: str,
        by: Sequence[str] = (),
        window: str = RATE_WINDOW,
        suffix: str = "",
    ) -> str:
        """`sum by (by) (rate(metric{…}[window]))`; an increase when `window` is the range."""
        inner = (
            self.increase(metric, *extra, window=window, suffix=suffix)
            if window == RANGE_WINDOW
            else self.rate(metric, *extra, window=window, suffix=suffix)
        )
        return f"{by_clause(by)}({inner})"

    def quantile(
        self,
        quantile: float,
        histogram: Series,
        *extra: str,
        by: Sequence[str] = (),
        window: str = RATE_WINDOW,
    ) -> str:
        """histogram_quantile over the buckets summed by (le, `by`): aggregate first."""
        buckets = self.rate(histogram, *extra, window=window, suffix="_bucket")
        return f"histogram_quantile({quantile}, {by_clause(('le', *by))}({buckets}))"


def ratio(part: str, whole: str) -> str:
    """`part / whole` where `part` counts a subset of `whole`: 0 when no part, never ÷ 0.

    Groups where `whole` is 0 (no traffic in the window) are dropped rather than turned
    into NaN; groups with traffic but no `part` show 0 instead of vanishing.
    """
    return f"({part} or {whole} * 0) / ({whole} > 0)"


def per(numerator: str, denominator: str, scale: float = 1) -> str:
    """`numerator / denominator` (times `scale`), dropping groups whose denominator is 0."""
    scaled = f" * {scale:g}" if scale != 1 else ""
    return f"{numerator} / ({denominator} > 0){scaled}"


def per_group(numerator: str, denominator: str, on: Sequence[str]) -> str:
    """`numerator / denominator` where the denominator is grouped only by `on` (many-to-one)."""
    return f"{numerator} / on ({', '.join(on)}) group_left () ({denominator} > 0)"


def per_hour(rate_expr: str) -> str:
    """A per-second rate shown per hour."""
    return f"{rate_expr} * 3600"
