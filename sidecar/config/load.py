"""Loading the config: the YAML file, MODEL_SIDECAR_* environment and flags, merged, validated.

Every error is reported at once, each with where it is (`file:line`, or the flag or variable
that set the value; sidecar/config/explain.py words them).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from sidecar.config.explain import Places, dotted, explain, explain_located, model_at
from sidecar.config.locations import Loc, YamlDocument
from sidecar.config.models import BUILTIN_UPSTREAMS, SidecarConfig

ENV_PREFIX = "MODEL_SIDECAR_"
# Sections no cross-check reads: an error in one cannot hide another one's cross-check errors,
# so a second validation may drop such a section to find the errors hidden behind it.
_CROSS_CHECKED = frozenset({"upstreams", "default_upstream", "experiments"})
_MAX_PASSES = 3
# Stands in for an upstream URL that failed, in the second validation (cross-checks never
# read URLs).
_PLACEHOLDER_URL = "http://placeholder.invalid"


class ConfigError(Exception):
    """A configuration that cannot be used; `errors` lists every problem, one per line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def format_validation_error(
    error: ValidationError,
    source: str,
    lines: Mapping[Loc, int] | None = None,
    origins: Mapping[Loc, str] | None = None,
) -> list[str]:
    """One readable line per problem: where it is, what is wrong."""
    return explain(error.errors(), Places(source, lines or {}, origins))


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


def _merge_upstream_urls(
    data: dict[str, Any], urls: Mapping[str, str], origin: str, origins: dict[Loc, str]
) -> None:
    upstreams = dict(data.get("upstreams") or {})
    for name, url in urls.items():
        entry = upstreams.get(name)
        if isinstance(entry, dict):
            upstreams[name] = {**entry, "url": url}
            origins[("upstreams", name, "url")] = origin
            continue
        if name in BUILTIN_UPSTREAMS:
            upstreams[name] = {"url": url, "protocol": BUILTIN_UPSTREAMS[name].protocol}
        else:
            upstreams[name] = {"url": url, "protocol": "openai", "path_prefix": f"/{name}"}
        origins[("upstreams", name)] = origin
    data["upstreams"] = upstreams


def read_config_document(path: str | Path) -> YamlDocument:
    """The YAML config file with the line of each key; ConfigError when unreadable, not YAML,
    or not a mapping."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: cannot read: not UTF-8 text ({exc.reason})"]) from exc
    import yaml

    from sidecar.config.yaml_lines import describe_yaml_error, parse_yaml

    try:
        document = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError([describe_yaml_error(exc, str(path))]) from exc
    if document.data is None:
        document.data = {}
    if not isinstance(document.data, dict):
        kind = "a list" if isinstance(document.data, list) else repr(document.data)
        raise ConfigError([f"{path}:1: expected a mapping (key: value lines), got {kind}"])
    return document


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping in a YAML config file; ConfigError when unreadable or not a mapping."""
    data: dict[str, Any] = read_config_document(path).data
    return data


def load_config(
    path: str | Path | None = None,
    *,
    listen: str | None = None,
    admin_listen: str | None = None,
    admin_token_file: str | None = None,
    upstreams: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> SidecarConfig:
    """The effective config: flags beat MODEL_SIDECAR_* environment beat the file."""
    env = os.environ if environ is None else environ
    path = path or env.get(ENV_PREFIX + "CONFIG") or None
    document = read_config_document(path) if path else YamlDocument({})
    data: dict[str, Any] = document.data
    source = str(path) if path else "config"
    located: list[tuple[int, str]] = [
        (
            again,
            f"{source}:{again}: {dotted(loc)}: given twice (first on line {first}); "
            "only the last one would count",
        )
        for loc, first, again in document.duplicates
    ]
    errors: list[str] = []
    # Values set by a flag or variable: their errors name it instead of a line of the file.
    origins: dict[Loc, str] = {}
    settings = (
        ("listen", listen, "--listen"),
        ("admin_listen", admin_listen, "--admin-listen"),
        ("admin_token_file", admin_token_file, "--admin-token-file"),
    )
    for key, flag, flag_name in settings:
        variable = ENV_PREFIX + key.upper()
        value = flag or env.get(variable)
        if value:
            data[key] = value
            origins[(key,)] = flag_name if flag else variable
    env_upstreams = env.get(ENV_PREFIX + "UPSTREAMS", "")
    if env_upstreams:
        try:
            items = [item for item in env_upstreams.split(",") if item.strip()]
            _merge_upstream_urls(
                data, parse_upstream_flags(items), ENV_PREFIX + "UPSTREAMS", origins
            )
        except ConfigError as exc:
            errors.extend(f"{ENV_PREFIX}UPSTREAMS: {line}" for line in exc.errors)
    if upstreams:
        _merge_upstream_urls(data, upstreams, "--upstream", origins)
    places = Places(source, document.lines, origins)
    try:
        config = SidecarConfig.model_validate(data)
    except ValidationError as exc:
        located += explain_located(_every_error(data, exc), places)
        raise ConfigError(errors + _in_order(located)) from exc
    if errors or located:
        raise ConfigError(errors + _in_order(located))
    return config


def _in_order(located: list[tuple[int, str]]) -> list[str]:
    return [text for _, text in sorted(located, key=lambda item: item[0])]


def _every_error(data: dict[str, Any], first: ValidationError) -> list[ErrorDetails]:
    """The errors of `first`, and those its errors hid: checks that pydantic runs only once the
    values they read are valid (default_upstream, path prefixes, experiments across sections,
    a section's own cross-field checks). Validates again with what failed set aside where that
    cannot change what the hidden checks see: unknown keys dropped, sections no cross-check
    reads left at their defaults, failed upstream URLs replaced."""
    errors = list(first.errors())
    seen = {_key(item) for item in errors}
    attempt = copy.deepcopy(data)
    latest = errors
    for _ in range(_MAX_PASSES):
        if not any([_set_aside(attempt, tuple(item["loc"])) for item in latest]):
            break
        try:
            SidecarConfig.model_validate(attempt)
        except ValidationError as again:
            latest = [item for item in again.errors() if _key(item) not in seen]
        else:
            break
        if not latest:
            break
        errors += latest
        seen |= {_key(item) for item in latest}
    return errors


def _key(item: ErrorDetails) -> tuple[Loc, str]:
    return tuple(item["loc"]), str(item["msg"])


def _set_aside(data: dict[str, Any], loc: Loc) -> bool:
    """Set aside the value at `loc` if that cannot make an error appear or vanish elsewhere;
    True when something changed."""
    if not loc or not isinstance(loc[0], str):
        return False
    if loc[0] not in _CROSS_CHECKED:
        # An unknown top-level key, or a section whose default stands in for it.
        if loc[0] in data:
            del data[loc[0]]
            return True
        return False
    parent: Any = data
    for part in loc[:-1]:
        in_dict = isinstance(parent, dict) and part in parent
        in_list = isinstance(parent, list) and isinstance(part, int) and 0 <= part < len(parent)
        if not (in_dict or in_list):
            return False
        parent = parent[part]
    last = loc[-1]
    if not isinstance(parent, dict) or last not in parent:
        return False
    if _is_unknown_key(loc):
        del parent[last]
        return True
    if len(loc) == 3 and loc[0] == "upstreams" and last == "url":
        if parent[last] == _PLACEHOLDER_URL:
            return False
        parent[last] = _PLACEHOLDER_URL
        return True
    return False


def _is_unknown_key(loc: Loc) -> bool:
    model = model_at(loc[:-1])
    return model is not None and str(loc[-1]) not in model.model_fields
