"""What a running sidecar takes from a reloaded config (SIGHUP or a changed file), and what not."""

from __future__ import annotations

# Sections a reload cannot change in a running process: a change is logged and ignored.
RESTART_SECTIONS = (
    "listen",
    "admin_listen",
    "telemetry",
    "log",
    "cost",
    "confidence",
    "repeatability",
)

# How often the config file is checked for a change (Kubernetes swaps a ConfigMap's symlink).
RELOAD_INTERVAL_SECONDS = 5.0
