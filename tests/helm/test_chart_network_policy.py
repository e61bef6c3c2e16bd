"""The NetworkPolicy: the admin port only from the configured peers, every other port as before."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from tests.helpers.chart import (
    CHART_DIR,
    KUBE_VERSION,
    NAMESPACE,
    Rendered,
    render,
    validate_manifest,
)
from tests.helpers.netpol import Peer, Target, admits, applies
from tests.helpers.parent_chart import render_parent

Render = Callable[[str], Rendered]
ADMIN = 9788
PROMETHEUS = Peer("monitoring", {"app.kubernetes.io/name": "prometheus"})
STRANGER = Peer("shop", {"app": "web"})
NEIGHBOUR = Peer(NAMESPACE, {"app": "batch"})
INGRESS = Peer("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
ON = {"enabled": True}


def _policy(chart: helm.Chart, network_policy: Mapping[str, Any], **values: Any) -> dict[str, Any]:
    out = render(chart, {"example": ON, "networkPolicy": {**ON, **network_policy}, **values})
    policy = out.one("NetworkPolicy")
    validate_manifest(policy)
    return policy


def _pod_target(pod: Mapping[str, Any], namespace: str = NAMESPACE) -> Target:
    containers = [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]
    named = {p["name"]: p["containerPort"] for c in containers for p in c.get("ports", [])}
    return Target(namespace, pod["metadata"]["labels"], named)


def _example(rendered: Render, name: str = "network-policy") -> Target:
    return _pod_target(rendered(name).one("Deployment", "example")["spec"]["template"])


def _open_tcp_ports(policy: Mapping[str, Any], target: Target, peer: Peer) -> set[int]:
    return {port for port in range(1, 65536) if admits(policy, target, peer, port)}


def test_only_ingress_is_restricted_and_egress_untouched(rendered: Render) -> None:
    policy = rendered("network-policy").one("NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["metadata"]["namespace"] == NAMESPACE


def test_selects_the_pods_with_a_sidecar_and_no_others(rendered: Render, tmp_path: Path) -> None:
    out = rendered("everything")
    policy = out.one("NetworkPolicy")
    assert applies(policy, _example(rendered, "everything"))
    injector = out.one("Deployment", "injector")["spec"]["template"]
    assert not applies(policy, _pod_target(injector))
    # Pods the injector patches in the release namespace carry the label it adds.
    injection = json.loads(out.one("ConfigMap", "injector")["data"]["injection.json"])
    assert applies(policy, Target(NAMESPACE, {"app": "chat-api", **injection["labels"]}))
    assert not applies(policy, Target(NAMESPACE, {"app": "chat-api"}))
    assert not applies(policy, Target("shop", {"app": "chat-api", **injection["labels"]}))
    # In a chart that depends on this one: the pods that include model-sidecar.podLabels.
    parent = render_parent(tmp_path, {"model-sidecar": {"networkPolicy": ON}})
    parent_policy = parent.one("NetworkPolicy")
    validate_manifest(parent_policy)
    pod = parent.one("Deployment")["spec"]["template"]
    assert applies(parent_policy, _pod_target(pod, namespace="shop"))


def test_admin_port_only_from_the_monitoring_namespace(rendered: Render) -> None:
    policy = rendered("network-policy").one("NetworkPolicy")
    example = _example(rendered)
    assert example.named_ports["sidecar-admin"] == ADMIN
    assert admits(policy, example, PROMETHEUS, ADMIN)
    assert admits(policy, example, Peer("monitoring", {"app": "anything"}), ADMIN)
    for peer in (STRANGER, NEIGHBOUR, INGRESS):
        assert not admits(policy, example, peer, ADMIN), peer


def test_every_other_port_stays_reachable(rendered: Render) -> None:
    policy = rendered("network-policy").one("NetworkPolicy")
    example = _example(rendered)
    every_other = set(range(1, 65536)) - {ADMIN}
    assert _open_tcp_ports(policy, example, STRANGER) == every_other
    assert _open_tcp_ports(policy, example, PROMETHEUS) == every_other | {ADMIN}
    for port in (53, ADMIN, 8125):
        assert admits(policy, example, STRANGER, port, "UDP")


@pytest.mark.parametrize("admin_port", [1, 2, 65534, 65535])
def test_admin_port_at_the_ends_of_the_range(chart: helm.Chart, admin_port: int) -> None:
    policy = _policy(chart, {}, sidecar={"adminPort": admin_port})
    target = Target(NAMESPACE, {"model-sidecar.io/sidecar": "true"})
    open_ports = _open_tcp_ports(policy, target, STRANGER)
    assert open_ports == set(range(1, 65536)) - {admin_port}
    assert admits(policy, target, PROMETHEUS, admin_port)


def test_empty_admin_from_closes_the_admin_port_to_every_pod(chart: helm.Chart) -> None:
    policy = _policy(chart, {"adminFrom": []})
    # An empty `from` would mean "from everywhere": no rule may carry one for the admin port.
    target = Target(NAMESPACE, {"model-sidecar.io/sidecar": "true"})
    for peer in (PROMETHEUS, STRANGER, NEIGHBOUR):
        assert not admits(policy, target, peer, ADMIN)
        assert admits(policy, target, peer, 8080)


def test_without_other_ports_only_extra_rules_open_the_app(chart: helm.Chart) -> None:
    target = Target(NAMESPACE, {"model-sidecar.io/sidecar": "true"})
    closed = _policy(chart, {"allowOtherPorts": False})
    assert _open_tcp_ports(closed, target, STRANGER) == set()
    assert _open_tcp_ports(closed, target, PROMETHEUS) == {ADMIN}
    assert not admits(closed, target, STRANGER, 53, "UDP")
    from_ingress = {
        "from": [{"namespaceSelector": {"matchLabels": INGRESS.namespace_labels}}],
        "ports": [{"port": 8080, "protocol": "TCP"}],
    }
    extra = _policy(chart, {"allowOtherPorts": False, "extraIngress": [from_ingress]})
    assert _open_tcp_ports(extra, target, INGRESS) == {8080}
    assert _open_tcp_ports(extra, target, STRANGER) == set()
    nothing = _policy(chart, {"allowOtherPorts": False, "adminFrom": []})
    assert nothing["spec"]["ingress"] == []
    assert _open_tcp_ports(nothing, target, PROMETHEUS) == set()


def test_custom_peers(chart: helm.Chart) -> None:
    peers = [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}},
    ]
    policy = _policy(chart, {"adminFrom": peers})
    target = Target(NAMESPACE, {"model-sidecar.io/sidecar": "true"})
    outside = "192.168.4.4"
    local_prometheus = Peer(NAMESPACE, PROMETHEUS.pod_labels, ip=outside)
    assert admits(policy, target, local_prometheus, ADMIN)
    # podSelector alone means pods of the policy's own namespace.
    assert not admits(policy, target, Peer("monitoring", PROMETHEUS.pod_labels, ip=outside), ADMIN)
    assert admits(policy, target, Peer("shop", ip="10.1.2.3"), ADMIN)
    assert not admits(policy, target, Peer("shop", ip="10.9.2.3"), ADMIN)


@pytest.mark.parametrize(
    "network_policy",
    [
        {},
        {"adminFrom": []},
        {"allowOtherPorts": False, "extraIngress": [{"ports": [{"port": 8080}]}]},
        {"podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}},
    ],
)
def test_lint_is_clean_with_a_network_policy(network_policy: dict[str, Any]) -> None:
    values = {"example": ON, "networkPolicy": {**ON, **network_policy}}
    report = helm.lint(CHART_DIR, values, strict=True, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize(
    ("network_policy", "complaint"),
    [
        ({"enabled": "yes"}, "/networkPolicy/enabled"),
        ({"adminFrom": [{}]}, "/networkPolicy/adminFrom/0"),
        ({"adminFrom": [{"namespaceSelector": {"matchLabel": {}}}]}, "matchLabel"),
        (
            {"adminFrom": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]},
            "/networkPolicy/adminFrom/0",
        ),
        ({"podSelector": {"matchLabels": None}}, "/networkPolicy/podSelector"),
        ({"podSelector": None}, "podSelector"),
        ({"allowOtherPorts": "true"}, "/networkPolicy/allowOtherPorts"),
        ({"extraIngress": [{"port": 8080}]}, "/networkPolicy/extraIngress/0"),
        ({"adminfrom": []}, "adminfrom"),
    ],
)
def test_malformed_network_policy_values_fail_the_schema(
    chart: helm.Chart, network_policy: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=complaint):
        chart.render({"networkPolicy": network_policy}, name="demo", namespace=NAMESPACE)


def test_notes_describe_the_policy(chart: helm.Chart) -> None:
    notes = render(chart, {"networkPolicy": ON}).notes
    assert "NetworkPolicy demo-model-sidecar-admin" in notes
    assert "port 9788 only from" in notes and "every other port open to everyone" in notes
    closed = render(chart, {"networkPolicy": {**ON, "adminFrom": []}}).notes
    assert "port 9788 from no pod at all" in closed
