"""Where each part of a config came from: the key paths pydantic names, and their lines.

Apart from the YAML reader (sidecar/config/yaml_lines.py), so that a sidecar started without a
config file never imports PyYAML (issue #23).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Loc = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """The data of a YAML document and where each of its keys and list items is."""

    data: Any
    # 1-based line of each mapping key and list item, by path.
    lines: dict[Loc, int] = field(default_factory=dict)
    # (path, first line, repeated line) of keys given twice in one mapping.
    duplicates: list[tuple[Loc, int, int]] = field(default_factory=list)
