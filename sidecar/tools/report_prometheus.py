"""The model-comparison numbers from a Prometheus server, over a time window.

Each counter and histogram series the report reads counts `increase(series[window])` when
the series is older than the window (counter resets, i.e. restarts, are handled), and its
whole value when it was born inside the window (increase() would extrapolate from its first
scrape and miss the calls before it); summed by model, experiment and variant over every
pod Prometheus scrapes. Operation `other` is left out, as in `report` on one sidecar.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence

from sidecar.tools.report import (
    ARM_GROUP,
    CONFIDENCE,
    COST,
    COST_UNKNOWN,
    DURATION,
    EDIT_SECONDS,
    FEEDBACK,
    LOW_CONFIDENCE,
    OPERATION,
    OTHER_OPERATION,
    RENAMED,
    REPEATS,
    REQUESTS,
    RETRIES,
    TOKENS,
    TTFC,
    SampleTuple,
)

WINDOW = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
# Model calls only, as `report` reads a sidecar (tools/report.py, inference_only); series
# without the label (feedback) match too.
INFERENCE = f'{{{OPERATION}!="{OTHER_OPERATION}"}}'
# (series, labels kept beyond the group)
QUERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (REQUESTS, ("outcome", "http_status_code")),
    (DURATION + "_bucket", ("le", "error_type")),
    (DURATION + "_sum", ("error_type",)),
    (DURATION + "_count", ("error_type",)),
    (TTFC + "_bucket", ("le",)),
    (TOKENS, ("gen_ai_token_type",)),
    (COST, ()),
    (COST_UNKNOWN, ()),
    (RETRIES, ()),
    (CONFIDENCE + "_count", ()),
    (LOW_CONFIDENCE, ()),
    (REPEATS, ("result",)),
    (FEEDBACK, ("outcome",)),
    (EDIT_SECONDS + "_sum", ()),
    (EDIT_SECONDS + "_count", ()),
)


class PrometheusError(Exception):
    """Prometheus could not be asked, or refused a query."""


def check_window(window: str) -> str:
    """A Prometheus duration such as 1h or 30m; ValueError otherwise."""
    if not WINDOW.match(window):
        raise ValueError(f"expected a Prometheus duration such as 1h or 30m, got {window!r}")
    return window


def query(base_url: str, expr: str, timeout: float = 10.0) -> list[dict[str, object]]:
    """The result vector of an instant query."""
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise PrometheusError(f"{base_url} refused {expr!r}: {exc.code} {detail}") from exc
    except (OSError, ValueError) as exc:
        raise PrometheusError(f"cannot query {base_url}: {exc}") from exc
    if body.get("status") != "success":
        raise PrometheusError(f"{base_url}: {body.get('error', body)}")
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def window_increase(series: str, window: str, labels: str) -> str:
    """PromQL: per group, what each series counted within the window (see the module doc).
    A renamed measurement is read under every generation's name, newest first (`or`)."""
    name, suffix = series, ""
    for base in RENAMED:
        if series.startswith(base) and series[len(base) :] in ("_bucket", "_sum", "_count"):
            name, suffix = base, series[len(base) :]
    names = [n + suffix for n in RENAMED[name].names] if name in RENAMED else [series]
    each = " or ".join(f"((increase({n}[{window}]) and {n} offset {window}) or {n})" for n in names)
    return f"sum by ({labels}) ({each})"


def fetch_samples(
    base_url: str, window: str, group_by: Sequence[str] = ARM_GROUP
) -> list[SampleTuple]:
    """(series, labels, increase over `window`) for every series the report reads."""
    check_window(window)
    samples: list[SampleTuple] = []
    for series, extra in QUERIES:
        labels = ", ".join((*group_by, *extra))
        expr = window_increase(series + INFERENCE, window, labels)
        for item in query(base_url, expr):
            metric = item["metric"]
            value = item["value"]
            assert isinstance(metric, dict) and isinstance(value, list)
            samples.append((series, {str(k): str(v) for k, v in metric.items()}, float(value[1])))
    return samples
