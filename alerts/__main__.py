"""`python -m alerts`: regenerate, check, or write a rule file with your own thresholds."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from alerts.generate import REPO_ROOT, rule_file, stale_files, write_files
from alerts.settings import SETTINGS, helm_values, helm_values_schema, parse_assignments


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m alerts`."""
    names = ", ".join(setting.name for setting in SETTINGS)
    parser = argparse.ArgumentParser(
        prog="python -m alerts",
        description="Generate model-sidecar's Prometheus rules, runbooks and Helm template.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="exit 1 when a committed generated file differs"
    )
    mode.add_argument(
        "--out", metavar="FILE", help="write only the rule file, with --set applied ('-' = stdout)"
    )
    mode.add_argument(
        "--helm-values", action="store_true", help="print the default `alerts:` Helm values"
    )
    mode.add_argument(
        "--helm-schema", action="store_true", help="print the JSON schema of those values"
    )
    parser.add_argument(
        "--set",
        dest="assignments",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help=f"override a threshold (repeatable, needs --out); names: {names}",
    )
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        overrides = parse_assignments(args.assignments)
    except (KeyError, ValueError) as error:
        parser.error(str(error.args[0]))
    if overrides and args.out is None:
        parser.error("--set writes your own rule file: add --out FILE")
    if args.out is not None:
        text = rule_file(overrides)
        if args.out == "-":
            sys.stdout.write(text)
        else:
            Path(args.out).write_text(text, encoding="utf-8")
        return 0
    if args.helm_values:
        sys.stdout.write(yaml.safe_dump({"alerts": helm_values()}, sort_keys=False))
        return 0
    if args.helm_schema:
        sys.stdout.write(json.dumps(helm_values_schema(), indent=2) + "\n")
        return 0
    if args.check:
        stale = stale_files(args.root)
        for path in stale:
            print(f"{path} differs from the code; run `python -m alerts`", file=sys.stderr)
        return 1 if stale else 0
    for path in write_files(args.root):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
