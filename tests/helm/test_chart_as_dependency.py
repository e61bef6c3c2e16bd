"""The named templates in a user's own chart that depends on model-sidecar."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers.chart import sidecar_containers, validate_manifest
from tests.helpers.parent_chart import render_parent


@pytest.mark.parametrize("native", [True, False])
def test_named_templates_in_a_users_chart(tmp_path: Path, native: bool) -> None:
    out = render_parent(
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
