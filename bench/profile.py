"""Profile the full-telemetry sidecar under load with py-spy, and summarize where its CPU goes.

`python -m bench.profile [--seconds 15] [--load closed|stream] [--out DIR]`
writes DIR/sidecar-full-LOAD.txt (py-spy's collapsed stacks) and prints the share of
samples by package (self time) and the functions with the largest inclusive share.
Needs `pip install py-spy` (and ptrace permission).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import loads
from bench.contenders import SIDECAR_FULL, Setting
from bench.litellm import default_venv
from bench.procs import free_port, pin_argv, plan_cores
from bench.run import start_upstream
from bench.telemetry import LoopScraper, OtlpSink

_LINE = re.compile(r":\d+\)$")
_SITE = re.compile(r".*/(?:site-packages|lib/python3\.\d+)/")


def frame_name(frame: str) -> str:
    """`function (path)` without the line number and the site-packages prefix."""
    return _SITE.sub("", _LINE.sub(")", frame.strip()))


def package_of(frame: str) -> str:
    """A frame's package or repository directory: `aiohttp`, `sidecar/telemetry`, `asyncio`."""
    match = re.search(r"\((.*)\)$", frame)
    if match is None:
        return "?"
    parts = match.group(1).split("/")
    if parts[0] == "sidecar" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0].removesuffix(".py")


def summarize_collapsed(text: str, top: int = 25) -> str:
    """Self share by package and the largest inclusive shares by function."""
    self_by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";") if "(" in f]
        if not frames:
            continue
        total += count
        self_by_package[package_of(frames[-1])] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples of the sidecar process on CPU", "", "self time by package:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in self_by_package.most_common(15)]
    lines += ["", "inclusive time by function:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


async def profile(seconds: int, load: str, out: Path) -> str:
    """Run the load against the full-telemetry sidecar while py-spy samples it."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    cores = plan_cores()
    workdir = Path(tempfile.mkdtemp(prefix="model-sidecar-profile-"))
    upstream, upstream_url = await start_upstream("tiny", workdir, cores, 5.0)
    otlp = OtlpSink(workdir, cores.rest)
    await otlp.start()
    metrics_port = free_port()
    scraper = LoopScraper(metrics_port)
    await scraper.start()
    setting = Setting(workdir, cores, upstream_url, otlp.url, metrics_port, default_venv())
    running = await SIDECAR_FULL.start(setting, 1)
    collapsed = out / f"sidecar-full-{load}.txt"
    try:
        async with loads.client_session() as session:
            await loads.warm_up(session, running.url, 256)
            argv = [py_spy, "record", "--pid", str(running.pid), "--duration", str(seconds)]
            argv += ["--rate", "250", "--format", "raw", "--nonblocking", "--threads"]
            argv += ["--output", str(collapsed)]
            spy = await asyncio.create_subprocess_exec(
                *pin_argv(argv, cores.rest), stdout=asyncio.subprocess.DEVNULL
            )
            if load == "closed":
                await loads.closed_loop_wrk(running.url, 64, seconds + 1, cores.rest, workdir)
            else:
                deadline = asyncio.get_running_loop().time() + seconds + 1
                while asyncio.get_running_loop().time() < deadline:
                    await loads.streams(session, running.url, 16, 64)
            await spy.wait()
    finally:
        running.stop()
        scraper.stop()
        otlp.stop()
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return summarize_collapsed(collapsed.read_text())


def main() -> int:
    """`python -m bench.profile`."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--load", choices=("closed", "stream"), default="closed")
    parser.add_argument("--out", default=".", help="where the collapsed stacks go")
    args = parser.parse_args()
    import uvloop

    print(uvloop.run(profile(args.seconds, args.load, Path(args.out))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
