"""The chart renders and validates for the defaults and every toggle, with hardened pods."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from sidecar import __version__
from sidecar.cli import build_parser
from sidecar.config.load import load_config
from sidecar.config.models import split_host_port
from tests.helpers.chart import (
    CHART_DIR,
    IRSA_ROLE,
    IRSA_ROLE_ANNOTATION,
    KUBE_VERSION,
    NAMESPACE,
    VALUE_SETS,
    Rendered,
    render,
    sidecar_containers,
    validate_manifest,
)

Render = Callable[[str], Rendered]
CONFIG_KEY = "checksum/model-sidecar-config"


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART_DIR / "values.yaml").read_text())


@pytest.mark.parametrize("name", ["defaults", "everything"])
def test_lint_is_clean(name: str) -> None:
    report = helm.lint(CHART_DIR, VALUE_SETS[name], strict=True, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_manifest_validates_against_kubernetes_1_30(rendered: Render, name: str) -> None:
    docs = rendered(name).docs
    assert docs
    for doc in docs:
        assert doc["metadata"].get("namespace", NAMESPACE) == NAMESPACE
        validate_manifest(doc)


EXPECTED_KINDS = {
    "defaults": {"ConfigMap"},
    "example": {"ConfigMap", "Deployment", "Service"},
    "pod-monitor": {"ConfigMap", "PodMonitor"},
    "service-monitor": {"ConfigMap", "ServiceMonitor"},
    "prometheus-rule": {"ConfigMap", "PrometheusRule"},
    "dashboards": {"ConfigMap"},
    "admin-token": {  # the chart mounts the admin token's Secret, never creates it
        "ConfigMap",
        "Deployment",
        "Service",
        "ServiceAccount",
        "Secret",
        "MutatingWebhookConfiguration",
    },
    "network-policy": {"ConfigMap", "Deployment", "Service", "NetworkPolicy"},
    "example-bedrock": {"ConfigMap", "Deployment", "Service", "ServiceAccount"},
    "webhook": {
        "ConfigMap",
        "Deployment",
        "Service",
        "ServiceAccount",
        "Secret",
        "MutatingWebhookConfiguration",
    },
    "webhook-cert-manager": {
        "ConfigMap",
        "Deployment",
        "Service",
        "ServiceAccount",
        "Issuer",
        "Certificate",
        "MutatingWebhookConfiguration",
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED_KINDS))
def test_each_toggle_adds_exactly_its_objects(rendered: Render, name: str) -> None:
    assert {doc["kind"] for doc in rendered(name).docs} == EXPECTED_KINDS[name]


def test_defaults_render_only_the_config(rendered: Render) -> None:
    (config_map,) = rendered("defaults").docs
    assert config_map["metadata"]["name"] == "demo-model-sidecar-config"
    assert "helm/model-sidecar/README.md" in rendered("defaults").notes


def _example_pod(rendered: Render, name: str = "example") -> dict[str, Any]:
    pod: dict[str, Any] = rendered(name).one("Deployment", "example")["spec"]["template"]
    return pod


def test_sidecar_is_hardened(rendered: Render) -> None:
    (sidecar,) = sidecar_containers(_example_pod(rendered)["spec"])
    context = sidecar["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    env = {item["name"]: item.get("value") for item in sidecar["env"]}
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # nothing to write on a read-only root FS


def test_listeners_and_probes(rendered: Render) -> None:
    values = _values()["sidecar"]
    (sidecar,) = sidecar_containers(_example_pod(rendered)["spec"])
    args = build_parser().parse_args(sidecar["args"])
    assert args.command == "serve"
    assert split_host_port(args.listen) == ("127.0.0.1", values["proxyPort"])  # loopback only
    assert split_host_port(args.admin_listen) == ("0.0.0.0", values["adminPort"])
    (port,) = sidecar["ports"]
    assert (port["name"], port["containerPort"]) == ("sidecar-admin", values["adminPort"])
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "sidecar-admin"}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "sidecar-admin"}
    assert sidecar["startupProbe"]["httpGet"] == {"path": "/readyz", "port": "sidecar-admin"}
    (mount,) = sidecar["volumeMounts"]
    assert Path(args.config).parent == Path(mount["mountPath"]) and mount["readOnly"] is True


def test_native_sidecar_form(rendered: Render) -> None:
    spec = _example_pod(rendered)["spec"]
    first_init = spec["initContainers"][0]
    assert first_init["name"] == "model-sidecar"
    assert first_init["restartPolicy"] == "Always"
    assert [c["name"] for c in spec["containers"]] == ["app"]


def test_classic_sidecar_form(rendered: Render) -> None:
    spec = _example_pod(rendered, "example-classic")["spec"]
    assert "initContainers" not in spec
    assert [c["name"] for c in spec["containers"]] == ["app", "model-sidecar"]
    assert "restartPolicy" not in spec["containers"][1]


def test_example_app_points_at_the_sidecar(rendered: Render) -> None:
    spec = _example_pod(rendered)["spec"]
    app = spec["containers"][0]
    env = {item["name"]: item["value"] for item in app["env"]}
    assert env == {
        "OPENAI_BASE_URL": "http://127.0.0.1:8788/v1",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:8788",
    }
    (volume,) = spec["volumes"]
    assert volume["configMap"]["name"] == rendered("example").one("ConfigMap")["metadata"]["name"]
    service = rendered("example").one("Service", "example")
    assert service["metadata"]["labels"]["model-sidecar.io/metrics"] == "true"


def test_config_checksum_rolls_pods_when_the_config_changes(chart: helm.Chart) -> None:
    def pod_checksum_and_config(config: dict[str, Any]) -> tuple[str, str]:
        out = render(chart, {"example": {"enabled": True}, "config": config})
        annotations = out.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
        return annotations[CONFIG_KEY], out.one("ConfigMap")["data"]["config.yaml"]

    checksum_a, config_a = pod_checksum_and_config({"log": {"level": "info"}})
    checksum_b, config_b = pod_checksum_and_config({"log": {"level": "debug"}})
    assert checksum_a != checksum_b
    assert checksum_a == pod_checksum_and_config({"log": {"level": "info"}})[0]
    for checksum, text in ((checksum_a, config_a), (checksum_b, config_b)):
        assert checksum == hashlib.sha256(text.rstrip("\n").encode()).hexdigest()


@pytest.mark.parametrize(
    "config",
    [
        {},
        {
            "upstreams": {
                "openai": {"url": "https://api.openai.com"},
                "vllm": {"url": "http://vllm.inference:8000", "path_prefix": "/vllm"},
            },
            "limits": {"shutdown_grace_seconds": 50},
            "log": {"access_log": True},
        },
    ],
)
def test_rendered_config_is_accepted_by_the_sidecar(
    chart: helm.Chart, config: dict[str, Any], tmp_path: Path
) -> None:
    out = render(chart, {"example": {"enabled": True}, "config": config})
    path = tmp_path / "config.yaml"
    path.write_text(out.one("ConfigMap")["data"]["config.yaml"])
    (sidecar,) = sidecar_containers(out.one("Deployment")["spec"]["template"]["spec"])
    args = build_parser().parse_args(sidecar["args"])
    loaded = load_config(path, listen=args.listen, admin_listen=args.admin_listen, environ={})
    assert loaded.admin_listen == "0.0.0.0:9788"
    grace = out.one("Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > loaded.limits.shutdown_grace_seconds
    if config:
        assert loaded.upstreams["vllm"].path_prefix == "/vllm"
        assert grace == 50 + _values()["sidecar"]["terminationGraceMarginSeconds"]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"sidecar": {"native": "yes"}}, "/sidecar/native"),
        ({"sidecar": {"adminPort": "9788"}}, "/sidecar/adminPort"),
        ({"sidecar": {"proxyPort": 70000}}, "/sidecar/proxyPort"),
        ({"sidecarr": {"native": True}}, "sidecarr"),
        ({"monitoring": {"podMonitor": {"enable": True}}}, "enable"),
        ({"monitoring": {"podMonitor": {"interval": "30 seconds"}}}, "interval"),
        ({"webhook": {"failurePolicy": "ignore"}}, "/webhook/failurePolicy"),
        ({"config": {"listen": "0.0.0.0:8788"}}, "/config/listen"),
        ({"image": {"tag": 1}}, "/image/tag"),
    ],
)
def test_wrong_values_fail_the_schema(
    chart: helm.Chart, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=complaint):
        chart.render(values, name="demo", namespace=NAMESPACE)


def test_image_tag_is_the_app_version() -> None:
    meta = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert _values()["image"]["tag"] == meta["appVersion"] == __version__


def test_monitors_select_the_sidecars_admin_port(rendered: Render) -> None:
    out = rendered("everything")
    pod = out.one("Deployment", "example")["spec"]["template"]
    (sidecar,) = sidecar_containers(pod["spec"])
    port_names = {port["name"] for port in sidecar["ports"]}
    pod_monitor = out.one("PodMonitor")["spec"]
    assert pod_monitor["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert pod_monitor["namespaceSelector"] == {"any": True}
    assert {e["port"] for e in pod_monitor["podMetricsEndpoints"]} <= port_names
    service = out.one("Service", "example")
    service_monitor = out.one("ServiceMonitor")["spec"]
    assert (
        service_monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert {e["port"] for e in service_monitor["endpoints"]} == {
        p["name"] for p in service["spec"]["ports"]
    }
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    for kind in ("PodMonitor", "ServiceMonitor", "PrometheusRule"):
        assert out.one(kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_native_sidecar_on_a_cluster_older_than_1_29_fails_with_advice(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Lint mode turns `fail` into a log line on the process's stderr (`helm install` stops there).
    advice = "sidecar.native needs Kubernetes >= 1.29"
    values: dict[str, Any] = {"example": {"enabled": True}}
    helm.lint(CHART_DIR, values, strict=True, kube_version="v1.28.9")
    out, err = capfd.readouterr()
    assert advice in out + err and "set sidecar.native=false" in out + err
    helm.lint(CHART_DIR, {**values, "sidecar": {"native": False}}, kube_version="v1.28.9")
    helm.lint(CHART_DIR, values, strict=True, kube_version="v1.29.0")
    out, err = capfd.readouterr()
    assert advice not in out + err


def test_the_example_pods_service_account_carries_its_aws_role(
    rendered: Render, tmp_path: Path
) -> None:
    out = rendered("example-bedrock")
    account = out.one("ServiceAccount", "example")
    assert account["metadata"]["annotations"] == {IRSA_ROLE_ANNOTATION: IRSA_ROLE}
    assert account["automountServiceAccountToken"] is False
    pod = _example_pod(rendered, "example-bedrock")["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    # The sidecar in that pod gets a bedrock upstream that signs for the URL's region.
    path = tmp_path / "config.yaml"
    path.write_text(out.one("ConfigMap")["data"]["config.yaml"])
    bedrock = load_config(path, environ={}).upstreams["bedrock"]
    assert (bedrock.protocol, bedrock.aws_region) == ("bedrock", "us-east-1")


def test_the_example_pod_can_run_as_an_existing_service_account(chart: helm.Chart) -> None:
    out = render(chart, {"example": {"enabled": True, "serviceAccount": {"name": "bedrock-app"}}})
    assert out.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "bedrock-app"
    assert out.of_kind("ServiceAccount") == []
    plain = render(chart, {"example": {"enabled": True}})
    assert "serviceAccountName" not in plain.one("Deployment")["spec"]["template"]["spec"]
