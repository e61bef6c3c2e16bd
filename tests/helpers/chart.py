"""Rendering the chart from Python (Helm's Go engine via helm-python-sdk) and validating it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "model-sidecar"
KUBE_VERSION = "1.30.0"
RELEASE = "demo"
NAMESPACE = "llm"
ADMIN_TOKEN_SECRET = "llm-sidecar-admin"

# Every toggle on its own, and all of them together (rendered once each per session).
# IRSA: the annotation that gives a ServiceAccount's pods an AWS role.
IRSA_ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
IRSA_ROLE = "arn:aws:iam::123456789012:role/bedrock-caller"
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "example": {"example": {"enabled": True}},
    "example-classic": {"example": {"enabled": True}, "sidecar": {"native": False}},
    "pod-monitor": {"monitoring": {"podMonitor": {"enabled": True}}},
    "service-monitor": {"monitoring": {"serviceMonitor": {"enabled": True}}},
    "prometheus-rule": {"monitoring": {"prometheusRule": {"enabled": True}}},
    "dashboards": {"monitoring": {"dashboards": {"enabled": True, "folder": "LLM"}}},
    "webhook": {"webhook": {"enabled": True}},
    "webhook-classic": {"webhook": {"enabled": True}, "sidecar": {"native": False}},
    "webhook-cert-manager": {"webhook": {"enabled": True, "certManager": {"enabled": True}}},
    "admin-token": {
        "example": {"enabled": True},
        "webhook": {"enabled": True},
        "sidecar": {"adminTokenSecret": {"name": ADMIN_TOKEN_SECRET}},
    },
    "network-policy": {"example": {"enabled": True}, "networkPolicy": {"enabled": True}},
    "example-bedrock": {
        "example": {
            "enabled": True,
            "serviceAccount": {"create": True, "annotations": {IRSA_ROLE_ANNOTATION: IRSA_ROLE}},
        },
        "config": {
            "upstreams": {"bedrock": {"url": "https://bedrock-runtime.us-east-1.amazonaws.com"}}
        },
    },
    "everything": {
        "example": {"enabled": True},
        "webhook": {"enabled": True},
        "sidecar": {"adminTokenSecret": {"name": ADMIN_TOKEN_SECRET}},
        "networkPolicy": {"enabled": True},
        "monitoring": {
            "additionalLabels": {"release": "kube-prometheus-stack"},
            "podMonitor": {"enabled": True},
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True},
            "dashboards": {"enabled": True},
        },
        "config": {"limits": {"shutdown_grace_seconds": 20}},
    },
}


@dataclass
class Rendered:
    """The manifests of one `helm template`, parsed."""

    files: dict[str, str]
    docs: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for path, text in self.files.items():
            if path.endswith(".txt"):
                continue
            self.docs += [doc for doc in yaml.safe_load_all(text) if doc]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Every object of a kind."""
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, component: str | None = None) -> dict[str, Any]:
        """The single object of a kind (optionally of one app.kubernetes.io/component)."""
        found = [
            doc
            for doc in self.of_kind(kind)
            if component is None
            or doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"expected one {kind} ({component}), got {len(found)}"
        return found[0]

    @property
    def notes(self) -> str:
        """NOTES.txt as rendered."""
        return next(text for path, text in self.files.items() if path.endswith("NOTES.txt"))


def render(chart: helm.Chart, values: Mapping[str, Any]) -> Rendered:
    """`helm template demo helm/model-sidecar -n llm` with these values."""
    return Rendered(chart.render(dict(values), name=RELEASE, namespace=NAMESPACE))


def sidecar_containers(pod_spec: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The model-sidecar containers of a pod spec, wherever they are."""
    for key in ("initContainers", "containers"):
        for container in pod_spec.get(key) or []:
            if container["name"] == "model-sidecar":
                yield container


# The Prometheus Operator and cert-manager CRDs are not in the Kubernetes schemas: these are the
# parts of their published shapes that the chart uses, strict, so a misspelt field fails.
_STR = {"type": "string"}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": {"type": "object"}, "matchExpressions": {"type": "array"}},
}
_NS_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": _STR}},
}
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["port"],
    "properties": {
        "port": _STR,
        "path": _STR,
        "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
        "scrapeTimeout": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
    },
}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": _STR,
        "labels": {"type": "object", "additionalProperties": _STR},
        "annotations": {"type": "object", "additionalProperties": _STR},
    },
}


def _crd(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


def _strict(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "properties": {
        "alert": _STR,
        "record": _STR,
        "expr": {"type": ["string", "integer"]},
        "for": _STR,
        "keep_firing_for": _STR,
        "labels": {"type": "object", "additionalProperties": _STR},
        "annotations": {"type": "object", "additionalProperties": _STR},
    },
}
CRD_SHAPES: dict[str, dict[str, Any]] = {
    "PodMonitor": _crd(
        "monitoring.coreos.com/v1",
        "PodMonitor",
        _strict(
            {
                "selector": _SELECTOR,
                "namespaceSelector": _NS_SELECTOR,
                "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
            },
            ["selector", "podMetricsEndpoints"],
        ),
    ),
    "ServiceMonitor": _crd(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        _strict(
            {
                "selector": _SELECTOR,
                "namespaceSelector": _NS_SELECTOR,
                "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
            },
            ["selector", "endpoints"],
        ),
    ),
    "PrometheusRule": _crd(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        _strict(
            {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": _strict(
                        {
                            "name": _STR,
                            "interval": _STR,
                            "limit": {"type": "integer"},
                            "rules": {"type": "array", "items": _RULE},
                        },
                        ["name", "rules"],
                    ),
                }
            },
            ["groups"],
        ),
    ),
    "Certificate": _crd(
        "cert-manager.io/v1",
        "Certificate",
        _strict(
            {
                "secretName": _STR,
                "duration": _STR,
                "commonName": _STR,
                "dnsNames": {"type": "array", "items": _STR},
                "issuerRef": _strict({"name": _STR, "kind": _STR, "group": _STR}, ["name"]),
            },
            ["secretName", "issuerRef"],
        ),
    ),
    "Issuer": _crd(
        "cert-manager.io/v1",
        "Issuer",
        _strict({"selfSigned": _strict({}, [])}, []),
    ),
}


def validate_manifest(doc: Mapping[str, Any]) -> None:
    """Raise unless the object validates: Kubernetes 1.30 schemas (strict), or its CRD's shape."""
    shape = CRD_SHAPES.get(doc["kind"])
    if shape is not None:
        jsonschema.validate(doc, shape)
    else:
        kubernetes_validate.validate(json.loads(json.dumps(doc)), KUBE_VERSION, strict=True)


def injection_json(chart: helm.Chart, native: bool) -> str:
    """The injector's injection.json as the chart renders it, native sidecar or classic."""
    out = render(chart, {"webhook": {"enabled": True}, "sidecar": {"native": native}})
    config_map = out.one("ConfigMap", "injector")
    text: str = config_map["data"]["injection.json"]
    return text
