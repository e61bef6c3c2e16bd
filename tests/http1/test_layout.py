"""The http1 parts talk through public methods and attributes: no `other._private` access."""

from __future__ import annotations

import ast
from pathlib import Path

import sidecar.http1

PACKAGE = Path(sidecar.http1.__file__).parent


def private_accesses(source: str) -> list[str]:
    """`X._name` where X is not `self` or `cls` (dunder names are not private)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_check_finds_another_objects_private_attribute() -> None:
    source = "def f(self, conn):\n    self._a = conn._buf\n    self._pool._drop(conn)\n"
    assert private_accesses(source) == ["2: conn._buf", "3: self._pool._drop"]
    assert private_accesses("class A:\n    def f(self):\n        return self.__dict__\n") == []


def test_no_module_in_http1_touches_another_objects_private_attribute() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert files
    found = {path.name: hits for path in files if (hits := private_accesses(path.read_text()))}
    assert found == {}
