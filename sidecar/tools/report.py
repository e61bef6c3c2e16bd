"""Per-model numbers read from a sidecar's own /metrics: what a user would see in Grafana."""

from __future__ import annotations

import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from sidecar.telemetry import conventions as c

# Durations and times to first chunk are read under their v1.41 names; a sidecar in another
# convention mode exports them under other names too (`ALTERNATIVES`, see `one_generation`).
DURATION = c.OPERATION_DURATION.name
TTFC = c.TIME_TO_FIRST_CHUNK.name
REQUESTS = c.REQUESTS.name
TOKENS = c.TOKENS.name
COST = c.COST.name
COST_UNKNOWN = c.COST_UNKNOWN.name
RETRIES = c.RETRIES.name
CONFIDENCE = c.CONFIDENCE.name
LOW_CONFIDENCE = c.LOW_CONFIDENCE.name
REPEATS = c.REPEAT_OUTPUTS.name
FEEDBACK = c.FEEDBACK.name
EDIT_SECONDS = c.EDIT_SECONDS.name
# The report's name for each generation's name of a renamed measurement, newest first.
RENAMED = {DURATION: c.CALL_DURATION, TTFC: c.CALL_TIME_TO_FIRST_CHUNK}
_SUFFIXES = ("_bucket", "_sum", "_count")
_CANONICAL = {
    name + suffix: (canonical + suffix, rank)
    for canonical, alternatives in RENAMED.items()
    for rank, name in enumerate(alternatives.names)
    for suffix in _SUFFIXES
}
FEEDBACK_OUTCOMES = ("accepted", "edited", "rejected", "hallucination")

OPERATION = "gen_ai_operation_name"
OTHER_OPERATION = "other"

DEFAULT_GROUP = ("gen_ai_request_model",)
# The model-comparison report: one row per model and experiment arm.
ARM_GROUP = ("gen_ai_request_model", "experiment", "variant")

# (metric name, labels, value)
SampleTuple = tuple[str, dict[str, str], float]


@dataclass
class Histogram:
    """Cumulative bucket counts of one histogram, merged over the series of a group."""

    buckets: dict[float, float] = field(default_factory=dict)
    total: float = 0.0
    count: float = 0.0

    def add(self, le: float, value: float) -> None:
        """Add a cumulative bucket count."""
        self.buckets[le] = self.buckets.get(le, 0.0) + value

    def quantile(self, q: float) -> float | None:
        """The q-quantile by linear interpolation within a bucket, as histogram_quantile does."""
        if not self.buckets:
            return None
        bounds = sorted(self.buckets)
        count = self.buckets[bounds[-1]]
        if count <= 0:
            return None
        rank = q * count
        lower_bound, lower_count = 0.0, 0.0
        for bound in bounds:
            cumulative = self.buckets[bound]
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower_bound
                if cumulative == lower_count:
                    return bound
                return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                    cumulative - lower_count
                )
            lower_bound, lower_count = bound, cumulative
        return bounds[-1]

    @property
    def mean(self) -> float | None:
        """The exact mean (sum / count), or None when nothing was observed."""
        return self.total / self.count if self.count else None


