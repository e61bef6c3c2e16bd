"""model-sidecar health: the sidecar's own overhead, load, telemetry losses, process and scrapes."""

from __future__ import annotations

from alerts import series
from dashboards import thresholds
from dashboards.layout import Cell, DashboardSpec, Row
from dashboards.panels import (
    GREEN,
    NEUTRAL,
    RED,
    Levels,
    Query,
    high_is_bad,
    stat_panel,
    timeseries,
)
from dashboards.promql import SIDECAR_MATCHERS, Scope, per
from dashboards.variables import sidecar_variables

UID = "model-sidecar-health"

SIDECARS = Scope(SIDECAR_MATCHERS)
PER_SIDECAR = ("instance", "pod")
SIDECAR_LEGEND = "{{instance}} {{pod}}"
OVERHEAD = series.OVERHEAD

DOWN_LEVELS = Levels(GREEN, ((1, RED),))
UP_LEVELS = Levels(RED, ((1, GREEN),))
MIB = 1024 * 1024


def _per_sidecar(metric: str, *matchers: str, by: tuple[str, ...] = PER_SIDECAR) -> str:
    return SIDECARS.sum_rate(metric, *matchers, by=by)


def _gauge(aggregation: str, metric: str, by: tuple[str, ...] = PER_SIDECAR) -> str:
    return f"{aggregation} by ({', '.join(by)}) ({SIDECARS.selector(metric)})"


def _summary() -> Row:
    return Row(
        "Sidecars",
        [
            Cell(
                stat_panel(
                    "Sidecars down",
                    "Scrape targets of the selected jobs whose last scrape failed (up == 0).",
                    "short",
                    Query(f"count({SIDECARS.selector('up')} == 0) or vector(0)"),
                    levels=DOWN_LEVELS,
                    runbooks=("ModelSidecarDown",),
                ),
                6,
                4,
            ),
            Cell(
                stat_panel(
                    "Sidecars up",
                    "Scrape targets of the selected jobs that answered their last scrape.",
                    "short",
                    Query(f"sum({SIDECARS.selector('up')})"),
                    levels=NEUTRAL,
                ),
                6,
                4,
            ),
            Cell(
                stat_panel(
                    "Overhead p99",
                    "99th percentile of the time spent in the sidecar itself per call, all "
                    "selected sidecars (not waiting on the provider or the app).",
                    "s",
                    Query(SIDECARS.quantile(0.99, OVERHEAD)),
                    levels=thresholds.OVERHEAD,
                ),
                6,
                4,
            ),
            Cell(
                stat_panel(
                    "Telemetry dropped",
                    "Telemetry items per second dropped because a queue was full; should be 0.",
                    "cps",
                    Query(SIDECARS.sum_rate(series.TELEMETRY_DROPPED)),
                    levels=thresholds.ANY_LOSS,
                    runbooks=("ModelSidecarTelemetryDropping",),
                ),
                6,
                4,
            ),
        ],
    )


def _overhead_and_load() -> Row:
    overhead = [
        Query(SIDECARS.quantile(q, OVERHEAD, by=PER_SIDECAR), f"p{round(q * 100)} {SIDECAR_LEGEND}")
        for q in (0.5, 0.99)
    ]
    return Row(
        "Overhead and load",
        [
            Cell(
                timeseries(
                    "Sidecar overhead p50 / p99",
                    "Time spent in the sidecar itself per call: the call's duration minus "
                    "time waiting on the upstream and on the app. Dashed lines: 1 ms, 5 ms.",
                    "s",
                    overhead,
                    levels=thresholds.OVERHEAD,
                ),
                12,
            ),
            Cell(
                timeseries(
                    "Calls per second per sidecar",
                    "Calls each sidecar finished, all outcomes.",
                    "reqps",
                    [Query(_per_sidecar(series.REQUESTS), SIDECAR_LEGEND)],
                    levels=NEUTRAL,
                ),
                12,
            ),
            Cell(
                timeseries(
                    "Calls in flight per sidecar",
                    "Calls received and not yet finished.",
                    "short",
                    [Query(_gauge("sum", series.IN_FLIGHT), SIDECAR_LEGEND)],
                    levels=NEUTRAL,
                ),
                12,
            ),
            Cell(
                timeseries(
                    "Sidecar retries by reason",
                    "The sidecar's own retry attempts (when its retry policy is on) per "
                    "upstream and reason: the upstream status or connection_error.",
                    "reqps",
                    [
                        Query(
                            _per_sidecar(
                                series.RETRIES,
                                'source="sidecar"',
                                by=("upstream", "reason"),
                            ),
                            "{{upstream}} {{reason}}",
                        )
                    ],
                    levels=NEUTRAL,
                    runbooks=("ModelRetryStorm",),
                ),
                12,
            ),
        ],
    )


