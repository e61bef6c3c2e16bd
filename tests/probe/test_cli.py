"""`model-sidecar probe` end to end in a subprocess, and its usage errors."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from sidecar.probe.output import COLUMNS
from tests.helpers.simulator import RunningSimulator

KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")


async def model_sidecar(*args: str) -> tuple[int, str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def table_rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if len(cells) == len(COLUMNS) and cells[0].isdigit():
            rows[cells[1]] = cells
    return rows


@pytest.mark.slow
async def test_probe_command_compares_two_models_through_the_simulated_provider(
    simulator: RunningSimulator, prompts_file: Path
) -> None:
    status, out, err = await model_sidecar(
        "probe",
        "--model", "openai:gpt-4o-mini",
        "--model", "anthropic:claude-3-5-haiku-latest",
        "--upstream", f"openai={simulator.url}",
        "--upstream", f"anthropic={simulator.url}",
        "--prompts", str(prompts_file),
        "--requests", "8",
        "--concurrency", "2",
        "--stream",
        "--repeat", "2",
        "--budget-usd", "0.5",
    )  # fmt: skip
    assert status == 0, err
    rows = table_rows(out)
    assert set(rows) == {"openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"}
    for cells in rows.values():
        assert cells[COLUMNS.index("calls")] == str(8 + 2 * 4)
        assert cells[COLUMNS.index("repeat same %")] == "100.0%"
        assert cells[COLUMNS.index("p95 TTFT ms")] != "-"
    assert "budget $0.5000" in out and "(not reached)" in out
    assert "Traceback" not in err


async def test_usage_errors_exit_2_with_an_explanation(tmp_path: Path) -> None:
    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"messages": "not a list"}\nnot json\n')
    status, _, err = await model_sidecar(
        "probe", "--model", "openai:gpt-4o-mini", "--prompts", str(bad), "--no-progress"
    )
    assert status == 2
    assert "line 3: not valid JSON" in err

    status, _, err = await model_sidecar("probe", "--model", "openai:x", "--requests", "-1")
    assert status == 2 and "must be at least 0" in err

    status, _, err = await model_sidecar(
        "probe", "--model", "openai:x", "--sidecar", "http://127.0.0.1:1"
    )
    assert status == 2 and "--sidecar-admin" in err