@dataclass
class GroupStats:
    """Everything the summary shows for one model (or model and variant)."""

    key: tuple[str, ...]
    calls: float = 0.0
    errors: float = 0.0
    # Calls by `error_type`: the upstream status (e.g. "429") or the outcome word.
    errors_by_type: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    duration: Histogram = field(default_factory=Histogram)
    # Durations of successful calls only (error_type ""): errors are often fast.
    ok_duration: Histogram = field(default_factory=Histogram)
    ttfc: Histogram = field(default_factory=Histogram)
    tokens: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cost_usd: float = 0.0
    cost_unknown: float = 0.0
    retries: float = 0.0
    confidence_count: float = 0.0
    low_confidence: float = 0.0
    repeats: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    feedback: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    edit_seconds: float = 0.0
    edits: float = 0.0

    @property
    def error_ratio(self) -> float | None:
        """Share of calls that did not end `ok`."""
        return self.errors / self.calls if self.calls else None

    @property
    def retry_ratio(self) -> float | None:
        """Retries (client and sidecar) per call."""
        return self.retries / self.calls if self.calls else None

    @property
    def cost_per_10k(self) -> float | None:
        """Spend per 10,000 calls in USD, or None when nothing was priced."""
        return self.cost_usd / self.calls * 10_000 if self.calls and self.cost_usd else None

    @property
    def cost_per_call(self) -> float | None:
        """Mean spend per call in USD, or None when nothing was priced."""
        return self.cost_usd / self.calls if self.calls and self.cost_usd else None

    @property
    def output_tokens_per_second(self) -> float | None:
        """Output tokens per second of call time."""
        if not self.duration.total:
            return None
        return self.tokens.get("output", 0.0) / self.duration.total

    @property
    def low_confidence_ratio(self) -> float | None:
        """Share of calls with a confidence that were marked low."""
        return self.low_confidence / self.confidence_count if self.confidence_count else None

    @property
    def hallucinations_per_1k(self) -> float | None:
        """Calls reported as hallucinations (feedback) per 1,000 calls."""
        if not self.calls:
            return None
        return self.feedback.get("hallucination", 0.0) / self.calls * 1000

    @property
    def mean_edit_seconds(self) -> float | None:
        """Mean human edit time reported with feedback."""
        return self.edit_seconds / self.edits if self.edits else None

    @property
    def repeatability(self) -> float | None:
        """Share of temperature-0 repeats that gave the same output."""
        seen = self.repeats.get("same", 0.0) + self.repeats.get("different", 0.0)
        return self.repeats.get("same", 0.0) / seen if seen else None


def summarize(
    text: str, group_by: Sequence[str] = DEFAULT_GROUP, baseline: str | None = None
) -> list[GroupStats]:
    """Per-group statistics from a Prometheus text exposition, sorted by group key.

    With `baseline` (an earlier exposition of the same sidecar), counts since then only.
    """
    return aggregate(parse_samples(text, baseline), group_by)


def parse_samples(text: str, baseline: str | None = None) -> Iterator[SampleTuple]:
    """(name, labels, value) of every sample of an exposition, each renamed measurement under
    the report's name (`one_generation`); with `baseline`, since then."""
    earlier = _sample_values(baseline) if baseline else {}
    return iter(
        one_generation(
            (sample.name, sample.labels, sample.value - earlier.get(_sample_key(sample), 0.0))
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        )
    )


def inference_only(samples: Iterable[SampleTuple]) -> Iterator[SampleTuple]:
    """The samples of model calls: without operation `other` (token counts, model lists, paths
    no protocol knows), whose latency says nothing about a model. Series without an operation
    label (feedback) are kept."""
    return (sample for sample in samples if sample[1].get(OPERATION) != OTHER_OPERATION)


def one_generation(samples: Iterable[SampleTuple]) -> list[SampleTuple]:
    """The samples, with every generation's name of a renamed measurement read as the
    report's name, each series once: the newest name wins, as PromQL `or` (dup mode exports
    a call under both names)."""
    kept: list[SampleTuple] = []
    renamed: dict[tuple[str, frozenset[tuple[str, str]]], tuple[int, SampleTuple]] = {}
    for name, labels, value in samples:
        canonical = _CANONICAL.get(name)
        if canonical is None:
            kept.append((name, labels, value))
            continue
        key = (canonical[0], frozenset(labels.items()))
        if key not in renamed or canonical[1] < renamed[key][0]:
            renamed[key] = (canonical[1], (canonical[0], labels, value))
    return kept + [sample for _, sample in renamed.values()]


