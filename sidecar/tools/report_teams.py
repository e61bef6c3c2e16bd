"""`model-sidecar report --by team`: calls, errors, tokens and spend per attribution value (the
configured team or feature header), from a sidecar's /metrics or from Prometheus over a window.
Reads the model_sidecar_attribution_* counters; a sidecar without `attribution:` has none."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from sidecar.telemetry import conventions as c
from sidecar.tools.report import SampleTuple, markdown_table

TEAM = "attribution"
HEADERS = ("team", "calls", "error %", "input tokens", "output tokens", "cost USD", "cost %")
# (series, labels kept beyond the team) for --prometheus.
QUERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (c.ATTRIBUTION_REQUESTS.name, ("outcome",)),
    (c.ATTRIBUTION_TOKENS.name, ("gen_ai_token_type",)),
    (c.ATTRIBUTION_COST.name, ()),
)


@dataclass(slots=True)
class TeamStats:
    """What one attribution value spent."""

    team: str
    calls: float = 0.0
    errors: float = 0.0
    input_tokens: float = 0.0
    output_tokens: float = 0.0
    cost_usd: float = 0.0


def by_team(samples: Iterable[SampleTuple]) -> list[TeamStats]:
    """Per team, most expensive first."""
    teams: dict[str, TeamStats] = {}
    for name, labels, value in samples:
        team = labels.get(TEAM)
        if team is None or name.endswith("_created"):
            continue
        stats = teams.setdefault(team, TeamStats(team))
        if name == c.ATTRIBUTION_REQUESTS.name:
            stats.calls += value
            if labels.get("outcome", "ok") not in ("ok", "client_cancelled"):
                stats.errors += value
        elif name == c.ATTRIBUTION_TOKENS.name:
            kind = labels.get("gen_ai_token_type")
            if kind == "input":
                stats.input_tokens += value
            elif kind == "output":
                stats.output_tokens += value
        elif name == c.ATTRIBUTION_COST.name:
            stats.cost_usd += value
    return sorted(teams.values(), key=lambda stats: (-stats.cost_usd, stats.team))


def prometheus_queries(window: str) -> list[tuple[str, str]]:
    """(series, PromQL) per counter: what each team's series counted within `window`."""
    from sidecar.tools.report_prometheus import window_increase

    return [
        (series, window_increase(series, window, ", ".join((TEAM, *extra))))
        for series, extra in QUERIES
    ]


def rows(stats: Sequence[TeamStats]) -> list[tuple[str, ...]]:
    """Table rows, with each team's share of the spend."""
    spent = sum(item.cost_usd for item in stats)
    return [
        (
            item.team,
            f"{item.calls:.0f}",
            f"{100 * item.errors / item.calls:.1f}" if item.calls else "-",
            f"{item.input_tokens:.0f}",
            f"{item.output_tokens:.0f}",
            f"{item.cost_usd:.4f}",
            f"{100 * item.cost_usd / spent:.1f}" if spent else "-",
        )
        for item in stats
    ]


def render(stats: Sequence[TeamStats], fmt: str, title: str) -> str:
    """The per-team view as a table, JSON or Markdown."""
    if fmt == "json":
        return json.dumps([asdict(item) for item in stats], indent=2) + "\n"
    if not stats:
        return f"{title}\n(no attribution counters: set `attribution:` in the config)\n"
    if fmt == "markdown":
        return f"**{title}**\n\n" + markdown_table(HEADERS, rows(stats))
    widths = [max(len(h), *(len(r[i]) for r in rows(stats))) for i, h in enumerate(HEADERS)]
    lines = [title, ""]
    for cells in (HEADERS, *rows(stats)):
        lines.append(
            "  ".join(
                cell.ljust(width) if index == 0 else cell.rjust(width)
                for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )
    return "\n".join(lines) + "\n"


def fetch_team_samples(base_url: str, window: str) -> list[SampleTuple]:
    """(series, labels, increase over `window`) of the attribution counters, per team."""
    from sidecar.tools.report_prometheus import query

    samples: list[SampleTuple] = []
    for series, expr in prometheus_queries(window):
        for item in query(base_url, expr):
            metric = item["metric"]
            value = item["value"]
            assert isinstance(metric, dict) and isinstance(value, list)
            samples.append((series, {str(k): str(v) for k, v in metric.items()}, float(value[1])))
    return samples
