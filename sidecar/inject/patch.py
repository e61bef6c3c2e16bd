"""The injector's decisions and JSON patches: pure functions of a pod and a template."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

SIDECAR_NAME = "model-sidecar"
ANNOTATION_INJECT = "model-sidecar.io/inject"
ANNOTATION_STATUS = "model-sidecar.io/status"
ANNOTATION_CONFIG = "model-sidecar.io/config"
ANNOTATION_CONFIG_MAP = "model-sidecar.io/config-map"
ANNOTATION_BASE_URLS = "model-sidecar.io/set-base-urls"
LABEL_INJECTOR = "model-sidecar.io/injector"
NEVER_INJECTED_NAMESPACES = frozenset({"kube-system"})
STATUS_INJECTED = "injected"

_YES = frozenset({"true", "yes", "1", "enabled", "on"})
_NO = frozenset({"false", "no", "0", "disabled", "off"})

JsonPatch = list[dict[str, Any]]


class Scope(Enum):
    """Why the API server asked: a pod that may opt in, or a labelled namespace's pod."""

    POD = "pod"  # inject only when the pod is annotated model-sidecar.io/inject: "true"
    NAMESPACE = "namespace"  # inject unless the pod is annotated model-sidecar.io/inject: "false"


@dataclass(frozen=True)
class InjectionTemplate:
    """What gets injected, as the chart renders it (templates/webhook/injection-configmap.yaml)."""

    container: Mapping[str, Any]
    native: bool
    volume: Mapping[str, Any]
    annotations: Mapping[str, str]
    labels: Mapping[str, str]
    app_env: Sequence[Mapping[str, Any]]
    termination_grace_period_seconds: int

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> InjectionTemplate:
        """Build from the chart's injection.json; ValueError names a missing or wrong key."""
        try:
            template = cls(
                container=dict(data["container"]),
                native=bool(data["native"]),
                volume=dict(data["volume"]),
                annotations={str(k): str(v) for k, v in data.get("annotations", {}).items()},
                labels={str(k): str(v) for k, v in data.get("labels", {}).items()},
                app_env=[dict(item) for item in data.get("appEnv", [])],
                termination_grace_period_seconds=int(data["terminationGracePeriodSeconds"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"injection template: missing or invalid {exc}") from exc
        if template.container.get("name") != SIDECAR_NAME:
            raise ValueError(f"injection template: the container must be named {SIDECAR_NAME!r}")
        return template


def load_injection_template(path: str | Path) -> InjectionTemplate:
    """Read injection.json (the chart's ConfigMap, mounted into the injector)."""
    return InjectionTemplate.from_mapping(json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class Decision:
    """Whether to inject, and why (for the log)."""

    inject: bool
    reason: str


def _escape(key: str) -> str:
    """A key as one JSON-pointer token (`~` and `/` escaped)."""
    return key.replace("~", "~0").replace("/", "~1")


def _containers(pod: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    return list(pod.get("spec", {}).get(field) or [])


def is_injected(pod: Mapping[str, Any]) -> bool:
    """True when the pod already runs the sidecar (injected, or added by the named template)."""
    annotations = pod.get("metadata", {}).get("annotations") or {}
    if annotations.get(ANNOTATION_STATUS) == STATUS_INJECTED:
        return True
    return any(
        container.get("name") == SIDECAR_NAME
        for field in ("initContainers", "containers")
        for container in _containers(pod, field)
    )


def decide(pod: Mapping[str, Any], namespace: str, scope: Scope) -> Decision:
    """Inject or not: never into kube-system, the injector itself, or an injected pod."""
    metadata = pod.get("metadata", {})
    if namespace in NEVER_INJECTED_NAMESPACES:
        return Decision(False, f"namespace {namespace} is never injected")
    if LABEL_INJECTOR in (metadata.get("labels") or {}):
        return Decision(False, "the injector's own pod")
    if is_injected(pod):
        return Decision(False, "already injected")
    wish = str((metadata.get("annotations") or {}).get(ANNOTATION_INJECT, "")).strip().lower()
    if wish in _NO:
        return Decision(False, f"opted out by {ANNOTATION_INJECT}")
    if scope is Scope.NAMESPACE:
        return Decision(True, "namespace labelled model-sidecar.io/inject=enabled")
    if wish in _YES:
        return Decision(True, f"opted in by {ANNOTATION_INJECT}")
    return Decision(False, "not opted in")


def _add_entries(
    pod_map: Mapping[str, Any] | None, path: str, entries: Mapping[str, str]
) -> JsonPatch:
    """Patches adding map entries (annotations, labels), creating the map when absent."""
    if not entries:
        return []
    if pod_map is None:
        return [{"op": "add", "path": path, "value": dict(entries)}]
    return [
        {"op": "add", "path": f"{path}/{_escape(key)}", "value": value}
        for key, value in entries.items()
    ]


def _append(items: list[Any] | None, path: str, values: Sequence[Any]) -> JsonPatch:
    """Patches appending to a list, creating it when absent."""
    if not values:
        return []
    if items is None:
        return [{"op": "add", "path": path, "value": list(values)}]
    return [{"op": "add", "path": f"{path}/-", "value": value} for value in values]


def _config_volume(annotations: Mapping[str, str], template: InjectionTemplate) -> dict[str, Any]:
    """The sidecar's config volume; a pod naming its own ConfigMap gets that ConfigMap as the
    config source. A projected volume (config plus the admin token's Secret) keeps its other
    sources, so the token file stays where MODEL_SIDECAR_ADMIN_TOKEN_FILE points."""
    config_map = annotations.get(ANNOTATION_CONFIG_MAP, "").strip()
    if not config_map:
        return dict(template.volume)
    own = {"configMap": {"name": config_map}}
    projected = template.volume.get("projected")
    if not isinstance(projected, Mapping):
        return {"name": template.volume["name"], **own}
    sources = [
        source
        for source in projected.get("sources", [])
        if not ("configMap" in source or "downwardAPI" in source)
    ]
    return {
        "name": template.volume["name"],
        "projected": {**projected, "sources": [own, *sources]},
    }


def _app_env_patch(pod: Mapping[str, Any], template: InjectionTemplate) -> JsonPatch:
    """OPENAI_BASE_URL and friends on each app container that does not set them already."""
    annotations = pod.get("metadata", {}).get("annotations") or {}
    if str(annotations.get(ANNOTATION_BASE_URLS, "")).strip().lower() in _NO:
        return []
    patch: JsonPatch = []
    for index, container in enumerate(_containers(pod, "containers")):
        env = container.get("env")
        present = {item.get("name") for item in env or []}
        missing = [dict(item) for item in template.app_env if item["name"] not in present]
        patch += _append(env, f"/spec/containers/{index}/env", missing)
    return patch


def build_patch(pod: Mapping[str, Any], template: InjectionTemplate) -> JsonPatch:
    """The JSON Patch (what an admission webhook answers with) that adds the sidecar, its
    config and the apps' base URLs."""
    metadata = pod.get("metadata", {})
    spec = pod.get("spec", {})
    annotations = metadata.get("annotations")
    existing_annotations = annotations or {}

    new_annotations = {ANNOTATION_STATUS: STATUS_INJECTED}
    if ANNOTATION_CONFIG not in existing_annotations and (
        ANNOTATION_CONFIG_MAP not in existing_annotations
    ):
        new_annotations.update(template.annotations)
    patch = _add_entries(annotations, "/metadata/annotations", new_annotations)
    patch += _add_entries(metadata.get("labels"), "/metadata/labels", template.labels)
    patch += _app_env_patch(pod, template)

    volumes = spec.get("volumes")
    if not any(volume.get("name") == template.volume["name"] for volume in volumes or []):
        patch += _append(volumes, "/spec/volumes", [_config_volume(existing_annotations, template)])

    container = dict(template.container)
    if template.native:
        init_containers = spec.get("initContainers")
        if init_containers is None:
            patch.append({"op": "add", "path": "/spec/initContainers", "value": [container]})
        else:  # first, so that later init containers can reach the proxy too
            patch.append({"op": "add", "path": "/spec/initContainers/0", "value": container})
    else:
        patch += _append(spec.get("containers"), "/spec/containers", [container])

    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None or grace < template.termination_grace_period_seconds:
        patch.append(
            {
                "op": "add",
                "path": "/spec/terminationGracePeriodSeconds",
                "value": template.termination_grace_period_seconds,
            }
        )
    return patch


def review_response(
    review: Mapping[str, Any], template: InjectionTemplate, scope: Scope
) -> tuple[dict[str, Any], Decision]:
    """The AdmissionReview answer: always allowed; a patch when the pod gets the sidecar."""
    request = review.get("request")
    if not isinstance(request, Mapping) or "uid" not in request:
        raise ValueError("not an AdmissionReview request (no request.uid)")
    response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
    answer = {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": response,
    }
    pod = request.get("object")
    kind = (request.get("kind") or {}).get("kind")
    if kind != "Pod" or request.get("operation") != "CREATE" or not isinstance(pod, Mapping):
        return answer, Decision(False, f"not a pod creation ({kind} {request.get('operation')})")
    namespace = request.get("namespace") or pod.get("metadata", {}).get("namespace", "")
    decision = decide(pod, namespace, scope)
    if decision.inject:
        patch = build_patch(pod, template)
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return answer, decision