def aggregate(samples: Iterable[SampleTuple], group_by: Sequence[str]) -> list[GroupStats]:
    """Per-group statistics from (name, labels, value) samples, sorted by group key."""
    groups: dict[tuple[str, ...], GroupStats] = {}

    def group(labels: dict[str, str]) -> GroupStats:
        key = tuple(labels.get(name, "") for name in group_by)
        if key not in groups:
            groups[key] = GroupStats(key)
        return groups[key]

    for name, labels, value in samples:
        if name == REQUESTS:
            stats = group(labels)
            stats.calls += value
            if labels.get("outcome") != "ok":
                stats.errors += value
                stats.errors_by_type[_error_type(labels)] += value
        elif name == DURATION + "_bucket":
            group(labels).duration.add(float(labels["le"]), value)
            if not labels.get("error_type"):
                group(labels).ok_duration.add(float(labels["le"]), value)
        elif name in (DURATION + "_sum", DURATION + "_count"):
            _add_total(group(labels), name.endswith("_sum"), not labels.get("error_type"), value)
        elif name == TTFC + "_bucket":
            group(labels).ttfc.add(float(labels["le"]), value)
        elif name == TOKENS:
            group(labels).tokens[labels.get("gen_ai_token_type", "")] += value
        elif name == COST:
            group(labels).cost_usd += value
        elif name == COST_UNKNOWN:
            group(labels).cost_unknown += value
        elif name == RETRIES:
            group(labels).retries += value
        elif name == CONFIDENCE + "_count":
            group(labels).confidence_count += value
        elif name == LOW_CONFIDENCE:
            group(labels).low_confidence += value
        elif name == REPEATS:
            group(labels).repeats[labels.get("result", "")] += value
        elif name == FEEDBACK:
            group(labels).feedback[labels.get("outcome", "")] += value
        elif name == EDIT_SECONDS + "_sum":
            group(labels).edit_seconds += value
        elif name == EDIT_SECONDS + "_count":
            group(labels).edits += value
    return [groups[key] for key in sorted(groups) if groups[key].calls]


def _sample_key(sample: Sample) -> tuple[str, frozenset[tuple[str, str]]]:
    return sample.name, frozenset(sample.labels.items())


def _sample_values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        _sample_key(sample): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _error_type(labels: dict[str, str]) -> str:
    outcome = labels.get("outcome", "")
    if outcome == "upstream_error":
        return labels.get("http_status_code") or outcome
    return outcome


def _add_total(stats: GroupStats, is_sum: bool, ok: bool, value: float) -> None:
    for histogram in (stats.duration, stats.ok_duration) if ok else (stats.duration,):
        if is_sum:
            histogram.total += value
        else:
            histogram.count += value


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f}"


def _pct(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f}%"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


COLUMNS = (
    "calls",
    "p50 ms",
    "p95 ms",
    "p95 TTFT ms",
    "out tok/s",
    "$ per 10k",
    "error %",
    "retry %",
    "low conf %",
    "repeat same %",
)


def table_rows(stats: Iterable[GroupStats]) -> list[tuple[str, ...]]:
    """Formatted cells for each group: the key columns, then COLUMNS."""
    rows = []
    for item in stats:
        rows.append(
            (
                *(part or "-" for part in item.key),
                f"{item.calls:,.0f}",
                _ms(item.duration.quantile(0.5)),
                _ms(item.duration.quantile(0.95)),
                _ms(item.ttfc.quantile(0.95)),
                _num(item.output_tokens_per_second, 0),
                _num(item.cost_per_10k, 2),
                _pct(item.error_ratio),
                _pct(item.retry_ratio),
                _pct(item.low_confidence_ratio),
                _pct(item.repeatability),
            )
        )
    return rows


# The model-comparison report (`model-sidecar report --prometheus`): per model and arm.
COMPARISON_KEYS = ("model", "experiment", "variant")
COMPARISON_COLUMNS = (
    "calls",
    "p50 ms",
    "p95 ms",
    "p95 TTFT ms",
    "$ per 10k",
    "error %",
    "retry %",
    "low conf %",
    "repeat same %",
    *FEEDBACK_OUTCOMES,
    "halluc. /1k",
    "edit s",
)


