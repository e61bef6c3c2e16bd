"""YAML read with the line of every key, so that each config error can say `file:line`.

PyYAML's safe loader is used as it is; the node tree it builds first keeps each key's position,
which is walked once into a map from a path (`("experiments", 0, "match")`, as pydantic names
locations) to its line. Duplicate keys, which YAML loaders silently resolve to the last one,
are collected so that they can be reported.
"""

from __future__ import annotations

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sidecar.config.locations import Loc, YamlDocument

__all__ = ["Loc", "YamlDocument", "describe_yaml_error", "parse_yaml"]


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document with the safe loader; yaml.YAMLError when it is not valid."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    document = YamlDocument(data)
    if node is not None:
        _walk(node, (), document, set())
    return document


def _walk(node: Node, loc: Loc, document: YamlDocument, open_nodes: set[int]) -> None:
    if id(node) in open_nodes:  # an alias of an enclosing node: already being walked
        return
    open_nodes.add(id(node))
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            path = (*loc, key)
            if key in seen:
                document.duplicates.append((path, seen[key], line))
            seen[key] = line
            document.lines[path] = line  # the last one is the one that counts
            _walk(value_node, path, document, open_nodes)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            path = (*loc, index)
            document.lines[path] = item.start_mark.line + 1
            _walk(item, path, document, open_nodes)
    open_nodes.discard(id(node))


def describe_yaml_error(error: yaml.YAMLError, source: str) -> str:
    """`source:LINE:COLUMN: not valid YAML: what` (the parser's own words, without its
    `<unicode string>` stream name)."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        what = error.problem or "syntax error"
        if "'\\t'" in what:
            what += " (YAML indents with spaces, never tabs)"
        if error.context:
            context_mark = error.context_mark
            started = (
                f" that started on line {context_mark.line + 1}"
                if context_mark is not None and context_mark is not mark
                else ""
            )
            what = f"{what}, {error.context}{started}"
        return f"{where}: not valid YAML: {what}"
    return f"{source}: not valid YAML: {error}"
