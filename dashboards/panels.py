"""Panel factories: every panel gets a description, a unit, thresholds and, for alert-related
panels, links to the runbooks of those alerts. Queries always use the datasource variable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from grafana_foundation_sdk.builders import bargauge, common, dashboard, prometheus, stat, table
from grafana_foundation_sdk.builders import timeseries as timeseries_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import prometheus as prometheus_models

from dashboards.runbooks import runbook_links

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")

Panel = TypeVar("Panel", timeseries_builder.Panel, stat.Panel, table.Panel, bargauge.Panel)

GREEN = "green"
ORANGE = "orange"
RED = "red"


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL expression and the legend of the series it returns."""

    expr: str
    legend: str = ""


@dataclass(frozen=True, slots=True)
class Levels:
    """Threshold steps: `base` colour from -inf, then (value, colour) steps upwards."""

    base: str = GREEN
    steps: tuple[tuple[float, str], ...] = ()

    def build(self) -> dashboard.ThresholdsConfig:
        """The Grafana thresholds config."""
        steps = [models.Threshold(value=None, color=self.base)]
        steps += [models.Threshold(value=value, color=color) for value, color in self.steps]
        return dashboard.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(steps)


# No level is wrong in itself (e.g. traffic): a single base colour.
NEUTRAL = Levels()


def high_is_bad(warn: float, critical: float) -> Levels:
    """Green below `warn`, orange from it, red from `critical`."""
    return Levels(GREEN, ((warn, ORANGE), (critical, RED)))


def low_is_bad(warn: float, good: float) -> Levels:
    """Red below `warn`, orange from it, green from `good`."""
    return Levels(RED, ((warn, ORANGE), (good, GREEN)))


# Exemplars carry the trace id of a sampled call in this field; its link opens the trace in
# the tracing datasource the `trace_datasource` variable picks (Tempo: a trace id is a query).
TRACE_ID_FIELD = "trace_id"
TRACE_LINK = {
    "title": "Open trace ${__value.raw}",
    "url": '/explore?left={"datasource":"${trace_datasource}","queries":[{"refId":"A",'
    '"queryType":"traceql","query":"${__value.raw}"}]}',
    "targetBlank": True,
}


def prometheus_targets(
    queries: Sequence[Query],
    *,
    instant: bool = False,
    table_format: bool = False,
    exemplars: bool = False,
) -> list[cogbuilder.Builder[variants.Dataquery]]:
    """Dataqueries A, B, C… on the datasource variable."""
    targets: list[cogbuilder.Builder[variants.Dataquery]] = []
    for index, query in enumerate(queries):
        target = (
            prometheus.Dataquery()
            .ref_id(chr(ord("A") + index))
            .datasource(DATASOURCE)
            .expr(query.expr)
            .legend_format(query.legend or "__auto")
        )
        target = target.instant() if instant else target.range()
        if exemplars:
            target = target.exemplar(True)
        if table_format:
            target = target.format(prometheus_models.PromQueryFormat.TABLE)
        targets.append(target)
    return targets


def _decorate(
    panel: Panel,
    title: str,
    description: str,
    unit: str,
    levels: Levels,
    runbooks: Sequence[str],
) -> Panel:
    """The settings every panel shares."""
    panel = (
        panel.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .thresholds(levels.build())
    )
    if runbooks:
        panel = panel.links(runbook_links(runbooks))
    return panel


