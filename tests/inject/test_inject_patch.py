"""The injector's decisions and patches, as pure functions, on realistic pods."""

from __future__ import annotations

import copy
import json
from typing import Any

import helm_python as helm
import pytest

from sidecar.inject.patch import (
    ANNOTATION_CONFIG,
    ANNOTATION_STATUS,
    InjectionTemplate,
    Scope,
    decide,
    review_response,
)
from tests.helpers.chart import CHART_DIR, render, sidecar_containers
from tests.helpers.pods import admission_review, env_of, names, patched, pod

OPT_IN = {"model-sidecar.io/inject": "true"}
BASE_URLS = {
    "OPENAI_BASE_URL": "http://127.0.0.1:8788/v1",
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:8788",
}


@pytest.mark.parametrize(
    ("annotations", "labels", "namespace", "scope", "inject"),
    [
        (OPT_IN, {}, "shop", Scope.POD, True),
        ({"model-sidecar.io/inject": "True "}, {}, "shop", Scope.POD, True),
        (None, {}, "shop", Scope.POD, False),
        (None, {}, "shop", Scope.NAMESPACE, True),
        ({"model-sidecar.io/inject": "false"}, {}, "shop", Scope.NAMESPACE, False),
        (OPT_IN, {}, "kube-system", Scope.POD, False),
        (None, {}, "kube-system", Scope.NAMESPACE, False),
        (OPT_IN, {"model-sidecar.io/injector": "true"}, "llm", Scope.NAMESPACE, False),
        ({**OPT_IN, ANNOTATION_STATUS: "injected"}, {}, "shop", Scope.POD, False),
    ],
)
def test_decide(
    annotations: dict[str, str] | None,
    labels: dict[str, str],
    namespace: str,
    scope: Scope,
    inject: bool,
) -> None:
    assert decide(pod(annotations=annotations, labels=labels), namespace, scope).inject is inject


def _inject(template: InjectionTemplate, obj: dict[str, Any]) -> dict[str, Any]:
    answer, decision = review_response(admission_review(obj), template, Scope.POD)
    assert decision.inject, decision.reason
    return patched(obj, answer)


def test_native_sidecar_goes_first_among_init_containers(
    native_template: InjectionTemplate,
) -> None:
    migrate = {"name": "migrate", "image": "registry.example.com/migrate:2"}
    result = _inject(native_template, pod(annotations=OPT_IN, init_containers=[migrate]))
    assert names(result["spec"]["initContainers"]) == ["model-sidecar", "migrate"]
    assert result["spec"]["initContainers"][0]["restartPolicy"] == "Always"
    assert names(result["spec"]["containers"]) == ["app"]


def test_classic_sidecar_is_appended(classic_template: InjectionTemplate) -> None:
    result = _inject(classic_template, pod(annotations=OPT_IN))
    assert "initContainers" not in result["spec"]
    assert names(result["spec"]["containers"]) == ["app", "model-sidecar"]
    assert "restartPolicy" not in result["spec"]["containers"][1]
    assert env_of(result["spec"]["containers"][0]) == BASE_URLS
    assert env_of(result["spec"]["containers"][1]).keys() >= {"PYTHONDONTWRITEBYTECODE"}


def test_config_travels_in_an_annotation_read_through_the_downward_api(
    native_template: InjectionTemplate,
) -> None:
    result = _inject(native_template, pod(annotations=OPT_IN))
    annotations = result["metadata"]["annotations"]
    assert annotations[ANNOTATION_STATUS] == "injected"
    assert annotations[ANNOTATION_CONFIG] == "{}"
    volume = next(v for v in result["spec"]["volumes"] if v["name"] == "model-sidecar-config")
    (item,) = volume["downwardAPI"]["items"]
    assert item["fieldRef"]["fieldPath"] == f"metadata.annotations['{ANNOTATION_CONFIG}']"
    assert result["metadata"]["labels"]["model-sidecar.io/sidecar"] == "true"
    assert result["spec"]["terminationGracePeriodSeconds"] == 45


