"""The `probe` subcommand's flags (imports nothing heavy: the command itself loads lazily)."""

from __future__ import annotations

import argparse

FORMATS = ("table", "json", "markdown")


def _count(minimum: int) -> type[int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse  # type: ignore[return-value]


def _usd(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def model_spec(text: str) -> str:
    """A `--model` value: NAME:MODEL with both parts (a usage error otherwise, exit 2)."""
    name, sep, model = text.partition(":")
    if not sep or not name.strip() or not model.strip():
        raise argparse.ArgumentTypeError(
            f"expected NAME:MODEL, e.g. openai:gpt-4o-mini, got {text!r}"
        )
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the probe's flags to its subparser."""
    parser.add_argument(
        "--model",
        action="append",
        type=model_spec,
        required=True,
        metavar="NAME:MODEL",
        help="a model to compare, e.g. openai:gpt-4o-mini, anthropic:claude-3-5-haiku-latest, "
        "gemini:gemini-2.0-flash, or UPSTREAM:MODEL for an --upstream NAME=URL (repeatable)",
    )
    parser.add_argument(
        "--prompts", metavar="FILE", help="JSON lines or YAML prompts (default: a built-in set)"
    )
    parser.add_argument("--requests", type=_count(0), default=200, help="calls per model (200)")
    parser.add_argument(
        "--concurrency", type=_count(1), default=8, help="calls in flight per model (8)"
    )
    parser.add_argument(
        "--stream", action="store_true", help="stream (measures time to first token)"
    )
    parser.add_argument(
        "--repeat",
        type=_count(0),
        default=0,
        metavar="N",
        help="send each of the first --repeat-prompts prompts N times at temperature 0 and "
        "report the share of identical answers (0: off)",
    )
    parser.add_argument(
        "--repeat-prompts", type=_count(1), default=5, metavar="K", help="prompts --repeat uses (5)"
    )
    parser.add_argument(
        "--max-tokens",
        type=_count(1),
        default=256,
        help="output cap unless a prompt sets one (256)",
    )
    parser.add_argument(
        "--logprobs",
        action="store_true",
        help="ask OpenAI chat models for token logprobs, for the low-confidence share",
    )
    parser.add_argument(
        "--budget-usd", type=_usd, metavar="USD", help="stop sending before spending more"
    )
    parser.add_argument(
        "--warmup",
        type=_count(0),
        metavar="N",
        help="calls per model before measuring, to warm connections (default: --concurrency)",
    )
    parser.add_argument(
        "--max-retries", type=_count(0), default=2, help="SDK retries per call, as in an app (2)"
    )
    parser.add_argument(
        "--sidecar", metavar="URL", help="use a running sidecar's proxy URL instead of starting one"
    )
    parser.add_argument(
        "--sidecar-admin", metavar="URL", help="that sidecar's admin URL (for /metrics, /status)"
    )
    parser.add_argument("--config", help="config file for the sidecar started here (e.g. prices)")
    parser.add_argument(
        "--upstream",
        action="append",
        metavar="NAME=URL",
        help="replace an upstream of the sidecar started here, e.g. openai=http://vllm:8000, "
        "or add one (then probe it as NAME:MODEL) (repeatable)",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output (table)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
