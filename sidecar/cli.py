"""`model-sidecar`: serve, check-config, slo-rules, simulate, demo, report, probe,
inject-webhook."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from sidecar import __version__
from sidecar.config.load import ConfigError, load_config, parse_upstream_flags
from sidecar.config.models import SidecarConfig


def freeze_startup_heap() -> None:
    """Exempt everything allocated at start-up from garbage collection.

    Pydantic, the config, the telemetry registry and the rest are tens of thousands of
    long-lived objects; without this, each full collection scans them all and stalls the event
    loop (a tail-latency spike). Price data, loaded on the first priced call, is exempted then
    (sidecar/enrich/cost.py).

    A collection of the young generations first, not a full one: start-up leaves its garbage
    there (measured with the default config: a full collection right after found nothing
    more), and it takes ~1 ms where a full one takes 12-20 ms that /readyz would wait for.
    """
    gc.collect(1)
    gc.freeze()


def run_async(main: Coroutine[Any, Any, int]) -> int:
    """Run a coroutine to completion on uvloop when it is installed, else on asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def serve_until_signalled(
    config: SidecarConfig,
    loader: Callable[[], SidecarConfig] | None = None,
    config_file: str | None = None,
) -> int:
    """Run a sidecar until SIGTERM or SIGINT, then shut it down gracefully. With `loader`,
    SIGHUP (and a change of `config_file`) reloads the config."""
    from sidecar.admin.token import AdminTokenError
    from sidecar.app import ListenError, Sidecar

    try:
        sidecar = Sidecar(config, config_loader=loader, config_file=config_file)
        await sidecar.start()
    except (AdminTokenError, ListenError) as exc:
        return usage_error(str(exc))
    freeze_startup_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(
        f"model-sidecar {__version__}: proxy {sidecar.proxy_url}  admin {sidecar.admin_url}",
        file=sys.stderr,
        flush=True,
    )
    await stop.wait()
    await sidecar.stop()
    return 0


EXIT_USAGE = 2  # as argparse: the command line (or what it names) is wrong


def usage_error(message: str, command: str = "") -> int:
    """Print one line saying what is wrong (no traceback) and return the usage exit status."""
    prefix = f"model-sidecar {command}".rstrip()
    print(f"{prefix}: {message}", file=sys.stderr)
    return EXIT_USAGE


def positive_number(text: str) -> float:
    """An argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def host_port(text: str) -> str:
    """An argparse type: HOST:PORT with a port from 0 to 65535."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. 0.0.0.0:8443, got {text!r}")
    return text


def _load(args: argparse.Namespace) -> SidecarConfig:
    upstreams = parse_upstream_flags(args.upstream or [])
    return load_config(
        args.config,
        listen=args.listen,
        admin_listen=args.admin_listen,
        admin_token_file=args.admin_token_file,
        upstreams=upstreams,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """`model-sidecar serve`."""
    from sidecar.logs import setup_logging

    try:
        config = _load(args)
    except ConfigError as exc:
        print("model-sidecar: invalid configuration:", file=sys.stderr)
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return 2
    setup_logging(config.log.level)
    config_file = args.config or os.environ.get("MODEL_SIDECAR_CONFIG") or None
    return run_async(serve_until_signalled(config, lambda: _load(args), config_file))


def cmd_check_config(args: argparse.Namespace) -> int:
    """`model-sidecar check-config FILE`: print the effective config (exit 0) or every error at
    once, each with its file:line (exit 1); a FILE that cannot be read is a usage error (2)."""
    from sidecar.admin.token import AdminTokenError, read_token_file

    if not os.path.isfile(args.file):
        reason = "is a directory" if os.path.isdir(args.file) else "no such file"
        return usage_error(f"{args.file}: {reason}", "check-config")
    try:
        config = load_config(args.file)
        if config.admin_token_file:
            read_token_file(config.admin_token_file)
    except ConfigError as exc:
        print(f"{args.file}: {len(exc.errors)} error(s):")
        for line in exc.errors:
            print(f"  {line}")
        return 1
    except AdminTokenError as exc:
        print(f"{args.file}: 1 error(s):")
        print(f"  {exc}")
        return 1
    print(f"# {args.file}: valid. Effective configuration:")
    import yaml

    print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
    return 0


def cmd_slo_rules(args: argparse.Namespace) -> int:
    """`model-sidecar slo-rules`: SLO and budget rules from a config (docs/slos.md)."""
    from sidecar.objectives.command import run

    if args.config and not os.path.isfile(args.config):
        return usage_error(f"{args.config}: no such file", "slo-rules")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"{args.config}: {len(exc.errors)} error(s):", file=sys.stderr)
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return 1
    return run(config, args.out, args.helm_values)


