"""Template variables: the Prometheus datasource, then job → namespace → pod → provider → model.

`job` expands All to the exact jobs that export the sidecar's metrics, so `up{job=~"$job"}`
never includes other scrape jobs. The others use the All value `.*`, which also matches a
series that lacks the label: plain (non-Kubernetes) scrapes have no `namespace` or `pod`,
and a call whose model is unknown has an empty `gen_ai_request_model`.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import dashboard as models

from alerts import series
from dashboards.panels import DATASOURCE
from dashboards.promql import (
    CALL_MATCHERS,
    JOB_MATCHER,
    NAMESPACE_MATCHER,
    PROVIDER_MATCHER,
    SIDECAR_MATCHERS,
)

MATCH_ANY = ".*"
# Exported by every sidecar from its first scrape, before any call.
SIDECAR_PRESENCE_METRIC = series.TELEMETRY_DROPPED
CALLS_METRIC = series.REQUESTS

ALL = models.VariableOption(selected=True, text="All", value="$__all")


def datasource_variable() -> dashboard.DatasourceVariable:
    """The Prometheus datasource every query uses."""
    return (
        dashboard.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .description("Prometheus that scrapes the sidecars' admin /metrics endpoint.")
    )


def trace_datasource_variable() -> dashboard.DatasourceVariable:
    """Where the latency panels' exemplars open their trace (the sidecar's spans)."""
    return (
        dashboard.DatasourceVariable("trace_datasource")
        .label("Traces")
        .type("tempo")
        .description(
            "Tracing datasource (Tempo) holding the sidecar's spans: a latency panel's "
            "exemplar opens the trace of that call."
        )
    )


def label_variable(
    name: str,
    label: str,
    description: str,
    metric: str,
    label_name: str,
    matchers: Sequence[str] = (),
    *,
    all_value: str | None = MATCH_ANY,
) -> dashboard.QueryVariable:
    """A multi-value variable of `label_values(metric{matchers}, label_name)`, All selected."""
    selector = f"{metric}{{{', '.join(matchers)}}}" if matchers else metric
    variable = (
        dashboard.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(DATASOURCE)
        .query(f"label_values({selector}, {label_name})")
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .current(ALL)
    )
    if all_value is not None:
        variable = variable.all_value(all_value)
    return variable


def sidecar_variables() -> list[dashboard.DatasourceVariable | dashboard.QueryVariable]:
    """Datasource, job, namespace and pod: enough to pick sidecars."""
    return [
        datasource_variable(),
        label_variable(
            "job",
            "Job",
            "Scrape jobs that export model-sidecar metrics.",
            SIDECAR_PRESENCE_METRIC,
            "job",
            all_value=None,
        ),
        label_variable(
            "namespace",
            "Namespace",
            "Kubernetes namespace (empty on plain scrapes: All matches those too).",
            SIDECAR_PRESENCE_METRIC,
            "namespace",
            (JOB_MATCHER,),
        ),
        label_variable(
            "pod",
            "Pod",
            "Kubernetes pod (empty on plain scrapes: All matches those too).",
            SIDECAR_PRESENCE_METRIC,
            "pod",
            (JOB_MATCHER, NAMESPACE_MATCHER),
        ),
    ]


def call_variables() -> list[dashboard.DatasourceVariable | dashboard.QueryVariable]:
    """The sidecar variables plus provider and model, and where exemplars' traces are."""
    return [
        *sidecar_variables(),
        label_variable(
            "provider",
            "Provider",
            "gen_ai.provider.name: openai, anthropic, gcp.gemini, azure.ai.openai, "
            "gcp.vertex_ai, ollama, or an upstream's configured provider (every value seen).",
            CALLS_METRIC,
            "gen_ai_provider_name",
            SIDECAR_MATCHERS,
        ),
        label_variable(
            "model",
            "Model",
            "The model the app asked for (gen_ai.request.model).",
            CALLS_METRIC,
            "gen_ai_request_model",
            (*SIDECAR_MATCHERS, PROVIDER_MATCHER),
        ),
        trace_datasource_variable(),
    ]


def experiment_variable() -> dashboard.QueryVariable:
    """The experiment (empty label until experiments are configured: All matches that)."""
    return label_variable(
        "experiment",
        "Experiment",
        "Experiment the calls took part in; calls outside any experiment have none.",
        CALLS_METRIC,
        "experiment",
        CALL_MATCHERS,
    )