def test_pod_keeps_its_own_config_and_longer_grace(native_template: InjectionTemplate) -> None:
    own = "limits: {shutdown_grace_seconds: 5}\n"
    obj = pod(annotations={**OPT_IN, ANNOTATION_CONFIG: own})
    obj["spec"]["terminationGracePeriodSeconds"] = 120
    result = _inject(native_template, obj)
    assert result["metadata"]["annotations"][ANNOTATION_CONFIG] == own
    assert result["spec"]["terminationGracePeriodSeconds"] == 120


def test_pod_may_name_a_config_map(native_template: InjectionTemplate) -> None:
    obj = pod(annotations={**OPT_IN, "model-sidecar.io/config-map": "llm-sidecar"})
    result = _inject(native_template, obj)
    volume = next(v for v in result["spec"]["volumes"] if v["name"] == "model-sidecar-config")
    assert volume == {"name": "model-sidecar-config", "configMap": {"name": "llm-sidecar"}}
    assert ANNOTATION_CONFIG not in result["metadata"]["annotations"]


def test_base_url_opt_out_keeps_the_sidecar(native_template: InjectionTemplate) -> None:
    result = _inject(
        native_template, pod(annotations={**OPT_IN, "model-sidecar.io/set-base-urls": "false"})
    )
    assert names(result["spec"]["initContainers"]) == ["model-sidecar"]
    assert "env" not in result["spec"]["containers"][0]


def test_pod_without_annotations_or_volumes(native_template: InjectionTemplate) -> None:
    obj = pod()
    del obj["spec"]["volumes"]
    answer, decision = review_response(admission_review(obj), native_template, Scope.NAMESPACE)
    assert decision.inject
    result = patched(obj, answer)
    assert result["metadata"]["annotations"][ANNOTATION_STATUS] == "injected"
    assert names(result["spec"]["volumes"]) == ["model-sidecar-config"]


def test_injecting_twice_changes_nothing(native_template: InjectionTemplate) -> None:
    once = _inject(native_template, pod(annotations=OPT_IN))
    answer, decision = review_response(admission_review(once), native_template, Scope.NAMESPACE)
    assert not decision.inject and "patch" not in answer["response"]
    # A pod that got the sidecar from the named template (no status annotation) is left alone.
    by_chart = copy.deepcopy(once)
    del by_chart["metadata"]["annotations"][ANNOTATION_STATUS]
    assert not review_response(admission_review(by_chart), native_template, Scope.POD)[1].inject


@pytest.mark.parametrize("change", ["kind", "operation"])
def test_only_pod_creations_are_patched(native_template: InjectionTemplate, change: str) -> None:
    review = admission_review(pod(annotations=OPT_IN))
    if change == "kind":
        review["request"]["kind"]["kind"] = "Deployment"
    else:
        review["request"]["operation"] = "UPDATE"
    answer, decision = review_response(review, native_template, Scope.POD)
    assert answer["response"] == {"uid": review["request"]["uid"], "allowed": True}
    assert not decision.inject


@pytest.mark.parametrize("missing", ["container", "volume", "terminationGracePeriodSeconds"])
def test_template_must_be_complete(injection_files: dict[str, str], missing: str) -> None:
    data = json.loads(injection_files["native"])
    del data[missing]
    with pytest.raises(ValueError, match=missing):
        InjectionTemplate.from_mapping(data)


def test_injected_container_is_the_named_template(native_template: InjectionTemplate) -> None:
    helm.disable_logging()
    with helm.Chart.load(CHART_DIR) as chart:
        example = render(chart, {"example": {"enabled": True}}).one("Deployment", "example")
    (from_chart,) = sidecar_containers(example["spec"]["template"]["spec"])
    assert dict(native_template.container) == from_chart
    app_env = {
        e["name"]: e["value"] for e in example["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert {e["name"]: e["value"] for e in native_template.app_env} == app_env == BASE_URLS