def comparison_values(item: GroupStats) -> dict[str, object]:
    """One row of the comparison as plain numbers (None where not measured), for JSON."""
    return {
        **dict(zip(COMPARISON_KEYS, item.key, strict=False)),
        "calls": item.calls,
        "p50_seconds": item.duration.quantile(0.5),
        "p95_seconds": item.duration.quantile(0.95),
        "p95_ttft_seconds": item.ttfc.quantile(0.95),
        "cost_per_10k_usd": item.cost_per_10k,
        "error_ratio": item.error_ratio,
        "retry_ratio": item.retry_ratio,
        "low_confidence_ratio": item.low_confidence_ratio,
        "repeatability": item.repeatability,
        "feedback": {outcome: item.feedback.get(outcome, 0.0) for outcome in FEEDBACK_OUTCOMES},
        "hallucinations_per_1k": item.hallucinations_per_1k,
        "mean_edit_seconds": item.mean_edit_seconds,
    }


def comparison_rows(stats: Iterable[GroupStats]) -> list[tuple[str, ...]]:
    """Formatted cells of each row: model, experiment, variant, then COMPARISON_COLUMNS."""
    items = list(stats)
    rows = []
    for item, cells in zip(items, table_rows(items), strict=True):
        keys, numbers = cells[: len(item.key)], cells[len(item.key) :]
        common = (*numbers[:4], *numbers[5:])  # every column but output tokens per second
        feedback = (f"{item.feedback.get(outcome, 0.0):,.0f}" for outcome in FEEDBACK_OUTCOMES)
        rows.append(
            (
                *keys,
                *common,
                *feedback,
                # Without any feedback there is nothing to count hallucinations in.
                _num(item.hallucinations_per_1k if any(item.feedback.values()) else None, 1),
                _num(item.mean_edit_seconds, 1),
            )
        )
    return rows


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; numeric columns right-aligned."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if header in COMPARISON_KEYS else "---:" for header in headers) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# What `report` shows by default (it fits 120 columns); `--wide` shows COMPARISON_COLUMNS.
DEFAULT_COLUMNS = (
    "calls",
    "p50 ms",
    "p95 ms",
    "p95 TTFT ms",
    "$ per 10k",
    "error %",
    "retry %",
)
REPORT_WIDTH = 120
# Cells that mean "nothing measured": a column holding only these is left out.
_EMPTY_CELLS = frozenset({"-", "0"})


def shown_columns(
    headers: Sequence[str], rows: Sequence[Sequence[str]], keep: Sequence[str]
) -> list[int]:
    """Indexes of the columns to show: those in `keep` (in `headers` order) that have a value
    in some row; the model column always."""
    wanted = set(keep)
    return [
        index
        for index, header in enumerate(headers)
        if index == 0 or (header in wanted and any(row[index] not in _EMPTY_CELLS for row in rows))
    ]


def render_comparison(stats: Sequence[GroupStats], fmt: str, title: str, wide: bool = False) -> str:
    """The comparison as a terminal table, JSON or Markdown. Tables show DEFAULT_COLUMNS (every
    column with `wide`), and leave out columns nothing was measured for."""
    if fmt == "json":
        return json.dumps([comparison_values(item) for item in stats], indent=2) + "\n"
    every: tuple[str, ...] = (*COMPARISON_KEYS, *COMPARISON_COLUMNS)
    all_rows = comparison_rows(stats)
    keep = (*COMPARISON_KEYS, *(COMPARISON_COLUMNS if wide else DEFAULT_COLUMNS))
    shown = shown_columns(every, all_rows, keep)
    headers = tuple(every[index] for index in shown)
    rows = [tuple(row[index] for index in shown) for row in all_rows]
    if fmt == "markdown":
        return f"**{title}**\n\n" + markdown_table(headers, rows)
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0)
    )
    for header in headers:
        if header in COMPARISON_KEYS:  # long names wrap rather than push the numbers off
            table.add_column(header, overflow="fold")
        else:
            table.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    for row in rows:
        table.add_row(*row)
    # The default view fits a 120-column terminal; --wide is as wide as its columns need.
    console = Console(width=10_000 if wide else REPORT_WIDTH, record=True, file=io.StringIO())
    console.print(table)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"
