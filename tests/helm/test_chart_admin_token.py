"""The admin token: its Secret mounted into every sidecar the chart renders, named by the env."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import helm_python as helm
import pytest

from sidecar.cli import build_parser
from sidecar.inject.patch import ANNOTATION_CONFIG, InjectionTemplate, Scope, review_response
from tests.helpers.chart import (
    ADMIN_TOKEN_SECRET,
    CHART_DIR,
    KUBE_VERSION,
    NAMESPACE,
    Rendered,
    render,
    sidecar_containers,
)
from tests.helpers.parent_chart import render_parent
from tests.helpers.pods import admission_review, patched, pod

Render = Callable[[str], Rendered]
# The sidecar's contract (DESIGN.md, admin listener): the token file is named by this variable.
TOKEN_ENV = "MODEL_SIDECAR_ADMIN_TOKEN_FILE"
OPT_IN = {"model-sidecar.io/inject": "true"}
ON = {"enabled": True}
# Every way the chart renders a sidecar: its example workload, a parent chart using the named
# templates, and a pod patched by the injector with the chart's injection.json.
PLACES = [
    f"{way}{form}" for way in ("example", "dependency", "injected") for form in ("", "-classic")
]


def _sidecar_values(secret: Mapping[str, str] | None, native: bool) -> dict[str, Any]:
    values: dict[str, Any] = {"native": native}
    if secret is not None:
        values["adminTokenSecret"] = dict(secret)
    return values


def _pod_spec(
    chart: helm.Chart, tmp_path: Path, place: str, secret: Mapping[str, str] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the pod spec with the sidecar, the source that must serve config.yaml) for a place."""
    sidecar = _sidecar_values(secret, native=not place.endswith("-classic"))
    if place.startswith("example"):
        out = render(chart, {"example": ON, "sidecar": sidecar})
        spec = out.one("Deployment", "example")["spec"]["template"]["spec"]
        return spec, {"configMap": {"name": out.one("ConfigMap")["metadata"]["name"]}}
    if place.startswith("dependency"):
        out = render_parent(tmp_path, {"model-sidecar": {"sidecar": sidecar}})
        spec = out.one("Deployment")["spec"]["template"]["spec"]
        return spec, {"configMap": {"name": out.one("ConfigMap")["metadata"]["name"]}}
    out = render(chart, {"webhook": ON, "sidecar": sidecar})
    text = out.one("ConfigMap", "injector")["data"]["injection.json"]
    template = InjectionTemplate.from_mapping(json.loads(text))
    obj = pod(annotations=OPT_IN)
    answer, decision = review_response(admission_review(obj), template, Scope.POD)
    assert decision.inject, decision.reason
    field_path = f"metadata.annotations['{ANNOTATION_CONFIG}']"
    item = {"path": "config.yaml", "fieldRef": {"fieldPath": field_path}}
    # patched() applies the injector's JSON patch and validates the pod (Kubernetes 1.30, strict).
    return patched(obj, answer)["spec"], {"downwardAPI": {"items": [item]}}


