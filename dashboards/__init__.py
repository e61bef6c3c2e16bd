"""Grafana dashboards for model-sidecar, generated with grafana-foundation-sdk.

`python -m dashboards` writes the JSON files; `python -m dashboards --check` fails when the
committed files differ from what this package generates.
"""
