"""A user's own chart that depends on model-sidecar and uses its named templates (README)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from tests.helpers.chart import CHART_DIR, Rendered

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


def render_parent(tmp_path: Path, values: dict[str, Any]) -> Rendered:
    """`helm template shop chat-api -n shop`, the chart copied under tmp_path as its dependency."""
    parent = tmp_path / "chat-api"
    (parent / "templates").mkdir(parents=True)
    (parent / "Chart.yaml").write_text(PARENT_CHART)
    (parent / "values.yaml").write_text(yaml.safe_dump({"model-sidecar": {}}))
    (parent / "templates" / "deployment.yaml").write_text(PARENT_DEPLOYMENT)
    shutil.copytree(CHART_DIR, parent / "charts" / "model-sidecar")
    helm.disable_logging()
    with helm.Chart.load(parent) as chart:
        return Rendered(chart.render(values, name="shop", namespace="shop"))
