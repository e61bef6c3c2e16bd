"""Sample pods and AdmissionReview requests as the API server sends them."""

from __future__ import annotations

import copy
import uuid
from typing import Any


def app_container(name: str = "app", env: dict[str, str] | None = None) -> dict[str, Any]:
    """An app container as a Deployment would create it (after API defaulting)."""
    container: dict[str, Any] = {
        "name": name,
        "image": f"registry.example.com/{name}:1.4.2",
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    if env is not None:
        container["env"] = [{"name": key, "value": value} for key, value in env.items()]
    return container


def pod(
    *containers: dict[str, Any],
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    init_containers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A pod of a ReplicaSet (generateName, no name yet), as the admission request carries it."""
    metadata: dict[str, Any] = {
        "generateName": "chat-api-7d9f8b6c5-",
        "labels": {"app": "chat-api", "pod-template-hash": "7d9f8b6c5", **(labels or {})},
    }
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    spec: dict[str, Any] = {
        "containers": [copy.deepcopy(c) for c in containers] or [app_container()],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "securityContext": {},
        "schedulerName": "default-scheduler",
        "enableServiceLinks": True,
        "volumes": [
            {
                "name": "kube-api-access-x2v9q",
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
                    ],
                },
            }
        ],
    }
    if init_containers is not None:
        spec["initContainers"] = init_containers
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def admission_review(obj: dict[str, Any], namespace: str = "shop") -> dict[str, Any]:
    """An admission.k8s.io/v1 AdmissionReview for creating `obj` in `namespace`."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "groups": ["system:serviceaccounts", "system:authenticated"],
            },
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def patched(obj: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """The pod after applying the answer's JSON patch; checks it is a valid 1.30 Pod."""
    import base64
    import json

    import jsonpatch
    import kubernetes_validate

    response = answer["response"]
    assert response["allowed"] is True
    if "patch" not in response:
        return obj
    assert response["patchType"] == "JSONPatch"
    operations = json.loads(base64.b64decode(response["patch"]))
    result: dict[str, Any] = jsonpatch.apply_patch(obj, operations)
    kubernetes_validate.validate(result, "1.30.0", strict=True)
    return result


def env_of(container: dict[str, Any]) -> dict[str, str]:
    """A container's env as {name: value}."""
    return {item["name"]: item.get("value", "") for item in container.get("env") or []}


def names(containers: list[dict[str, Any]] | None) -> list[str]:
    """Container names in order."""
    return [container["name"] for container in containers or []]
