"""The command line of `python -m bench` (bench/run.py runs it)."""

from __future__ import annotations

import argparse

from bench.pod import SCENARIOS

DESCRIPTION = """The same load against every contender, in the same run, three times: tables,
ratios to direct and to the bare pass-through, PASS/FAIL against the targets of issue #6;
then the scenarios of issue #23 (start-up, footprint, held streams). See bench/README.md."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number above 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not above 0")
    return value


def positive_ints(text: str) -> tuple[int, ...]:
    """An argparse type: whole numbers above 0, comma-separated."""
    return tuple(positive_int(part.strip()) for part in text.split(","))


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not above 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m bench`."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="short loads, 3 repetitions (under 2 minutes)",
    )
    mode.add_argument(
        "--smoke",
        dest="mode",
        action="store_const",
        const="smoke",
        help="a few seconds, 1 repetition: checks that everything runs (CI)",
    )
    mode.add_argument(
        "--streams",
        dest="mode",
        action="store_const",
        const="streams",
        help="only the held streams of issue #23 at full size (16, 256, 1,000 streams)",
    )
    parser.set_defaults(mode="full")
    parser.add_argument("--nginx", action="store_true", help="add nginx (Debian package)")
    parser.add_argument(
        "--litellm",
        action="store_true",
        help="add LiteLLM proxy (installed into its own venv on first use)",
    )
    parser.add_argument("--litellm-venv", help="where LiteLLM's venv lives")
    parser.add_argument(
        "--upstream",
        choices=("tiny", "simulator"),
        default="tiny",
        help="bench/upstream.py (default) or the simulated provider, fastest mode",
    )
    parser.add_argument(
        "--scraper",
        choices=("auto", "prometheus", "loop"),
        default="auto",
        help="who scrapes the full-telemetry sidecar (auto: Prometheus if installed)",
    )
    parser.add_argument(
        "--rates", type=positive_ints, help="open-loop rates, comma-separated (default 100,300)"
    )
    parser.add_argument("--repetitions", type=int, help="override the mode's repetitions")
    parser.add_argument(
        "--scenarios",
        help=f"comma-separated, from {','.join(SCENARIOS)} (default: all; --streams: streams)",
    )
    parser.add_argument(
        "--levels", type=positive_ints, help="concurrent held streams, comma-separated"
    )
    parser.add_argument("--stream-chunks", type=positive_int, help="chunks per held stream")
    parser.add_argument(
        "--stream-interval-ms", type=positive_float, help="ms between held-stream chunks"
    )
    parser.add_argument(
        "--generators", type=positive_int, help="load-generator processes for held streams"
    )
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    return parser
