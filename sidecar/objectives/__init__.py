"""Prometheus rules from the config's objectives: SLO recording rules, multi-window
multi-burn-rate alerts and error-budget series (`slo_rules.py`), spend forecasts and budget
alerts per attribution value (`budget_rules.py`), written as one rule file (`rulefile.py`) by
`model-sidecar slo-rules` and placed in the chart's PrometheusRule."""
