"""The generated dashboards are what Grafana needs to import them, and the committed JSON is
exactly what the generator produces (in dashboards/ and in the Helm chart's files)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.__main__ import main
from dashboards.generate import OUTPUT_DIRS, REPO_ROOT, SPECS, render_all, stale
from dashboards.runbooks import ALERTS, RUNBOOKS_URL
from tests.helpers.grafana import VARIABLE

DASHBOARDS = {name: json.loads(text) for name, text in render_all().items()}
BUILTIN_VARIABLES = {"__rate_interval", "__range", "__interval"}
# Series recorded by the rules `model-sidecar slo-rules` generates (SLOs, budgets): aggregated
# over the fleet, they carry no job, namespace or pod to filter by.
RECORDED_FLEET_SERIES = re.compile(r"\b(?:slo|attribution):[a-z0-9_]+(?::[a-z0-9_]+)?")
# A range selector's window: `…}[window]` (every selector carries matchers).
RANGE = re.compile(r"\}\[([^\]]+)\]")
QUANTILE = re.compile(r"histogram_quantile\(([^,]+), (\w+)")
DATASOURCE_UID = "${datasource}"
GRID_WIDTH = 24


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data (rows excluded)."""
    return (panel for panel in dashboard["panels"] if panel["type"] != "row")


def targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every query of the dashboard."""
    for panel in panels(dashboard):
        for target in panel["targets"]:
            yield panel, target


@pytest.fixture(params=sorted(DASHBOARDS))
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return DASHBOARDS[request.param]


def test_committed_json_is_what_the_generator_produces() -> None:
    differing = [str(path.relative_to(REPO_ROOT)) for path in stale()]
    assert not differing, f"stale dashboards, run `python -m dashboards`: {differing}"
    assert {path.name for path in OUTPUT_DIRS[1].glob("*.json")} == set(SPECS)


def test_check_fails_on_a_changed_file_and_passes_on_fresh_output(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--check", "--out", str(tmp_path)]) == 0
    edited = tmp_path / "model-sidecar-health.json"
    edited.write_text(edited.read_text().replace("Sidecars up", "Sidecars upp"))
    assert main(["--check", "--out", str(tmp_path)]) == 1
    edited.unlink()
    assert main(["--check", "--out", str(tmp_path)]) == 1


def test_uids_and_titles_are_unique_and_importable() -> None:
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids) == 3
    for dashboard in DASHBOARDS.values():
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", dashboard["uid"])
        assert dashboard["title"] and dashboard["description"]
        assert "id" not in dashboard or dashboard["id"] is None  # import assigns one
    assert len({d["title"] for d in DASHBOARDS.values()}) == 3


def test_schema_version_and_datasource_variable(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] == 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "datasource" in variables, "no datasource variable"
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
            assert variable["query"].startswith("label_values(")
            assert variable["includeAll"] and variable["multi"]


def test_all_values_match_series_without_the_label(dashboard: dict[str, Any]) -> None:
    """`.*` matches an absent label (plain scrapes have no namespace or pod); `job` expands to
    the found jobs only, so `up{job=~"$job"}` never covers other scrape jobs."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "allValue" not in variables["job"] or not variables["job"]["allValue"]
    for name in ("namespace", "pod", "provider", "model", "experiment"):
        if name in variables:
            assert variables[name]["allValue"] == ".*", name


def test_panel_ids_are_unique(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(set(ids)) == len(ids)


def test_grid_positions_fit_and_never_overlap(dashboard: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["y"] >= 0
        assert grid["x"] + grid["w"] <= GRID_WIDTH, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_every_panel_has_description_unit_thresholds_and_datasource(
    dashboard: dict[str, Any],
) -> None:
    for panel in panels(dashboard):
        title = panel["title"]
        assert panel["description"].strip(), title
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"], title
        steps = defaults["thresholds"]["steps"]
        assert steps and steps[0]["value"] is None, title
        assert [s["value"] for s in steps[1:]] == sorted(s["value"] for s in steps[1:]), title
        assert panel["datasource"]["uid"] == DATASOURCE_UID, title
        assert panel["targets"], title


def test_every_target_has_a_ref_id_and_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    for panel in panels(dashboard):
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert all(ref_ids) and len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_queries_use_only_defined_variables(dashboard: dict[str, Any]) -> None:
    defined = {v["name"] for v in dashboard["templating"]["list"]} | BUILTIN_VARIABLES
    for panel, target in targets(dashboard):
        used = {a or b for a, b in VARIABLE.findall(target["expr"])}
        assert used <= defined, (panel["title"], used - defined)
        if RECORDED_FLEET_SERIES.search(target["expr"]):
            assert not used, (panel["title"], used)
            continue
        for name in ("job", "namespace", "pod"):
            assert f'{name}=~"${name}"' in target["expr"], (panel["title"], name)


def test_rate_windows_follow_the_scrape_interval(dashboard: dict[str, Any]) -> None:
    """No fixed windows: $__rate_interval (or $__range for totals over the time range)."""
    for panel, target in targets(dashboard):
        for window in RANGE.findall(target["expr"]):
            assert window in ("$__rate_interval", "$__range"), (panel["title"], window)


def test_histogram_quantile_aggregates_by_le_first(dashboard: dict[str, Any]) -> None:
    for panel, target in targets(dashboard):
        expr = target["expr"]
        for quantile, aggregation in QUANTILE.findall(expr):
            assert 0 < float(quantile) < 1, panel["title"]
            assert aggregation == "sum", panel["title"]
        assert expr.count("histogram_quantile(") == expr.count("sum by (le"), panel["title"]


def test_ratios_are_guarded_against_division_by_zero(dashboard: dict[str, Any]) -> None:
    for panel, target in targets(dashboard):
        for divisor in re.split(r"\) / ", target["expr"])[1:]:
            assert re.match(r"(on \([^)]*\) group_left \(\) )?\(.*> 0\)", divisor), panel["title"]


def test_table_columns_match_their_queries() -> None:
    (table,) = [p for d in DASHBOARDS.values() for p in panels(d) if p["type"] == "table"]
    merge, organize = table["transformations"]
    assert merge["id"] == "merge" and organize["id"] == "organize"
    renamed = organize["options"]["renameByName"]
    for target in table["targets"]:
        assert target["format"] == "table" and target["instant"] is True
        assert f"Value #{target['refId']}" in renamed
    headers = {o["matcher"]["options"] for o in table["fieldConfig"]["overrides"]}
    assert headers == {renamed[f"Value #{t['refId']}"] for t in table["targets"]}
    assert {"Model", "Variant"} <= set(renamed.values())


def test_every_alert_has_a_panel_linking_to_its_runbook() -> None:
    linked: set[str] = set()
    for dashboard in DASHBOARDS.values():
        for panel in panels(dashboard):
            for link in panel.get("links", []):
                base, _, anchor = link["url"].partition("#")
                assert base == RUNBOOKS_URL and link["targetBlank"], panel["title"]
                (alert,) = [a for a in ALERTS if a.lower() == anchor]
                linked.add(alert)
    assert linked == ALERTS


def test_runbook_anchors_exist_in_alerts_runbooks() -> None:
    runbooks = (REPO_ROOT / "alerts" / "runbooks.md").read_text()
    headings = {line.lstrip("#").strip() for line in runbooks.splitlines() if line.startswith("#")}
    missing = sorted(ALERTS - headings)
    assert not missing, f"alerts/runbooks.md has no section for {missing}"
