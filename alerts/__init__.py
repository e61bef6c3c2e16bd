"""Prometheus alert and recording rules for model-sidecar, generated from code.

`python -m alerts` writes alerts/rules.yaml, alerts/runbooks.md, alerts/README.md and the Helm
chart's template; `python -m alerts --check` fails when a committed file differs.
"""

from alerts.generate import generated_files, helm_template, rule_file, rule_groups, stale_files
from alerts.recording import Timing
from alerts.settings import SETTINGS, Setting, helm_values, helm_values_schema

__all__ = [
    "SETTINGS",
    "Setting",
    "Timing",
    "generated_files",
    "helm_template",
    "helm_values",
    "helm_values_schema",
    "rule_file",
    "rule_groups",
    "stale_files",
]
