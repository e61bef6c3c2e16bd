"""The benchmark's smoke run (`python -m bench --smoke`): it completes and produces the table.

Benchmark figures are not asserted here (CI machines are noisy); the full runs live in
bench/README.md. This proves every contender ran every load without a failed call, that
the full-telemetry sidecar was really scraped and really exported spans, and that the
report has its tables and a verdict for every target.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTENDERS = ("direct", "sidecar-full", "sidecar-off", "passthrough")


@pytest.mark.slow
def test_smoke_run_completes_with_a_table_for_every_contender(tmp_path: Path) -> None:
    results = tmp_path / "bench.json"
    run = subprocess.run(
        # The scenarios of issue #23 have their own smoke test (test_pod_smoke.py).
        [sys.executable, "-m", "bench", "--smoke", "--scenarios", "calls", "--json", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    table_rows = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    for name in CONTENDERS:
        rows = [row for row in table_rows if row.startswith(f"| {name} |")]
        assert len(rows) == 3, f"{name}: expected a row in each of the 3 tables:\n{run.stdout}"

    data = json.loads(results.read_text())
    summaries = {s["contender"]: s for s in data["summaries"]}
    assert sorted(summaries) == sorted(CONTENDERS)
    for name, summary in summaries.items():
        assert summary["errors"] == 0, f"{name} had failed calls:\n{run.stdout}"
        assert summary["calls_per_second"] > 0, name
        for rate in ("100", "300"):
            assert summary["latency"][rate]["p50"] > 0, (name, rate)
        for concurrency in ("1", "16"):
            assert summary["streaming"][concurrency]["ttfc"] > 0, (name, concurrency)
        if name != "direct":
            assert summary["cpu_us_per_call"] > 0, name
            assert 0 < summary["peak_rss_mb"] < 1024, name
    # Full telemetry was really on: spans reached the OTLP receiver, /metrics was scraped.
    assert data["spans_received"] > 0
    assert data["successful_scrapes"] > 0
    targets = [v["target"] for v in data["verdicts"]]
    assert any("pass-through" in t for t in targets) and any("RSS" in t for t in targets)
    assert "PASS" in run.stdout or "FAIL" in run.stdout
