"""docs/configuration.md: generated from the config models, complete, and its example valid."""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sidecar.config import doc as config_doc
from sidecar.config.load import ConfigError, load_config
from sidecar.config.models import SidecarConfig
from tests.helpers.sidecar import SidecarFactory

DOC = config_doc.DEFAULT_PATH


def model_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every field reachable from `model`, by dotted path (`[]` for list items, `<name>` for
    map values), found independently of the generator."""
    for name, field in model.model_fields.items():
        path = prefix + name
        yield path, field
        pending: list[tuple[Any, str]] = [(field.annotation, path)]
        while pending:
            annotation, where = pending.pop()
            origin = get_origin(annotation)
            if origin is list:
                pending.append((get_args(annotation)[0], where + "[]"))
            elif origin is dict:
                pending.append((get_args(annotation)[1], where + ".<name>"))
            elif origin in (Union, types.UnionType):
                pending.extend((arg, where) for arg in get_args(annotation))
            elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
                yield from model_fields(annotation, where + ".")


ALL_FIELDS = list(model_fields(SidecarConfig))


def example_yaml(doc: str) -> str:
    """The YAML block under the example heading of the doc."""
    section = doc.split(config_doc.EXAMPLE_HEADING, 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match is not None, "no ```yaml block under the example heading"
    return match.group(1)


def is_set(data: Any, parts: list[str]) -> bool:
    """Whether the raw YAML sets the key at this path (in any item or map entry)."""
    if not parts:
        return True
    head, rest = parts[0], parts[1:]
    if head == "<name>":
        return isinstance(data, dict) and any(is_set(value, rest) for value in data.values())
    items = head.endswith("[]")
    key = head.removesuffix("[]")
    if not isinstance(data, dict) or key not in data:
        return False
    if items:
        return any(is_set(item, rest) for item in data[key])
    return is_set(data[key], rest)


def test_committed_doc_is_up_to_date(tmp_path: Path) -> None:
    assert config_doc.main(["--check"]) == 0, "run python -m sidecar.config.doc"
    stale = tmp_path / "configuration.md"
    stale.write_text(DOC.read_text().replace("`16384`", "`16385`"))
    assert config_doc.main(["--check", "--path", str(stale)]) == 1
    assert config_doc.main(["--path", str(stale)]) == 0
    assert stale.read_text() == DOC.read_text()
    assert config_doc.main(["--check", "--path", str(tmp_path / "missing.md")]) == 1


def test_the_config_error_points_at_this_doc(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.yaml"
    path.write_text("limits: {max_request_bytes: 1}\n")
    with pytest.raises(ConfigError, match=r"docs/configuration\.md"):
        load_config(path, environ={})
    assert DOC.relative_to(DOC.parents[1]) == Path("docs/configuration.md")


@pytest.mark.parametrize("path, field", ALL_FIELDS, ids=[path for path, _ in ALL_FIELDS])
def test_every_field_is_documented_with_its_description(path: str, field: FieldInfo) -> None:
    assert field.description, f"{path} has no Field(description=...)"
    rows = [line for line in DOC.read_text().splitlines() if line.startswith(f"| `{path}` |")]
    assert len(rows) == 1, f"{path}: expected one row in docs/configuration.md, got {rows}"
    assert field.description.replace("|", "\\|") in rows[0]
    expected_default = "**required**" if field.is_required() else "`"
    assert expected_default in rows[0].split(" | ")[2] or "see below" in rows[0]


def test_documented_defaults_are_the_models_defaults() -> None:
    rows = {line.split(" | ")[0][3:-1]: line.split(" | ") for line in DOC.read_text().splitlines()}
    assert rows["limits.max_request_body_bytes"][2] == "`33554432`"
    assert rows["retries.statuses"][2] == "`[429, 502, 503, 504]`"
    assert rows["experiments[].stop_loss.max_p95_ratio"][2] == "`1.5`"
    assert rows["experiments[].stop_loss.max_p95_ratio"][1] == "number or null, > 0"
    assert rows["confidence.threshold"][1] == "number, ≥ 0, ≤ 1"
    assert rows["log.level"][1] == "one of: `debug`, `info`, `warning`, `error`"
    assert rows["upstreams.<name>.url"][2] == "**required**"


def test_example_yaml_validates_and_sets_every_key(tmp_path: Path) -> None:
    text = example_yaml(DOC.read_text())
    path = tmp_path / "example.yaml"
    path.write_text(text)
    config = load_config(path, environ={})
    assert [experiment.name for experiment in config.experiments] == [
        "chat-llama",
        "haiku-shadow",
        "mini-rollout",
    ]
    assert config.upstreams["vllm"].path_prefix == "/vllm"
    # The doc says every other section is at its default: hold it to that.
    defaults = SidecarConfig()
    for name in ("limits", "telemetry", "log", "confidence", "retries", "repeatability"):
        assert getattr(config, name) == getattr(defaults, name), name
    raw = yaml.safe_load(text)
    unset = [path for path, _ in ALL_FIELDS if not is_set(raw, path.split("."))]
    assert unset == [], f"keys the complete example does not set: {unset}"


def _section(doc: str, name: str) -> str:
    return doc.split(f"## `{name}`\n", 1)[1].split("\n## ", 1)[0]


# A changed value for every top-level key, to see which ones a reload really applies.
CHANGES: dict[str, Any] = {
    "listen": "127.0.0.1:1",
    "admin_listen": "127.0.0.1:2",
    "upstreams": {"extra": {"url": "http://127.0.0.1:3", "path_prefix": "/extra"}},
    "default_upstream": "anthropic",
    "limits": {"max_request_body_bytes": 1},
    "telemetry": {"queue_size": 5},
    "log": {"level": "debug"},
    "cost": {"enabled": False},
    "confidence": {"threshold": 0.9},
    "retries": {"enabled": True},
    "repeatability": {"enabled": False},
    "experiments": [
        {
            "name": "e",
            "match": {"model": "m"},
            "control": {"weight": 50},
            "candidates": [{"model": "n", "weight": 50}],
        }
    ],
    "feedback": {"enabled": False},
    "audit": {"max_chars": 10},
    "ui": {"snapshot_interval_seconds": 10},
    "admin_token_file": "admin-token",  # written under the test's tmp_path first
    "slos": [{"name": "s", "kind": "success", "objective": 0.99}],
    "attribution": {"header": "x-team"},
    "budgets": {"search": {"usd_per_day": 10}},
}
# What a change needs beside it to be valid (budgets split by the attribution header).
CHANGE_NEEDS: dict[str, dict[str, Any]] = {"budgets": {"attribution": {"header": "x-team"}}}


async def test_reload_behaviour_in_the_doc_is_what_a_reload_does(
    sidecar_factory: SidecarFactory, tmp_path: Path
) -> None:
    assert set(CHANGES) == set(SidecarConfig.model_fields), "add a change for the new key"
    (tmp_path / CHANGES["admin_token_file"]).write_text("reload-test-token\n")
    changes = {**CHANGES, "admin_token_file": str(tmp_path / CHANGES["admin_token_file"])}
    doc = DOC.read_text()
    sidecar = await sidecar_factory()
    original = sidecar.config
    for name, value in changes.items():
        changed = SidecarConfig.model_validate(
            {**original.model_dump(mode="json"), **CHANGE_NEEDS.get(name, {}), name: value}
        )
        assert getattr(changed, name) != getattr(original, name), name
        sidecar.reload(changed)
        applied = getattr(sidecar.config, name) == getattr(changed, name)
        line = next(x for x in _section(doc, name).splitlines() if x.startswith("Reload:"))
        assert line.startswith("Reload: live." if applied else "Reload: needs a restart"), name
        sidecar.reload(original)
