"""The probe's report as a terminal table, Markdown or JSON: one set of cells for all three."""

from __future__ import annotations

import json
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sidecar.probe.results import OK, ModelResult, ProbeReport

COLUMNS = (
    "#",
    "model",
    "calls",
    "error %",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "p95 TTFT ms",
    "out tok/s",
    "$ per call",
    "$ per 10k",
    "retry %",
    "low conf %",
    "repeat same %",
)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f}"


def _pct(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f}%"


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def row_cells(result: ModelResult) -> tuple[str, ...]:
    """The formatted cells of one model's row, in COLUMNS order."""
    return (
        str(result.rank) if result.rank is not None else "-",
        result.model,
        f"{result.calls:,.0f}",
        _pct(result.error_ratio),
        _ms(result.latency_p50_s),
        _ms(result.latency_p95_s),
        _ms(result.latency_p99_s),
        _ms(result.ttft_p95_s),
        _num(result.output_tokens_per_second, 0),
        _num(result.cost_per_call_usd, 6),
        _num(result.cost_per_10k_calls_usd, 2),
        _pct(result.retry_ratio),
        _pct(result.low_confidence_ratio),
        _pct(result.repeat_same_ratio),
    )


def notes(report: ProbeReport) -> list[str]:
    """Lines under the table: problems, errors by type, budget, where the numbers came from."""
    lines = []
    for result in report.models:
        parts = []
        if result.status != OK:
            parts.append(f"{result.status.upper()}: {result.problem}")
        if result.errors_by_type:
            counts = ", ".join(f"{kind}: {n:,.0f}" for kind, n in result.errors_by_type.items())
            parts.append(f"errors by type ({counts})")
        if result.note:
            parts.append(result.note)
        if result.status == OK and result.sent < result.planned:
            parts.append(f"sent {result.sent} of {result.planned} planned calls")
        if parts:
            lines.append(f"{result.model}: " + "; ".join(parts))
    spent = f"spent ${report.spent_usd:,.6f}, warm-up calls included"
    if report.budget_usd is not None:
        state = "reached: the probe stopped sending" if report.budget_reached else "not reached"
        lines.append(f"budget ${report.budget_usd:,.4f}: {spent} ({state})")
    elif report.spent_usd:
        lines.append(spent)
    lines.append(
        f"From the sidecar's {report.metrics_url} in {report.duration_s:,.1f} s. Latency is over "
        "successful calls, quantiles interpolated within histogram buckets as Prometheus does."
    )
    return lines


def rich_table(report: ProbeReport) -> Table:
    """The terminal table (cells are plain text: no markup, no emoji codes)."""
    table = Table(title="Models, fastest first (median latency)", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for result in report.models:
        style = "" if result.status == OK else "red"
        table.add_row(*(Text(cell, style=style) for cell in row_cells(result)))
    return table


def print_table(report: ProbeReport, file: TextIO) -> None:
    """The table and its notes; wider than the terminal rather than cut."""
    table = rich_table(report)
    console = Console(file=file, emoji=False, highlight=False)
    needed = Console(width=1000).measure(table).maximum
    if needed > console.width:
        console = Console(file=file, emoji=False, highlight=False, width=needed)
    console.print(table)
    for line in notes(report):
        console.print(Text(line))


def markdown(report: ProbeReport) -> str:
    """A GitHub-flavoured Markdown table with the notes as a list."""

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    align = tuple("---" if column == "model" else "---:" for column in COLUMNS)
    rows = [line(COLUMNS), line(align), *(line(row_cells(r)) for r in report.models)]
    bullets = [f"- {text}" for text in notes(report)]
    return "\n".join(["## Model probe", "", *rows, "", *bullets]) + "\n"


def to_json(report: ProbeReport) -> str:
    """The JSON document: raw numbers (seconds, USD, ratios 0 to 1)."""
    return json.dumps(report.to_dict(), indent=2) + "\n"
