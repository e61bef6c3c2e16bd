"""`model-sidecar demo`: no network, plausible numbers, nothing left behind."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from sidecar.tools.report import COLUMNS


def table(out: str) -> dict[str, dict[str, str]]:
    """The summary table's rows, by model, from the demo's output (with the variant)."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == len(COLUMNS) + 2 and re.fullmatch(r"[\d,]+", cells[2]):
            rows[cells[0]] = {"variant": cells[1], **dict(zip(COLUMNS, cells[2:], strict=True))}
    return rows


def number(cell: str) -> float:
    return float(cell.rstrip("%").replace(",", ""))


def port_is_free(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError:
            return False
    return True


def listened(out: str) -> list[str]:
    return re.findall(r"http://(127\.0\.0\.1:\d+)", out)


@pytest.mark.slow
def test_demo_prints_plausible_numbers_per_model_and_leaves_nothing_behind() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sidecar.cli",
            "demo",
            "--duration",
            "8",
            "--rps",
            "40",
            "--no-live",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    assert set(rows) >= {"gemini-2.0-flash", "gpt-4o-mini", "claude-sonnet-4", "gpt-4.1-nano"}
    # An Azure deployment, a Vertex AI model and an Ollama model take part too.
    assert set(rows) >= {"prod-gpt4o", "gemini-2.5-flash", "llama3.2"}
    assert all(number(row["calls"]) > 0 for row in rows.values())
    flash, sonnet, flaky = rows["gemini-2.0-flash"], rows["claude-sonnet-4"], rows["gpt-4.1-nano"]
    assert number(flash["p50 ms"]) < number(sonnet["p50 ms"])
    assert number(flaky["error %"]) > 0
    assert number(flash["error %"]) == 0
    assert number(sonnet["$ per 10k"]) > 10 * number(flash["$ per 10k"]) > 0
    # Azure prices the deployment by the model its answers name; a local model costs nothing.
    assert number(rows["prod-gpt4o"]["$ per 10k"]) > 0
    assert number(rows["llama3.2"]["error %"]) == 0
    # The split experiment: the flaky candidate is rolled back by the stop-loss.
    assert flaky["variant"] == "candidate" and rows["gpt-4o-mini"]["variant"] == "control"
    assert "experiment mini-vs-nano (split): weights now control 100%" in result.stdout
    assert "stop-loss tripped: candidate rolled back (errors:" in result.stdout
    assert "/metrics was served at http://127.0.0.1:" in result.stdout
    assert all(port_is_free(address) for address in listened(result.stdout))


@pytest.mark.slow
def test_sigterm_mid_run_exits_zero_and_frees_its_ports() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sidecar.cli", "demo", "--duration", "60", "--no-live"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    first = ""
    while "metrics are at" not in first and time.monotonic() < deadline:
        first += process.stdout.readline()
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert table(first + rest), "the summary is printed even when stopped early"
    assert all(port_is_free(address) for address in listened(first + rest))


@pytest.mark.slow
def test_demo_prints_the_page_first_and_keep_running_keeps_it_up() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sidecar.cli", "demo", "--duration", "3", "--rps", "20",
         "--keep-running", "--no-live"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        first = process.stdout.readline()
        page = re.search(r"Open (http://127\.0\.0\.1:\d+/) in a browser", first)
        assert page, f"the page's URL is not the first line: {first!r}"
        out = first
        deadline = time.monotonic() + 60
        while "Traffic done" not in out and time.monotonic() < deadline:
            out += process.stdout.readline()
        assert "Traffic done; still serving " + page.group(1) in out
        time.sleep(1.0)  # after the traffic: the page is still served, with what it measured
        with urllib.request.urlopen(page.group(1), timeout=10) as response:
            assert response.status == 200 and b"live model comparison" in response.read()
        url = page.group(1) + "api/summary?window=start"
        with urllib.request.urlopen(url, timeout=10) as response:
            summary = json.loads(response.read())
        assert sum(row["calls"] for row in summary["rows"]) > 10
        assert "mini-vs-nano" in summary["experiments"]
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert f"The page was served at {page.group(1)}" in rest
