"""The command line of a generated document: write it, or with `--check` fail when it is stale."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def run_doc_command(
    argv: Sequence[str] | None, *, module: str, default_path: Path, render: Callable[[], str]
) -> int:
    """`python -m MODULE [--check] [--path FILE]`: 0 when written or up to date, 1 when stale."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}")
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    parser.add_argument("--path", type=Path, default=default_path, help="the file to write")
    args = parser.parse_args(argv)
    expected = render()
    if args.check:
        current = args.path.read_text() if args.path.exists() else ""
        if current != expected:
            print(f"{args.path} is out of date: run python -m {module}", file=sys.stderr)
            return 1
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(expected)
    return 0
