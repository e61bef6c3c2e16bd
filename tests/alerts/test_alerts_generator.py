"""`python -m alerts`: the committed files are what the code generates, --check catches a
stale file, --set/--out writes a rule file with your thresholds, bad settings are refused."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alerts import SETTINGS, generated_files, rule_file, rule_groups
from alerts.generate import REPO_ROOT
from alerts.model import AlertRule
from alerts.runbooks import RUNBOOKS
from alerts.settings import go_number, parse_assignments
from tests.helpers.promtool import run_promtool


def run_alerts(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alerts", *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rule_shape(text: str) -> list[tuple[str, str, object]]:
    groups = yaml.safe_load(text)["groups"]
    return [
        (group["name"], rule.get("alert") or rule["record"], rule.get("labels"))
        for group in groups
        for rule in group["rules"]
    ]


def copy_generated(root: Path) -> None:
    for path in generated_files():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / path, root / path)


def test_committed_files_are_up_to_date() -> None:
    result = run_alerts("--check")
    assert result.returncode == 0, result.stderr
    for path, content in generated_files().items():
        assert (REPO_ROOT / path).read_text() == content, path


def test_check_fails_on_a_stale_file_and_regenerating_fixes_it(tmp_path: Path) -> None:
    copy_generated(tmp_path)
    assert run_alerts("--check", "--root", tmp_path).returncode == 0
    stale = tmp_path / "alerts" / "rules.yaml"
    stale.write_text(stale.read_text().replace("for: 10m", "for: 20m", 1))
    (tmp_path / "alerts" / "runbooks.md").unlink()
    result = run_alerts("--check", "--root", tmp_path)
    assert result.returncode == 1
    assert "alerts/rules.yaml" in result.stderr and "alerts/runbooks.md" in result.stderr
    assert "README" not in result.stderr
    rewritten = run_alerts("--root", tmp_path)
    assert rewritten.returncode == 0
    assert "alerts/rules.yaml" in rewritten.stdout
    assert run_alerts("--check", "--root", tmp_path).returncode == 0


def test_set_writes_a_valid_rule_file_with_the_new_thresholds(tmp_path: Path) -> None:
    out = tmp_path / "my-rules.yaml"
    result = run_alerts(
        "--set", "latency_p95_seconds=5",
        "--set", "availability_slo=0.999",
        "--set", "sidecar_job_regex=llm/.*",
        "--set", "runbook_url=https://wiki.example.com/llm/runbooks",
        "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    default = rule_file()
    assert text != default
    assert "p95_rate5m > 5\n" in text and "p95_rate5m > 30\n" not in text
    assert "(14.4 * (1 - 0.999))" in text and "0.995" not in text
    assert 'up{job=~"llm/.*"} == 0' in text
    assert "https://wiki.example.com/llm/runbooks#modeltaillatencyhigh" in text
    # Only the set values changed: the same rules, in the same order, with the same labels.
    assert rule_shape(text) == rule_shape(default)
    checked = run_promtool("check", "rules", out)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_out_dash_prints_the_rule_file() -> None:
    result = run_alerts("--set", "retry_ratio=0.3", "--out", "-")
    assert result.returncode == 0
    assert result.stdout == rule_file({"retry_ratio": 0.3})
    assert "model:model_sidecar_retries:ratio_rate5m > 0.3\n" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "latency_p95=5", "--out", "-"], "unknown setting 'latency_p95'"),
        (["--set", "availability_slo=1.5", "--out", "-"], "between 0 and 1"),
        (["--set", "spend_per_hour_usd=-1", "--out", "-"], "finite number >= 0"),
        (["--set", "retry_ratio=lots", "--out", "-"], "expected a number"),
        (["--set", "runbook_url=not a url", "--out", "-"], "http(s) URL"),
        (["--set", "retry_ratio"], "expected name=value"),
        (["--set", "retry_ratio=0.3"], "add --out FILE"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(args: list[str], message: str) -> None:
    result = run_alerts(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_helm_values_print_every_setting_with_its_default() -> None:
    result = run_alerts("--helm-values")
    assert result.returncode == 0
    values = yaml.safe_load(result.stdout)["alerts"]
    assert values["thresholds"]["latencyP95Seconds"] == 30
    assert values["thresholds"]["availabilitySlo"] == 0.995
    assert values["sidecarJobRegex"] == ".*model-sidecar.*"
    flat = {**values["thresholds"], **{k: v for k, v in values.items() if k != "thresholds"}}
    assert len(flat) == len(SETTINGS)


def test_parse_assignments_and_go_numbers() -> None:
    assert parse_assignments(["latency_p95_seconds = 2.5", "min_request_rate=0"]) == {
        "latency_p95_seconds": 2.5,
        "min_request_rate": 0.0,
    }
    assert [go_number(x) for x in (30, 30.0, 0.995, 1e-5, 1e6, 123456, 0.1)] == [
        "30", "30", "0.995", "1e-05", "1e+06", "123456", "0.1",
    ]  # fmt: skip


def test_runbooks_cover_every_alert_with_three_checks() -> None:
    alerts = {
        rule.alert for group in rule_groups() for rule in group.rules if isinstance(rule, AlertRule)
    }
    assert {runbook.alert for runbook in RUNBOOKS} == alerts
    markdown = (REPO_ROOT / "alerts" / "runbooks.md").read_text()
    for runbook in RUNBOOKS:
        section = markdown.split(f"\n## {runbook.alert}\n", 1)[1].split("\n## ", 1)[0]
        assert "**What it means.**" in section and "**How to stop the loss.**" in section
        assert all(f"\n{n}. " in section for n in (1, 2, 3)), runbook.alert


def test_readme_lists_every_alert_and_setting_with_its_default() -> None:
    readme = (REPO_ROOT / "alerts" / "README.md").read_text()
    for runbook in RUNBOOKS:
        assert f"| [{runbook.alert}](runbooks.md#{runbook.anchor}) |" in readme
    for setting in SETTINGS:
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{setting.name}` |"))
        assert f"`alerts.{setting.helm_key}`" in row
        if setting.kind != "url":
            assert f"`{setting.format(setting.default)}`" in row
    assert "python -m alerts --set latency_p95_seconds=5" in readme
