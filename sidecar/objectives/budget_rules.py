"""Budget rules: the spend rate of each attribution value, its forecast over the budget's
period at that rate, the budget itself as a series (for dashboards), and CostBudgetAtRisk
when the forecast overruns the budget."""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.config.objectives import BudgetConfig
from sidecar.objectives.rulefile import Alert, Group, Record, number
from sidecar.telemetry import conventions as c

_COST = c.ATTRIBUTION_COST.name.removesuffix("_total")
# Record names: level `attribution`, then the counter they read.
SPEND_RATE = f"attribution:{_COST}:rate1h"
FORECAST = f"attribution:{_COST}:forecast"
BUDGET = f"attribution:{_COST}:budget"
PERIOD_SECONDS = {"day": 86_400, "month": 30 * 86_400}
RUNBOOK_PAGE = "attribution.md"


def _period(budget: BudgetConfig) -> tuple[str, float]:
    if budget.usd_per_day is not None:
        return "day", budget.usd_per_day
    assert budget.usd_per_month is not None
    return "month", budget.usd_per_month


def budget_group(budgets: Mapping[str, BudgetConfig]) -> Group:
    """The spend rate by attribution value, and per budget its forecast, series and alert."""
    if not budgets:
        return Group("model-sidecar.budgets", ())
    rules: list[Record | Alert] = [
        Record(
            SPEND_RATE,
            f"sum by (attribution) (rate({c.ATTRIBUTION_COST.name}[1h]))",
        )
    ]
    for value, budget in budgets.items():
        period, usd = _period(budget)
        selector = f'{{attribution="{value}"}}'
        labels = {"attribution": value, "period": period}
        rules.append(Record(BUDGET, f"vector({number(usd)})", labels))
        rules.append(
            Record(
                FORECAST,
                f"{SPEND_RATE}{selector} * {PERIOD_SECONDS[period]}",
                {"period": period},
            )
        )
        rules.append(
            Alert(
                alert="CostBudgetAtRisk",
                expr=f'{FORECAST}{{attribution="{value}", period="{period}"}} > {number(usd)}',
                for_="15m",
                labels={"severity": "warning", "attribution": value, "period": period},
                summary=f"Spend of {value} is on course to exceed its budget per {period}",
                description=(
                    f"At the spend rate of the last hour, {value} will spend "
                    f"{{{{ $value | humanize }}}} USD per {period}, above its budget of "
                    f"{number(usd)} USD."
                ),
                runbook_page=RUNBOOK_PAGE,
            )
        )
    return Group("model-sidecar.budgets", tuple(rules))