def cmd_simulate(args: argparse.Namespace) -> int:
    """`model-sidecar simulate`: run the simulated provider standalone."""
    from sidecar.simulate import cli as simulate_cli

    return simulate_cli.main(args)


def cmd_demo(args: argparse.Namespace) -> int:
    """`model-sidecar demo`: simulated providers, the sidecar and traffic, with a live table."""
    missing = []
    for sdk in ("openai", "anthropic"):  # the demo's traffic goes through the official SDKs
        try:
            importlib.import_module(sdk)
        except ImportError:
            missing.append(sdk)
    if missing:
        return usage_error(
            f"the demo needs the {' and '.join(missing)} SDK{'s' if len(missing) > 1 else ''}: "
            "pip install 'model-sidecar[demo]'",
            "demo",
        )
    from sidecar.tools.demo import DemoOptions, run_demo

    options = DemoOptions(
        duration=args.duration, rps=args.rps, keep_running=args.keep_running, live=not args.no_live
    )
    return run_async(run_demo(options))


def cmd_report(args: argparse.Namespace) -> int:
    """`model-sidecar report`: the model comparison per model and experiment arm, from a
    sidecar's /metrics or (`--prometheus`) from Prometheus over `--window`."""
    from sidecar.tools.report import ARM_GROUP, aggregate, inference_only, render_comparison

    if args.prometheus:
        from sidecar.tools.report_prometheus import PrometheusError, check_window, fetch_samples

        try:
            check_window(args.window)
        except ValueError as exc:
            return usage_error(f"--window: {exc}", "report")
        try:
            if args.by == "team":
                from sidecar.tools.report_teams import fetch_team_samples

                samples = fetch_team_samples(args.prometheus, args.window)
            else:
                samples = fetch_samples(args.prometheus, args.window)
        except PrometheusError as exc:
            print(f"model-sidecar report: {exc}", file=sys.stderr)
            return 1
        title = f"Per model and arm, from {args.prometheus} over the last {args.window}"
    elif args.url:
        from sidecar.tools.report import parse_samples
        from sidecar.tools.report_sidecar import MetricsSourceError, metrics_url, read_metrics

        try:
            url = metrics_url(args.url)
            samples = list(parse_samples(read_metrics(url)))
        except MetricsSourceError as exc:
            if exc.usage:
                return usage_error(str(exc), "report")
            print(f"model-sidecar report: {exc}", file=sys.stderr)
            return 1
        title = f"Per model and arm, from {url} (since the sidecar started)"
    else:
        return usage_error("give a sidecar's admin URL or --prometheus URL", "report")
    if args.by == "team":
        from sidecar.tools.report_teams import by_team, render

        title = title.replace("Per model and arm", "Per team (attribution header)")
        print(render(by_team(samples), args.format, title), end="")
        return 0
    stats = aggregate(inference_only(samples), ARM_GROUP)
    print(render_comparison(stats, args.format, title, wide=args.wide), end="")
    return 0


def cmd_inject_webhook(args: argparse.Namespace) -> int:
    """`model-sidecar inject-webhook`: the mutating admission webhook that injects the sidecar."""
    from sidecar.config.models import split_host_port
    from sidecar.inject.patch import load_injection_template
    from sidecar.inject.webhook import serve_webhook, tls_context
    from sidecar.logs import setup_logging

    try:
        template = load_injection_template(args.injection)
    except (OSError, ValueError) as exc:
        return usage_error(f"{args.injection}: {exc}", "inject-webhook")
    try:
        tls_context(args.tls_cert, args.tls_key)
    except OSError as exc:  # ssl.SSLError is one too
        return usage_error(
            f"cannot use --tls-cert {args.tls_cert} / --tls-key {args.tls_key}: "
            f"{exc.strerror or exc}",
            "inject-webhook",
        )
    setup_logging(args.log_level)
    listen = split_host_port(args.listen)
    try:
        return run_async(serve_webhook(listen, args.tls_cert, args.tls_key, template))
    except OSError as exc:
        from sidecar.http1.bind import bind_failure

        return usage_error(f"cannot listen on {args.listen}: {bind_failure(exc)}", "inject-webhook")


