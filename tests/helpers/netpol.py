"""What a networking.k8s.io/v1 NetworkPolicy lets into a pod: the API's ingress rules, evaluated.

Follows the API reference of NetworkPolicySpec: a policy applies to the pods its podSelector
selects in its namespace; an applying Ingress policy admits a connection when one of its rules
matches both the peer (`from`; absent or empty: every peer) and the port (`ports`; absent or
empty: every port). Traffic from the pod's own node is always allowed by Kubernetes and is not
modelled here: the peers are pods or addresses elsewhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Labels = Mapping[str, str]


@dataclass(frozen=True)
class Peer:
    """Where a connection comes from: a pod (namespace and labels) and its address."""

    namespace: str
    pod_labels: Labels = field(default_factory=dict)
    ip: str = "10.244.7.9"

    @property
    def namespace_labels(self) -> dict[str, str]:
        """The labels every namespace carries (Kubernetes >= 1.22 sets this one itself)."""
        return {"kubernetes.io/metadata.name": self.namespace}


def selects(selector: Mapping[str, Any] | None, labels: Labels) -> bool:
    """LabelSelector semantics: every matchLabels pair and every expression must hold."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        held = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not held:
            return False
    return True


def _peer_matches(entry: Mapping[str, Any], policy_namespace: str, peer: Peer) -> bool:
    block = entry.get("ipBlock")
    if block is not None:
        address = ipaddress.ip_address(peer.ip)
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
    namespaces = entry.get("namespaceSelector")
    pods = entry.get("podSelector")
    if namespaces is None:  # podSelector alone: pods of the policy's own namespace
        return peer.namespace == policy_namespace and selects(pods, peer.pod_labels)
    if not selects(namespaces, peer.namespace_labels):
        return False
    return pods is None or selects(pods, peer.pod_labels)


def _port_matches(
    entry: Mapping[str, Any], port: int, protocol: str, named_ports: Mapping[str, int]
) -> bool:
    if entry.get("protocol", "TCP") != protocol:
        return False
    first = entry.get("port")
    if first is None:
        return True
    if isinstance(first, str):
        return named_ports.get(first) == port
    return int(first) <= port <= int(entry.get("endPort", first))


@dataclass(frozen=True)
class Target:
    """The pod a connection goes to: namespace, labels, and its named container ports."""

    namespace: str
    labels: Labels
    named_ports: Mapping[str, int] = field(default_factory=dict)


def applies(policy: Mapping[str, Any], target: Target) -> bool:
    """True when the policy isolates the target pod for ingress."""
    spec = policy["spec"]
    types = spec.get("policyTypes") or ["Ingress"]
    return (
        policy["metadata"]["namespace"] == target.namespace
        and "Ingress" in types
        and selects(spec["podSelector"], target.labels)
    )


def admits(
    policy: Mapping[str, Any], target: Target, peer: Peer, port: int, protocol: str = "TCP"
) -> bool:
    """Whether this policy, applying to the target, lets the connection in."""
    assert applies(policy, target), "the policy does not apply to this pod"
    namespace = policy["metadata"]["namespace"]
    for rule in policy["spec"].get("ingress") or []:
        peers = rule.get("from") or []
        ports = rule.get("ports") or []
        peer_ok = not peers or any(_peer_matches(p, namespace, peer) for p in peers)
        port_ok = not ports or any(
            _port_matches(p, port, protocol, target.named_ports) for p in ports
        )
        if peer_ok and port_ok:
            return True
    return False
