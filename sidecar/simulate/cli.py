"""`model-sidecar simulate`: serve the simulated providers until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from sidecar.http1.bind import bind_failure
from sidecar.simulate.simulator import RunningSimulator, Simulator, start_simulator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `simulate` subcommand's options to `parser`."""
    parser.add_argument(
        "--listen",
        default="127.0.0.1:8799",
        metavar="HOST:PORT",
        help="where to listen (default 127.0.0.1:8799; port 0 picks a free one)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random faults (default 0)")
    parser.add_argument(
        "--fastest",
        action="store_true",
        help="no delays and no random faults: the cheapest possible upstream, for benchmarks",
    )


def main(args: argparse.Namespace) -> int:
    """Run the simulator until interrupted; 0 on a clean stop, 2 on a bad or busy --listen."""
    host, _, port = str(args.listen).rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        print(
            f"model-sidecar simulate: --listen must be HOST:PORT, not {args.listen!r}",
            file=sys.stderr,
        )
        return 2
    simulator = Simulator(seed=args.seed, fastest=args.fastest)
    try:
        asyncio.run(_serve(simulator, host.strip("[]"), int(port)))
    except OSError as exc:  # binding failed: in use, not this machine's, no permission
        print(
            f"model-sidecar simulate: cannot listen on {args.listen}: {bind_failure(exc)}",
            file=sys.stderr,
        )
        return 2
    return 0


async def _serve(simulator: Simulator, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    running = await start_simulator(simulator, host, port)
    try:
        _announce(running)
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
        await running.close()


def _announce(running: RunningSimulator) -> None:
    print(f"simulated providers listening on {running.base_url}", flush=True)
    print(f"  OPENAI_BASE_URL={running.openai_base_url}", flush=True)
    print(f"  ANTHROPIC_BASE_URL={running.base_url}", flush=True)
    print(f"  GEMINI base URL={running.base_url}  (/v1/models/..., /v1beta/models/...)", flush=True)
    print(f"  VERTEX base URL={running.base_url}  (AnthropicVertex: add /v1)", flush=True)
    deployments = ", ".join(sorted(running.simulator.deployments))
    print(f"  AZURE_OPENAI_ENDPOINT={running.base_url}  (deployments: {deployments})", flush=True)
    print(f"  OLLAMA_HOST={running.base_url}", flush=True)
    print(f"  models: {', '.join(sorted(running.simulator.profiles))}", flush=True)
