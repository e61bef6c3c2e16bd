"""Loading the config: the YAML file, MODEL_SIDECAR_* environment and flags, merged, validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sidecar.config.experiments import (
    ConfigProblems,
)
from sidecar.config.models import BUILTIN_UPSTREAMS, SidecarConfig

ENV_PREFIX = "MODEL_SIDECAR_"


class ConfigError(Exception):
    """A configuration that cannot be used; `errors` lists every problem, one per line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def format_validation_error(error: ValidationError, source: str) -> list[str]:
    """One readable line per problem: where it is, what is wrong."""
    lines: list[str] = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling against docs/configuration.md)"
        elif item["type"] == "value_error":
            cause = item.get("ctx", {}).get("error")
            if isinstance(cause, ConfigProblems):
                lines.extend(f"{source}: {problem}" for problem in cause.problems)
                continue
            message = str(cause) if cause is not None else message
        lines.append(f"{source}: {where}: {message}")
    return lines


def parse_upstream_flags(values: list[str]) -> dict[str, str]:
    """{'openai': 'http://…'} from ['openai=http://…']; raises ConfigError on bad items."""
    result: dict[str, str] = {}
    errors = []
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name.strip() or not url.strip():
            errors.append(f"upstream {value!r}: expected NAME=URL")
            continue
        result[name.strip()] = url.strip()
    if errors:
        raise ConfigError(errors)
    return result


def _merge_upstream_urls(data: dict[str, Any], urls: Mapping[str, str]) -> None:
    upstreams = dict(data.get("upstreams") or {})
    for name, url in urls.items():
        entry = upstreams.get(name)
        if isinstance(entry, dict):
            upstreams[name] = {**entry, "url": url}
        elif name in BUILTIN_UPSTREAMS:
            upstreams[name] = {"url": url, "protocol": BUILTIN_UPSTREAMS[name].protocol}
        else:
            upstreams[name] = {"url": url, "protocol": "openai", "path_prefix": f"/{name}"}
    data["upstreams"] = upstreams


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping in a YAML config file; ConfigError when unreadable or not a mapping."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            [f"{path}: expected a mapping at the top level, got {type(data).__name__}"]
        )
    return data


def load_config(
    path: str | Path | None = None,
    *,
    listen: str | None = None,
    admin_listen: str | None = None,
    upstreams: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> SidecarConfig:
    """The effective config: flags beat MODEL_SIDECAR_* environment beat the file."""
    env = os.environ if environ is None else environ
    path = path or env.get(ENV_PREFIX + "CONFIG") or None
    data = read_config_file(path) if path else {}
    source = str(path) if path else "config"
    errors: list[str] = []

    for key, flag in (("listen", listen), ("admin_listen", admin_listen)):
        value = flag or env.get(ENV_PREFIX + key.upper())
        if value:
            data[key] = value
    env_upstreams = env.get(ENV_PREFIX + "UPSTREAMS", "")
    if env_upstreams:
        try:
            items = [item for item in env_upstreams.split(",") if item.strip()]
            _merge_upstream_urls(data, parse_upstream_flags(items))
        except ConfigError as exc:
            errors.extend(f"{ENV_PREFIX}UPSTREAMS: {line}" for line in exc.errors)
    if upstreams:
        _merge_upstream_urls(data, upstreams)
    if errors:
        raise ConfigError(errors)
    try:
        return SidecarConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc
