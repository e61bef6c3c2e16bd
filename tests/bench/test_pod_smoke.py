"""The scenarios of issue #23 at tiny size: start-up, footprint, held streams.

`python -m bench --smoke --scenarios startup,footprint,streams` drives real processes (the
sidecar by its command line, the bare pass-through, bench/upstream.py, the OTLP receiver,
the stream generators). Figures are not asserted (CI machines are noisy): this proves that
every scenario ran without a failed call, measured what the report claims, and that the
report has its tables and a PASS/FAIL line for every target of the issue.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The report's typography (bench/report.py), spelled as escapes for the linter.
NONE, TIMES = "\u2013", "\u00d7"
COMMAND = [sys.executable, "-m", "bench", "--smoke", "--scenarios", "startup,footprint,streams"]
TARGETS = (
    "streamed chunk CPU",
    "non-streaming CPU/call",
    "idle RSS",
    "concurrent streams (sidecar-full): no errors",
    "concurrent streams (sidecar-full): no stall",
    "concurrent streams (sidecar-full): peak RSS",
    "concurrent streams (sidecar-full): added TTFC p99",
    "exec to ready ≤ 0.3 s (default config",
    "exec to ready ≤ 0.3 s (OTLP endpoint set",
)


def test_issue_23_scenarios_run_and_report_every_target(tmp_path: Path) -> None:
    results = tmp_path / "bench.json"
    run = subprocess.run(
        [*COMMAND, "--json", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "### Where a sidecar lives (issue #23)" in out
    # Only the chosen scenarios ran: no issue #6 tables.
    assert "calls/s @c64" not in out

    verdicts = [line for line in out.splitlines() if re.match(r"(PASS|FAIL) {2}", line)]
    for target in TARGETS:
        assert any(target in line for line in verdicts), f"no PASS/FAIL for {target!r}:\n{out}"

    data = json.loads(results.read_text())
    pod = data["pod"]
    startup = {s["variant"]: s["seconds"] for s in pod["startup"]}
    # Byte-compiled as installed; from source too where writing bytecode is forbidden.
    assert {"default config", "OTLP endpoint set"} <= set(startup)
    assert set(startup) - {"default config", "OTLP endpoint set"} <= {
        "default config, no bytecode",
        "OTLP endpoint set, no bytecode",
    }
    assert all(0 < t < 30 for times in startup.values() for t in times)

    footprints = {f["contender"]: f for f in pod["footprints"]}
    assert set(footprints) >= {"sidecar-default", "sidecar-full", "passthrough"}
    for name, item in footprints.items():
        assert 5 * 2**20 < item["idle_rss_bytes"] < 1024 * 2**20, name
        assert item["rss_after_load_bytes"] > 0 and item["peak_rss_bytes"] > 0, name
        assert item["closed"]["calls"] > 0 and item["closed"]["cpu_us_per_call"] > 0, name
        assert item["closed"]["errors"] == 0 and item["stream_errors"] == 0, name
    # Export was really on for sidecar-full, and off for the others.
    assert footprints["sidecar-full"]["closed"]["spans_received"] > 0
    assert footprints["sidecar-default"]["closed"]["spans_expected"] is None

    held = {h["contender"]: h for h in pod["held"]}
    assert set(held) >= {"direct", "sidecar-full", "passthrough"}
    plan = pod["plan"]
    level = plan["levels"][-1]
    streams = level * plan["shape"]["rounds"]
    for name, item in held.items():
        assert item["concurrency"] == level, name
        assert item["errors"] == {}, (name, item["errors"])
        assert item["streams"] == streams, name
        # Every stream delivered every chunk, each one timed.
        assert item["chunks"] == streams * plan["shape"]["chunks"], name
        assert len(item["ttfc_ms"]) + len(item["first_ttfc_ms"]) == streams, name
        assert item["generator_cpu_seconds"] > 0 and item["wall_seconds"] > 0, name
        if name != "direct":
            assert item["proxy_cpu_seconds"] > 0 and item["peak_rss_bytes"] > 0, name
    row = re.search(rf"^\| {level} \| sidecar-full \| (.+) \|$", out, re.MULTILINE)
    assert row is not None, out
    cells = [cell.strip() for cell in row.group(1).split("|")]
    assert cells[1] != NONE and float(cells[1].replace(",", "")) > 0  # µs per chunk
    assert cells[2].endswith(TIMES)  # the ratio to the pass-through
