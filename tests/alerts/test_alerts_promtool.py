"""The committed rules pass `promtool check rules`, and the promtool unit tests in
alerts/tests/ (each alert firing on a series that should trigger it, silent on one that
should not, the low-traffic and zero-denominator guards) pass."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from alerts.generate import REPO_ROOT, UNGUARDED_RULES_PATH
from tests.helpers.promtool import run_promtool
from tests.helpers.semconv import promtool_tests_in_mode

UNIT_TESTS = sorted((REPO_ROOT / "alerts" / "tests").glob("*.yml"))


def alert_names(path: Path) -> set[str]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_promtool_check_rules_passes(rules_path: Path) -> None:
    result = run_promtool("check", "rules", rules_path, REPO_ROOT / UNGUARDED_RULES_PATH)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    # Every rule of the file was checked (nothing silently skipped).
    groups = yaml.safe_load(rules_path.read_text())["groups"]
    count = sum(len(group["rules"]) for group in groups)
    assert f"SUCCESS: {count} rules found" in result.stdout


@pytest.mark.slow
def test_promtool_unit_tests_pass() -> None:
    assert UNIT_TESTS, "no promtool unit tests in alerts/tests"
    result = run_promtool("test", "rules", *UNIT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS), result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["latest", "dup"])
def test_promtool_unit_tests_pass_with_the_series_of_every_mode(mode: str, tmp_path: Path) -> None:
    """The same unit tests, their input series named as a sidecar in `mode` exports them
    (latest: the new names; dup: both names for every series): the same alerts, exactly."""
    renamed = 0
    paths = []
    for path in UNIT_TESTS:
        tests = yaml.safe_load(path.read_text())
        before = sum(len(test.get("input_series", [])) for test in tests["tests"])
        tests["rule_files"] = [str((path.parent / name).resolve()) for name in tests["rule_files"]]
        tests = promtool_tests_in_mode(tests, mode)
        after = yaml.safe_dump(tests)
        renamed += after.count("gen_ai_client_inference_")
        if mode == "dup":
            assert sum(len(t.get("input_series", [])) for t in tests["tests"]) >= before
        paths.append(tmp_path / path.name)
        paths[-1].write_text(after)
    assert renamed > 10  # the latency, experiment and zero-denominator tests read durations
    result = run_promtool("test", "rules", *paths, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS), result.stdout


def test_promtool_unit_tests_fail_when_a_threshold_is_wrong(tmp_path: Path) -> None:
    """The unit tests are sensitive: the same tests against rules with a higher p95 threshold
    fail (the slow model no longer fires)."""
    text = (REPO_ROOT / "alerts" / "rules.yaml").read_text()
    broken = text.replace("p95_rate5m > 30\n", "p95_rate5m > 45\n", 1)
    assert broken != text
    (tmp_path / "rules.yaml").write_text(broken)
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "latency.yml").write_text((REPO_ROOT / "alerts/tests/latency.yml").read_text())
    result = run_promtool("test", "rules", tests / "latency.yml", cwd=tmp_path)
    assert result.returncode == 1
    assert 'gen_ai_request_model="slow-model"' in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_unit_test(rules_path: Path) -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                target = firing if case.get("exp_alerts") else silent
                target.add(case["alertname"])
    names = alert_names(rules_path)
    assert names == firing, f"alerts without a firing unit test: {names - firing}"
    # Silent cases: an explicit empty expectation, or models in a firing test that are not
    # in its expected alerts (checked by promtool, which fails on any unexpected alert).
    assert {"ModelTailLatencyHigh", "ModelErrorBudgetBurn", "ModelSidecarDown"} <= silent


def test_every_alert_is_labelled_annotated_and_linked_to_its_runbook(rules_path: Path) -> None:
    runbooks = (REPO_ROOT / "alerts" / "runbooks.md").read_text()
    headings = {
        line[3:].strip().lower() for line in runbooks.splitlines() if line.startswith("## ")
    }
    groups = yaml.safe_load(rules_path.read_text())["groups"]
    alerts = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    assert len(alerts) >= 15
    for rule in alerts:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, rule["alert"]
        anchor = annotations["runbook_url"].rpartition("#")[2]
        assert anchor == rule["alert"].lower() and anchor in headings, rule["alert"]
        description = annotations["description"]
        if rule["alert"].startswith("Model") and "Sidecar" not in rule["alert"]:
            assert "{{ $labels.gen_ai_request_model }}" in description, rule["alert"]
        if rule["alert"] != "ModelSidecarDown":  # `up == 0` or absent(): no value to show
            assert re.search(r"\{\{ [^}]*\$value", description), rule["alert"]