def timeseries(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    levels: Levels,
    runbooks: Sequence[str] = (),
    stacked: bool = False,
    min_value: float | None = 0,
    max_value: float | None = None,
    exemplars: bool = False,
) -> timeseries_builder.Panel:
    """A time series panel; threshold steps are drawn as dashed lines. With `exemplars`, the
    queries ask for exemplars and an exemplar's trace id links to its trace."""
    panel = (
        timeseries_builder.Panel()
        .targets(prometheus_targets(queries, exemplars=exemplars))
        .line_width(1)
        .fill_opacity(10 if not stacked else 40)
        .show_points(common_models.VisibilityMode.NEVER)
        .legend(
            common.VizLegendOptions()
            .display_mode(common_models.LegendDisplayMode.TABLE)
            .placement(common_models.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "max", "lastNotNull"])
        )
        .tooltip(
            common.VizTooltipOptions()
            .mode(common_models.TooltipDisplayMode.MULTI)
            .sort(common_models.SortOrder.DESCENDING)
        )
    )
    if levels.steps:
        panel = panel.thresholds_style(
            common.GraphThresholdsStyleConfig().mode(common_models.GraphThresholdsStyleMode.DASHED)
        )
    if stacked:
        panel = panel.stacking(
            common.StackingConfig().mode(common_models.StackingMode.NORMAL).group("A")
        )
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    if exemplars:
        panel = panel.override_by_name(
            TRACE_ID_FIELD, [models.DynamicConfigValue(id_val="links", value=[TRACE_LINK])]
        )
    return _decorate(panel, title, description, unit, levels, runbooks)


def stat_panel(
    title: str,
    description: str,
    unit: str,
    query: Query,
    *,
    levels: Levels,
    runbooks: Sequence[str] = (),
) -> stat.Panel:
    """A single big number (last value) coloured by its thresholds, with a sparkline."""
    panel = (
        stat.Panel()
        .targets(prometheus_targets([query]))
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(common_models.BigValueColorMode.VALUE)
        .graph_mode(common_models.BigValueGraphMode.AREA)
        .text_mode(common_models.BigValueTextMode.VALUE)
    )
    return _decorate(panel, title, description, unit, levels, runbooks)


def top_list(
    title: str,
    description: str,
    unit: str,
    query: Query,
    *,
    levels: Levels,
    runbooks: Sequence[str] = (),
) -> bargauge.Panel:
    """Horizontal bars of an instant query over the time range (e.g. a top-10 list)."""
    panel = (
        bargauge.Panel()
        .targets(prometheus_targets([query], instant=True))
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .display_mode(common_models.BarGaugeDisplayMode.GRADIENT)
        .min(0)
    )
    return _decorate(panel, title, description, unit, levels, runbooks)


@dataclass(frozen=True, slots=True)
class Column:
    """One value column of a comparison table: its query, header, unit and colours."""

    header: str
    expr: str
    unit: str
    levels: Levels = NEUTRAL


def comparison_table(
    title: str,
    description: str,
    columns: Sequence[Column],
    labels: dict[str, str],
    *,
    levels: Levels,
    runbooks: Sequence[str] = (),
) -> table.Panel:
    """One row per label set: instant queries merged on their labels, one column each.

    `labels` maps each grouping label to its column header, in display order.
    """
    queries = [Query(column.expr) for column in columns]
    value_names = {f"Value #{chr(ord('A') + index)}": c.header for index, c in enumerate(columns)}
    order = [*labels, *value_names]
    organize = models.DataTransformerConfig(
        id_val="organize",
        options={
            "excludeByName": {"Time": True},
            "indexByName": {name: index for index, name in enumerate(order)},
            "renameByName": {**labels, **value_names},
        },
    )
    panel = (
        table.Panel()
        .targets(prometheus_targets(queries, instant=True, table_format=True))
        .transformations([models.DataTransformerConfig(id_val="merge", options={}), organize])
        .sort_by([common.TableSortByFieldState().display_name(columns[0].header).desc(True)])
        .cell_height(common_models.TableCellHeight.SM)
    )
    for column in columns:
        properties = [
            models.DynamicConfigValue(id_val="unit", value=column.unit),
            models.DynamicConfigValue(id_val="thresholds", value=column.levels.build().build()),
        ]
        if column.levels.steps:
            properties.append(
                models.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"})
            )
        panel = panel.override_by_name(column.header, properties)
    return _decorate(panel, title, description, "short", levels, runbooks)
