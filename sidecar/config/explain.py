"""Config errors in plain words, each with where it is: `file:line`, or the flag or variable
that set the value; "did you mean" for a misspelt key or value.

pydantic's locations (`("experiments", 0, "match")`) are looked up in the line map of the YAML
file (sidecar/config/yaml_lines.py); its messages are replaced by the sidecar's own for the
common kinds of mistake (a number where text was expected, a value out of range, an unknown
key), so that an operator never reads validator internals.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from sidecar.config.experiments import ConfigProblems
from sidecar.config.locations import Loc
from sidecar.config.models import SidecarConfig

DOCS = "docs/configuration.md"


class Places:
    """Where a value came from: the file's lines, and the flags or variables that set values."""

    def __init__(
        self, source: str, lines: Mapping[Loc, int], origins: Mapping[Loc, str] | None = None
    ) -> None:
        self.source = source
        self.lines = lines
        self.origins = origins or {}

    def origin(self, loc: Loc) -> str | None:
        """The flag or variable that set the value at `loc` (or an enclosing one), if any."""
        for end in range(len(loc), 0, -1):
            origin = self.origins.get(loc[:end])
            if origin is not None:
                return origin
        return None

    def line(self, loc: Loc) -> int | None:
        """The file's line of `loc`, or of the nearest enclosing key that is in the file."""
        for end in range(len(loc), 0, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def of(self, loc: Loc) -> str:
        """`file:line`, the flag or variable, or the file alone, for a location."""
        origin = self.origin(loc)
        if origin is not None:
            return origin
        line = self.line(loc)
        return f"{self.source}:{line}" if line is not None else self.source

    def order(self, loc: Loc) -> int:
        """Sort key: flags and variables first, then by line of the file."""
        if self.origin(loc) is not None:
            return -1
        return self.line(loc) or 0


def explain_located(errors: Sequence[ErrorDetails], places: Places) -> list[tuple[int, str]]:
    """(sort key, line of text) per problem: where it is, what is wrong, in plain words."""
    lines: list[tuple[int, str]] = []
    for item in errors:
        loc = tuple(item["loc"])
        cause = item.get("ctx", {}).get("error") if item["type"] == "value_error" else None
        if isinstance(cause, ConfigProblems):
            lines.extend(
                (places.order(problem.loc), f"{places.of(problem.loc)}: {problem.text}")
                for problem in cause.problems
            )
            continue
        where = dotted(loc) or "(top level)"
        lines.append((places.order(loc), f"{places.of(loc)}: {where}: {message(item, loc)}"))
    return lines


def explain(errors: Sequence[ErrorDetails], places: Places) -> list[str]:
    """One line per problem, in the order of the file: where it is, what is wrong."""
    return [text for _, text in sorted(explain_located(errors, places), key=lambda x: x[0])]


def dotted(loc: Loc) -> str:
    """`experiments.0.match` from ("experiments", 0, "match")."""
    return ".".join(str(part) for part in loc)


def message(item: ErrorDetails, loc: Loc) -> str:
    """The problem in plain words (pydantic's own wording for kinds not listed here)."""
    kind = item["type"]
    ctx: dict[str, Any] = {key: _plain(value) for key, value in (item.get("ctx") or {}).items()}
    got = describe(item.get("input"))
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "missing":
        return "required, but not set"
    if kind == "value_error":
        cause = ctx.get("error")
        return str(cause) if cause is not None else item["msg"]
    if kind == "literal_error":
        allowed = [str(value) for value in _literal_values(loc)]
        text = f"expected one of {ctx.get('expected', ', '.join(allowed))}; got {got}"
        return text + _did_you_mean(item.get("input"), allowed)
    simple = {
        "string_type": f"expected text, got {got}",
        "int_type": f"expected a whole number, got {got}",
        "int_parsing": f"expected a whole number, got {got}",
        "int_from_float": f"expected a whole number, got {got}",
        "float_type": f"expected a number, got {got}",
        "float_parsing": f"expected a number, got {got}",
        "bool_type": f"expected true or false, got {got}",
        "bool_parsing": f"expected true or false, got {got}",
        "dict_type": f"expected a mapping (key: value lines), got {got}",
        "model_type": f"expected a mapping (key: value lines), got {got}",
        "model_attributes_type": f"expected a mapping (key: value lines), got {got}",
        "list_type": f"expected a list, got {got}",
        "greater_than": f"must be more than {ctx.get('gt')}, got {got}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}, got {got}",
        "less_than": f"must be less than {ctx.get('lt')}, got {got}",
        "less_than_equal": f"must be at most {ctx.get('le')}, got {got}",
    }
    if kind in simple:
        return simple[kind]
    if kind == "too_short":
        if isinstance(item.get("input"), str):
            return "must not be empty"
        return f"needs at least {ctx.get('min_length')} item(s), got {got}"
    if kind == "string_too_short":
        return "must not be empty"
    return str(item["msg"])


def _plain(value: Any) -> Any:
    """0 rather than 0.0 in a limit."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def describe(value: Any) -> str:
    """A value as a person typed it in YAML, for "expected X, got Y"."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1]) if loc else ""
    model = model_at(loc[:-1])
    fields = list(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown setting{hint} (every key is in {DOCS})"


def _did_you_mean(value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or not choices:
        return ""
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unwrap(annotation: Any) -> Any:
    """X from `X | None`."""
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(inner) == 1:
            return inner[0]
    return annotation


def annotation_at(loc: Loc) -> Any:
    """The type the config expects at a location, or None when it cannot be followed."""
    current: Any = SidecarConfig
    for part in loc:
        current = _unwrap(current)
        origin = get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif origin is dict:
            current = get_args(current)[1]
        elif origin is list:
            current = get_args(current)[0]
        else:
            return None
    return _unwrap(current)


def model_at(loc: Loc) -> type[BaseModel] | None:
    """The config model (section) at a location, or None."""
    annotation = annotation_at(loc)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _literal_values(loc: Loc) -> tuple[Any, ...]:
    annotation = annotation_at(loc)
    return get_args(annotation) if get_origin(annotation) is Literal else ()
