"""`model-sidecar slo-rules`: the rules generated from alerts/tests/objectives/config.yaml are
the committed ones, pass `promtool check rules`, and the promtool unit tests beside them (each
SLO alert firing at its burn rate and silent at 1x, the budget alert firing on a forecast
overrun and silent under budget) pass. A latency threshold between buckets is one plain line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alerts.generate import REPO_ROOT
from alerts.recording import ERROR_MATCHERS
from sidecar.config.load import load_config
from sidecar.objectives import slo_rules
from sidecar.objectives.command import groups_for, helm_values
from sidecar.objectives.rulefile import rule_file
from tests.helpers.promtool import run_promtool

FOLDER = REPO_ROOT / "alerts" / "tests" / "objectives"
CONFIG = FOLDER / "config.yaml"
RULES = FOLDER / "rules.yaml"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "slo-rules", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )


def test_committed_rules_are_what_the_config_generates() -> None:
    assert RULES.read_text() == rule_file(groups_for(load_config(CONFIG))), (
        "regenerate: model-sidecar slo-rules --config alerts/tests/objectives/config.yaml "
        "--out alerts/tests/objectives/rules.yaml"
    )


def test_the_cli_writes_the_same_rules(tmp_path: Path) -> None:
    out = tmp_path / "rules.yaml"
    result = _cli("--config", str(CONFIG), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text() == RULES.read_text()


def test_promtool_checks_the_generated_rules() -> None:
    result = run_promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(group["rules"]) for group in yaml.safe_load(RULES.read_text())["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_unit_tests_of_the_slo_and_budget_alerts_pass() -> None:
    tests = sorted(FOLDER.glob("*.yml"))
    assert [path.name for path in tests] == ["budgets.yml", "slo.yml"]
    result = run_promtool("test", "rules", *tests, cwd=FOLDER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


def test_the_unit_tests_notice_a_wrong_burn_factor(tmp_path: Path) -> None:
    # The same tests against rules whose page threshold is 20x: the 16 % fast burn no longer
    # pages, and the test says so.
    broken = RULES.read_text().replace("> 0.144\n", "> 0.2\n")
    assert broken != RULES.read_text()
    (tmp_path / "rules.yaml").write_text(broken)
    (tmp_path / "slo.yml").write_text((FOLDER / "slo.yml").read_text())
    result = run_promtool("test", "rules", tmp_path / "slo.yml", cwd=tmp_path)
    assert result.returncode == 1
    assert 'burn="fast"' in result.stdout + result.stderr


def test_error_matchers_are_the_shipped_alerts_ones() -> None:
    assert slo_rules.ERROR_MATCHERS == ERROR_MATCHERS


def test_a_threshold_between_buckets_is_one_plain_line(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "slos:\n  - {name: ttft, kind: latency, measure: ttft, threshold_seconds: 1.5, "
        "objective: 0.99}\n"
    )
    result = _cli("--config", str(config))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "model-sidecar slo-rules: slos[0] 'ttft': threshold_seconds 1.5 is not a bucket "
        "boundary of the time to first chunk histogram; the nearest are 1.28 s and 2.56 s "
        "(choose one of them)"
    ]


@pytest.mark.parametrize(("threshold", "le"), [(0.01, "0.01"), (1.28, "1.28"), (600, "600.0")])
def test_thresholds_on_a_boundary_read_that_bucket(threshold: float, le: str) -> None:
    config = load_config(CONFIG).model_copy()
    slo = config.slos[1].model_copy(update={"threshold_seconds": threshold})
    assert slo_rules.check_threshold(slo, 1) == le


def test_helm_values_carry_the_same_groups() -> None:
    values = yaml.safe_load(helm_values(load_config(CONFIG)))
    groups = values["monitoring"]["prometheusRule"]["extraGroups"]
    assert groups == yaml.safe_load(RULES.read_text())["groups"]
