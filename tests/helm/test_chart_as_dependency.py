"""The named templates in a user's own chart that depends on model-sidecar."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.helpers.chart import CHART_DIR, Rendered, sidecar_containers, validate_manifest

PARENT_CHART = """\
apiVersion: v2
name: chat-api
version: 1.0.0
dependencies:
  - name: model-sidecar
    version: 0.1.0
"""

# The README's snippet, as a user pastes it into their Deployment.
PARENT_DEPLOYMENT = """\
{{- $ms := dict "Values" (index .Values "model-sidecar") "Release" .Release }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-chat-api
spec:
  selector:
    matchLabels: {app: chat-api}
  template:
    metadata:
      labels:
        app: chat-api
        {{- include "model-sidecar.podLabels" $ms | nindent 8 }}
      annotations:
        {{- include "model-sidecar.podAnnotations" $ms | nindent 8 }}
    spec:
      terminationGracePeriodSeconds: {{ include "model-sidecar.terminationGracePeriodSeconds" $ms }}
      initContainers:
        {{- include "model-sidecar.initContainers" $ms | nindent 8 }}
      containers:
        - name: app
          image: registry.example.com/chat-api:1.0
          env:
            {{- include "model-sidecar.appEnv" $ms | nindent 12 }}
        {{- include "model-sidecar.containers" $ms | nindent 8 }}
      volumes:
        {{- include "model-sidecar.volumes" $ms | nindent 8 }}
"""


def _render_parent(tmp_path: Path, values: dict[str, Any]) -> Rendered:
    parent = tmp_path / "chat-api"
    (parent / "templates").mkdir(parents=True)
    (parent / "Chart.yaml").write_text(PARENT_CHART)
    (parent / "values.yaml").write_text(yaml.safe_dump({"model-sidecar": {}}))
    (parent / "templates" / "deployment.yaml").write_text(PARENT_DEPLOYMENT)
    shutil.copytree(CHART_DIR, parent / "charts" / "model-sidecar")
    helm.disable_logging()
    with helm.Chart.load(parent) as chart:
        return Rendered(chart.render(values, name="shop", namespace="shop"))


@pytest.mark.parametrize("native", [True, False])
def test_named_templates_in_a_users_chart(tmp_path: Path, native: bool) -> None:
    out = _render_parent(
        tmp_path,
        {"model-sidecar": {"sidecar": {"native": native}, "config": {"log": {"level": "debug"}}}},
    )
    for doc in out.docs:
        validate_manifest(doc)
    deployment = out.one("Deployment")
    spec = deployment["spec"]["template"]["spec"]
    (sidecar,) = sidecar_containers(spec)
    assert (sidecar in (spec.get("initContainers") or [])) is native
    assert sidecar.get("restartPolicy") == ("Always" if native else None)
    (volume,) = spec["volumes"]
    config_map = out.one("ConfigMap")  # the dependency's own ConfigMap, same release
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert yaml.safe_load(config_map["data"]["config.yaml"]) == {"log": {"level": "debug"}}
    assert spec["terminationGracePeriodSeconds"] == 45
    pod_metadata = deployment["spec"]["template"]["metadata"]
    assert pod_metadata["labels"]["model-sidecar.io/sidecar"] == "true"
    assert "checksum/model-sidecar-config" in pod_metadata["annotations"]
