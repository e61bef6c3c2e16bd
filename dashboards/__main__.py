"""`python -m dashboards` regenerates the dashboard JSON; `--check` exits 1 when it is stale."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboards.generate import OUTPUT_DIRS, REPO_ROOT, stale, write


def main(argv: list[str] | None = None) -> int:
    """Write (or, with --check, compare) the generated dashboards; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when a committed file differs from the generator's output",
    )
    parser.add_argument(
        "--out",
        type=Path,
        action="append",
        help="directory to write into (repeatable; default: dashboards/ and the Helm chart's "
        "files/dashboards/)",
    )
    args = parser.parse_args(argv)
    directories = tuple(args.out) if args.out else OUTPUT_DIRS
    if args.check:
        differing = stale(directories)
        for path in differing:
            print(f"stale: {_shown(path)} (run `python -m dashboards`)", file=sys.stderr)
        return 1 if differing else 0
    for path in write(directories):
        print(f"wrote {_shown(path)}")
    return 0


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main())