def _telemetry() -> Row:
    return Row(
        "Telemetry",
        [
            Cell(
                timeseries(
                    "Dropped telemetry by sink",
                    "Items dropped because a queue was full: sink=pipeline counts finished "
                    "calls no sink saw; other sinks count their own items (e.g. spans).",
                    "cps",
                    [
                        Query(
                            _per_sidecar(series.TELEMETRY_DROPPED, by=(*PER_SIDECAR, "sink")),
                            "{{sink}} " + SIDECAR_LEGEND,
                        )
                    ],
                    levels=thresholds.ANY_LOSS,
                    runbooks=("ModelSidecarTelemetryDropping",),
                ),
                12,
            ),
            Cell(
                timeseries(
                    "Model label overflow",
                    "Calls whose model label became `other` because telemetry."
                    "max_model_labels distinct values were already in use: raise the cap or "
                    "find the app sending ever-new model names.",
                    "cps",
                    [
                        Query(
                            _per_sidecar(series.LABEL_OVERFLOW, by=(*PER_SIDECAR, "label")),
                            "{{label}} " + SIDECAR_LEGEND,
                        )
                    ],
                    levels=thresholds.ANY_LOSS,
                ),
                12,
            ),
        ],
    )


def _process() -> Row:
    return Row(
        "Process",
        [
            Cell(
                timeseries(
                    "CPU",
                    "CPU time used by each sidecar process (1 = 100 % of one core).",
                    "percentunit",
                    [Query(_per_sidecar("process_cpu_seconds_total"), SIDECAR_LEGEND)],
                    levels=high_is_bad(0.5, 0.9),
                ),
                8,
            ),
            Cell(
                timeseries(
                    "Resident memory",
                    "Resident set size of each sidecar process. Dashed lines: 256 MiB, 512 MiB.",
                    "bytes",
                    [Query(_gauge("sum", "process_resident_memory_bytes"), SIDECAR_LEGEND)],
                    levels=high_is_bad(256 * MIB, 512 * MIB),
                ),
                8,
            ),
            Cell(
                timeseries(
                    "Open file descriptors",
                    "Open file descriptors as a share of the process limit (each upstream "
                    "connection and client connection holds one).",
                    "percentunit",
                    [
                        Query(
                            per(
                                _gauge("sum", "process_open_fds"),
                                _gauge("sum", "process_max_fds"),
                            ),
                            SIDECAR_LEGEND,
                        )
                    ],
                    levels=high_is_bad(0.5, 0.8),
                    max_value=1,
                ),
                8,
            ),
        ],
    )


def _scrapes() -> Row:
    return Row(
        "Scrape health",
        [
            Cell(
                timeseries(
                    "Scrape up",
                    "1 when Prometheus scraped the sidecar's /metrics, 0 when the scrape failed.",
                    "short",
                    [Query(_gauge("max", "up"), SIDECAR_LEGEND)],
                    levels=UP_LEVELS,
                    runbooks=("ModelSidecarDown",),
                    max_value=1,
                ),
                8,
            ),
            Cell(
                timeseries(
                    "Scrape duration",
                    "How long Prometheus took to scrape each sidecar's /metrics.",
                    "s",
                    [Query(_gauge("max", "scrape_duration_seconds"), SIDECAR_LEGEND)],
                    levels=high_is_bad(0.5, 2),
                ),
                8,
            ),
            Cell(
                timeseries(
                    "Samples per scrape",
                    "Series each sidecar exports; growth means new label values (models, "
                    "upstreams, statuses). Model labels are capped by telemetry.max_model_labels.",
                    "short",
                    [Query(_gauge("max", "scrape_samples_scraped"), SIDECAR_LEGEND)],
                    levels=high_is_bad(5000, 20000),
                ),
                8,
            ),
        ],
    )


def spec() -> DashboardSpec:
    """The sidecar health dashboard."""
    return DashboardSpec(
        uid=UID,
        title="model-sidecar health",
        description="The sidecar's own cost and health: overhead per call, load, dropped "
        "telemetry, label overflow, process CPU and memory, scrape health.",
        variables=sidecar_variables(),
        rows=[_summary(), _overhead_and_load(), _telemetry(), _process(), _scrapes()],
    )