def _sidecar_and_volumes(spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    (sidecar,) = sidecar_containers(spec)
    return sidecar, {volume["name"]: volume for volume in spec["volumes"]}


@pytest.mark.parametrize("key", ["token", "admin.token"])
@pytest.mark.parametrize("place", PLACES)
def test_secret_is_mounted_read_only_where_the_env_points(
    chart: helm.Chart, tmp_path: Path, place: str, key: str
) -> None:
    spec, config_source = _pod_spec(chart, tmp_path, place, {"name": "ms-admin", "key": key})
    sidecar, volumes = _sidecar_and_volumes(spec)
    env = {item["name"]: item.get("value") for item in sidecar["env"]}
    token_file = PurePosixPath(env[TOKEN_ENV])
    assert token_file.is_absolute()
    (mount,) = [m for m in sidecar["volumeMounts"] if m["mountPath"] == str(token_file.parent)]
    # No subPath: a subPath mount would never see the Secret rotated.
    assert mount["readOnly"] is True and "subPath" not in mount
    sources = volumes[mount["name"]]["projected"]["sources"]
    (secret,) = [source["secret"] for source in sources if "secret" in source]
    assert secret == {"name": "ms-admin", "items": [{"key": key, "path": token_file.name}]}
    # The same volume still serves the config file the sidecar is started with.
    config_file = PurePosixPath(build_parser().parse_args(sidecar["args"]).config)
    assert config_file.parent == token_file.parent and config_file.name != token_file.name
    assert [source for source in sources if "secret" not in source] == [config_source]


@pytest.mark.parametrize("place", PLACES)
def test_without_a_secret_nothing_changes(chart: helm.Chart, tmp_path: Path, place: str) -> None:
    spec, config_source = _pod_spec(chart, tmp_path, place, None)
    sidecar, volumes = _sidecar_and_volumes(spec)
    assert TOKEN_ENV not in {item["name"] for item in sidecar["env"]}
    (mount,) = sidecar["volumeMounts"]
    assert volumes[mount["name"]] == {"name": mount["name"], **config_source}


def test_chart_mounts_the_secret_but_never_creates_it(rendered: Render) -> None:
    out = rendered("admin-token")
    names = {doc["metadata"]["name"] for doc in out.of_kind("Secret")}
    assert ADMIN_TOKEN_SECRET not in names
    pod_spec = out.one("Deployment", "example")["spec"]["template"]["spec"]
    (volume,) = pod_spec["volumes"]
    assert {
        "secret": {"name": ADMIN_TOKEN_SECRET, "items": [{"key": "token", "path": "admin-token"}]}
    } in volume["projected"]["sources"]


def test_pod_naming_its_own_config_map_keeps_the_token(chart: helm.Chart) -> None:
    values = {"webhook": {"enabled": True}, "sidecar": {"adminTokenSecret": {"name": "ms-admin"}}}
    text = render(chart, values).one("ConfigMap", "injector")["data"]["injection.json"]
    template = InjectionTemplate.from_mapping(json.loads(text))
    obj = pod(annotations={**OPT_IN, "model-sidecar.io/config-map": "llm-sidecar"})
    answer, _ = review_response(admission_review(obj), template, Scope.POD)
    spec = patched(obj, answer)["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "model-sidecar-config")
    sources = volume["projected"]["sources"]
    assert {"configMap": {"name": "llm-sidecar"}} in sources
    assert any(source.get("secret", {}).get("name") == "ms-admin" for source in sources)


@pytest.mark.parametrize(
    ("secret", "complaint"),
    [
        ("ms-admin", "/sidecar/adminTokenSecret"),  # a string, not {name, key}
        ({"name": "Admin_Token"}, "/sidecar/adminTokenSecret/name"),
        ({"name": "ms-admin", "key": ""}, "/sidecar/adminTokenSecret/key"),
        ({"name": "ms-admin", "key": "a/b"}, "/sidecar/adminTokenSecret/key"),
        ({"name": "ms-admin", "key": ".."}, "/sidecar/adminTokenSecret/key"),
        ({"secretName": "ms-admin"}, "secretName"),
        ({"name": 7}, "/sidecar/adminTokenSecret/name"),
    ],
)
def test_malformed_admin_token_secret_fails_the_schema(
    chart: helm.Chart, secret: object, complaint: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=complaint):
        chart.render({"sidecar": {"adminTokenSecret": secret}}, name="demo", namespace=NAMESPACE)


def test_lint_is_clean_with_a_token() -> None:
    secret = {"name": "ms-admin", "key": "admin.token"}
    values = {"example": ON, "webhook": ON, "sidecar": {"adminTokenSecret": secret}}
    report = helm.lint(CHART_DIR, values, strict=True, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def _shell_lines(notes: str, first: str) -> str:
    """The command block of NOTES.txt that starts with `first`, up to the curl call's end."""
    lines = notes.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(first))
    end = next(i for i in range(start, len(lines)) if "/experiments/NAME/resume" in lines[i])
    return "\n".join(line.strip() for line in lines[start : end + 1])


def test_notes_show_how_to_call_a_control_endpoint_with_the_token(chart: helm.Chart) -> None:
    secret = {"name": "ms-admin", "key": "admin.token"}
    notes = render(chart, {"example": ON, "sidecar": {"adminTokenSecret": secret}}).notes
    commands = _shell_lines(notes, "kubectl -n llm port-forward deploy/demo-model-sidecar-example")
    assert "port-forward deploy/demo-model-sidecar-example 9788:9788 &" in commands
    # jsonpath needs the dot of a key escaped, else it reads .data.admin.token as two levels.
    read = "kubectl -n llm get secret ms-admin -o jsonpath='{.data.admin\\.token}' | base64 -d"
    assert f'-H "Authorization: Bearer $({read})"' in commands
    assert "localhost:9788/experiments/NAME/resume" in commands
    subprocess.run(["bash", "-n"], input=commands, text=True, check=True)


def test_notes_without_a_token_say_who_may_call(chart: helm.Chart) -> None:
    notes = render(chart, {}).notes
    assert "loopback peers only" in notes and "kubectl port-forward" in notes
    commands = _shell_lines(notes, "kubectl -n llm port-forward pod/POD 9788:9788")
    assert "Authorization" not in commands
    assert "--set sidecar.adminTokenSecret.name=" in notes
    subprocess.run(["bash", "-n"], input=commands, text=True, check=True)