def cmd_probe(args: argparse.Namespace) -> int:
    """`model-sidecar probe`: the same prompts to several models through a sidecar, compared."""
    from sidecar.probe.command import options_from_args, probe_main

    return run_async(probe_main(options_from_args(args)))


def _add_serve_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config file (env MODEL_SIDECAR_CONFIG)")
    parser.add_argument("--listen", help="proxy HOST:PORT (default 127.0.0.1:8788)")
    parser.add_argument("--admin-listen", help="admin HOST:PORT (default 127.0.0.1:9788)")
    parser.add_argument(
        "--admin-token-file",
        metavar="FILE",
        help="file holding the token control endpoints require "
        "(env MODEL_SIDECAR_ADMIN_TOKEN_FILE; unset: loopback peers only)",
    )
    parser.add_argument(
        "--upstream",
        action="append",
        metavar="NAME=URL",
        help="replace an upstream's URL, e.g. openai=http://vllm:8000 (repeatable)",
    )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the `model-sidecar` command. With `command` (the subcommand
    the command line names) the other subcommands' options are left out where defining them
    would import their machinery: `serve` never loads the simulator (aiohttp)."""
    parser = argparse.ArgumentParser(
        prog="model-sidecar", description="Observe every LLM call of a service from beside it."
    )
    parser.add_argument("--version", action="version", version=f"model-sidecar {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the sidecar")
    _add_serve_flags(serve)
    serve.set_defaults(func=cmd_serve)

    check = commands.add_parser("check-config", help="validate a config file and explain errors")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    slo_rules = commands.add_parser(
        "slo-rules", help="Prometheus rules and alerts for the config's slos: and budgets:"
    )
    slo_rules.add_argument("--config", help="config file (default: MODEL_SIDECAR_CONFIG)")
    slo_rules.add_argument("--out", default="-", help="rule file to write ('-' = stdout)")
    slo_rules.add_argument(
        "--helm-values",
        action="store_true",
        help="print values for the chart's PrometheusRule (monitoring.prometheusRule.extraGroups)",
    )
    slo_rules.set_defaults(func=cmd_slo_rules)

    simulate = commands.add_parser("simulate", help="run the simulated LLM provider")
    if command in (None, "simulate"):
        from sidecar.simulate import cli as simulate_cli

        simulate_cli.add_arguments(simulate)
    simulate.set_defaults(func=cmd_simulate)

    demo = commands.add_parser("demo", help="run the whole product locally with no network")
    demo.add_argument(
        "--duration", type=positive_number, default=30.0, help="seconds of traffic (30)"
    )
    demo.add_argument("--rps", type=positive_number, default=20.0, help="calls per second (20)")
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="keep serving the page and /metrics after the traffic",
    )
    demo.add_argument("--no-live", action="store_true", help="plain output, no live table")
    demo.set_defaults(func=cmd_demo)

    report = commands.add_parser(
        "report", help="model comparison per model and experiment arm (sidecar or Prometheus)"
    )
    report.add_argument(
        "url", nargs="?", help="a sidecar's admin URL or /metrics URL, e.g. http://127.0.0.1:9788"
    )
    report.add_argument("--prometheus", metavar="URL", help="read from this Prometheus instead")
    report.add_argument("--window", default="1h", help="with --prometheus: time window (1h)")
    report.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    report.add_argument(
        "--by",
        choices=("arm", "team"),
        default="arm",
        help="arm: per model and experiment arm (default); team: per attribution value",
    )
    report.add_argument(
        "--wide",
        action="store_true",
        help="every column (confidence, repeatability, feedback), not only the headline ones",
    )
    report.set_defaults(func=cmd_report)

    inject = commands.add_parser(
        "inject-webhook", help="serve the Kubernetes admission webhook that injects the sidecar"
    )
    inject.add_argument(
        "--listen", type=host_port, default="0.0.0.0:8443", help="HOST:PORT (default 0.0.0.0:8443)"
    )
    inject.add_argument("--tls-cert", required=True, help="PEM serving certificate (reloaded)")
    inject.add_argument("--tls-key", required=True, help="PEM private key of the certificate")
    inject.add_argument(
        "--injection", required=True, help="injection.json rendered by the Helm chart"
    )
    inject.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    inject.set_defaults(func=cmd_inject_webhook)

    from sidecar.probe import arguments as probe_arguments

    probe = commands.add_parser("probe", help="compare models side by side through a sidecar")
    probe_arguments.add_arguments(probe)
    probe.set_defaults(func=cmd_probe)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
