"""The keys of the config models as rows: dotted path, type with bounds, default, description."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo


@dataclass(frozen=True)
class KeyDoc:
    """One row of the reference: a key's dotted path, type, default and description."""

    path: str
    type: str
    default: str
    description: str


def iter_key_docs(model: type[BaseModel], prefix: str = "") -> Iterator[KeyDoc]:
    """Every key of `model` and of the models it nests, depth first, as dotted paths."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        yield KeyDoc(path, field_type(field), field_default(field), field.description or "")
        for inner, joint in nested_models(field.annotation):
            yield from iter_key_docs(inner, f"{path}{joint}")


def nested_models(annotation: Any) -> Iterator[tuple[type[BaseModel], str]]:
    """The models inside an annotation, each with how its keys join the parent's path."""
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, "."
    elif origin is list:
        for inner, joint in nested_models(get_args(annotation)[0]):
            yield inner, "[]" + joint
    elif origin is dict:
        for inner, joint in nested_models(get_args(annotation)[1]):
            yield inner, ".<name>" + joint
    elif origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            yield from nested_models(arg)


def type_name(annotation: Any) -> str:
    """A reader's name for a field's type: `number`, `list of integer`, `one of: a, b`."""
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of: " + ", ".join(f"`{value}`" for value in get_args(annotation))
    if origin is list:
        return f"list of {type_name(get_args(annotation)[0])}"
    if origin is dict:
        return f"map of name to {type_name(get_args(annotation)[1])}"
    if origin in (Union, types.UnionType):
        names = [type_name(arg) for arg in get_args(annotation) if arg is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in get_args(annotation) else "")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return simple.get(annotation, getattr(annotation, "__name__", str(annotation)))


def field_type(field: FieldInfo) -> str:
    """The type with its bounds, e.g. `number, ≥ 0, ≤ 1`."""
    bounds = []
    for item in field.metadata:
        if isinstance(item, Gt):
            bounds.append(f"> {item.gt}")
        elif isinstance(item, Ge):
            bounds.append(f"≥ {item.ge}")
        elif isinstance(item, Lt):
            bounds.append(f"< {item.lt}")
        elif isinstance(item, Le):
            bounds.append(f"≤ {_scalar(item.le)}")
        elif isinstance(item, MinLen):
            bounds.append(f"at least {item.min_length} long")
    return ", ".join([type_name(field.annotation), *bounds])


def _scalar(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return format(value, "g")
    return str(value) if value != "" else '""'


def format_value(value: Any) -> str:
    """A default as it would be written in YAML, in backticks; a section's keys by name."""
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, dict) and value and isinstance(next(iter(value.values())), BaseModel):
        return ", ".join(f"`{key}`" for key in value) + " (see below)"
    if isinstance(value, (list, dict)):
        return f"`{json.dumps(value)}`"
    return f"`{_scalar(value)}`"


def field_default(field: FieldInfo) -> str:
    """The default of a field, or `required`."""
    if field.is_required():
        return "**required**"
    return format_value(field.get_default(call_default_factory=True))
