"""Links from alert-related panels to the alert runbooks in alerts/runbooks.md."""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as models

# Where the runbooks are published; a fork changes this one constant and regenerates.
RUNBOOKS_URL = "https://github.com/model-sidecar/model-sidecar/blob/main/alerts/runbooks.md"

# The alerts in alerts/ (one `## <AlertName>` section each in alerts/runbooks.md).
ALERTS = frozenset(
    {
        "ModelTailLatencyHigh",
        "ModelTimeToFirstTokenHigh",
        "ModelErrorBudgetBurn",
        "ModelSpendBurnHigh",
        "ModelDailyBudgetAtRisk",
        "ModelRetryStorm",
        "ModelLowConfidenceHigh",
        "ModelOutputNotRepeatable",
        "CandidateModelWorse",
        "ModelSidecarStopLossTripped",
        "ModelSidecarDown",
        "ModelSidecarTelemetryDropping",
        "ProviderQuotaExhaustionSoon",
        "RolloutRolledBack",
        "RolloutStuck",
        "ModelChangedSilently",
    }
)


def runbook_url(alert: str) -> str:
    """The runbook section of `alert` (GitHub's heading anchor: the name in lower case)."""
    if alert not in ALERTS:
        raise ValueError(f"no runbook for unknown alert {alert!r}")
    return f"{RUNBOOKS_URL}#{alert.lower()}"


def runbook_links(alerts: Sequence[str]) -> list[cogbuilder.Builder[models.DashboardLink]]:
    """Panel links, one per alert, opening its runbook in a new tab."""
    return [
        dashboard.DashboardLink(f"Runbook: {alert}")
        .url(runbook_url(alert))
        .tooltip(f"What to do when {alert} fires")
        .target_blank(True)
        for alert in alerts
    ]
