"""Dashboard assembly: rows of panels placed on Grafana's 24-column grid, ids assigned in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as models

GRID_WIDTH = 24
TAG = "model-sidecar"


@dataclass(frozen=True, slots=True)
class Cell:
    """A panel and the grid cells it takes."""

    panel: Any  # a panel builder (timeseries, stat, table, bargauge)
    width: int
    height: int = 8


@dataclass(frozen=True, slots=True)
class Row:
    """A titled row of cells, wrapped onto new lines when they exceed the grid width."""

    title: str
    cells: Sequence[Cell]


@dataclass(frozen=True, slots=True)
class DashboardSpec:
    """Everything that makes one dashboard."""

    uid: str
    title: str
    description: str
    variables: Sequence[cogbuilder.Builder[models.VariableModel]]
    rows: Sequence[Row]
    # Events drawn on every time series panel (rollout transitions, model changes).
    annotations: Sequence[cogbuilder.Builder[models.AnnotationQuery]] = ()


def _other_dashboards() -> dashboard.DashboardLink:
    """A dropdown of the other model-sidecar dashboards, keeping time range and variables."""
    return (
        dashboard.DashboardLink("model-sidecar")
        .type(models.DashboardLinkType.DASHBOARDS)
        .tags([TAG])
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(True)
    )


def build(spec: DashboardSpec) -> models.Dashboard:
    """The dashboard model: rows and panels placed top to bottom, ids 1, 2, 3…"""
    builder = (
        dashboard.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags([TAG, "llm", "genai"])
        .editable()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .timezone("browser")
        .time("now-3h", "now")
        .refresh("1m")
        .link(_other_dashboards())
        .variables(list(spec.variables))
    )
    for annotation in spec.annotations:
        builder = builder.annotation(annotation)
    next_id = 1
    y = 0
    for row in spec.rows:
        builder = builder.with_row(
            dashboard.Row(row.title)
            .id(next_id)
            .grid_pos(models.GridPos(h=1, w=GRID_WIDTH, x=0, y=y))
        )
        next_id += 1
        y += 1
        x = 0
        line_height = 0
        for cell in row.cells:
            if cell.width > GRID_WIDTH:
                raise ValueError(f"cell wider than the grid: {cell.width}")
            if x + cell.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            grid = models.GridPos(h=cell.height, w=cell.width, x=x, y=y)
            builder = builder.with_panel(cell.panel.id(next_id).grid_pos(grid))
            next_id += 1
            x += cell.width
            line_height = max(line_height, cell.height)
        y += line_height
    return builder.build()
