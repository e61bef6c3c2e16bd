"""Run a staged rollout end to end on this machine and write docs/rollouts.md from what it did.

Three `model-sidecar serve` processes (one per "pod") in front of the simulated provider, a
real Prometheus (the Debian package's binary) scraping all three every second, steady traffic
through every pod, and a rollout compressed to seconds:

1. a healthy candidate goes 1 → 5 → 25 → 50 → 100 % and is promoted on every pod;
2. the config gains a second rollout (the sidecars reload it live) whose candidate starts
   failing once it holds 25 %: every pod rolls it back.

The page shows the real config, `/status`, `model-sidecar report` output and each pod's
transitions (with the spread between pods), so the walkthrough matches the product.

    PYTHONPATH=$PWD python scripts/rollout_walkthrough.py            # rewrite docs/rollouts.md
    PYTHONPATH=$PWD python scripts/rollout_walkthrough.py --out FILE # elsewhere
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from sidecar.simulate.profiles import ModelProfile
from sidecar.simulate.simulator import Simulator
from sidecar.tools.doc_examples import render

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "rollouts.md"
PODS = ("pod-a", "pod-b", "pod-c")
CONTROL_MODEL = "gpt-4o"
CANDIDATE_MODEL = "gpt-4o-mini"
# The second rollout: a candidate made to fail once it holds 25 %.
FAILING_CONTROL = "gpt-4.1"
FAILING_CANDIDATE = "gpt-4.1-mini"
QUESTION = [{"role": "user", "content": "Summarise this support ticket in one line."}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def experiment(name: str, control: str, candidate: str, prometheus: str) -> dict[str, Any]:
    """A rollout compressed to seconds (production: min_duration 10m, min_calls 200)."""
    return {
        "name": name,
        "match": {"model": control},
        "candidates": [{"model": candidate}],
        "stop_loss": {
            "max_error_ratio_increase": 0.2,
            "max_p95_ratio": 1.5,
            "max_cost_ratio": 1.2,
        },
        "rollout": {
            "steps": [1, 5, 25, 50, 100],
            "min_calls": 10,
            "min_duration": "3s",
            "evaluation_interval": "1s",
            "decision": "prometheus",
            "prometheus": {"url": prometheus},
        },
    }


def config_text(simulator: str, experiments: list[dict[str, Any]]) -> str:
    document = {
        "upstreams": {"openai": {"url": simulator}},
        "experiments": experiments,
    }
    return "# rollout.yaml\n" + yaml.safe_dump(document, sort_keys=False)


class Walkthrough:
    """The processes of the run and what they showed."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.proxy_ports = [free_port() for _ in PODS]
        self.admin_ports = [free_port() for _ in PODS]
        self.prometheus_port = free_port()
        self.prometheus = f"http://127.0.0.1:{self.prometheus_port}"
        self.sim = Simulator()
        self.calls = 0
        self.started = time.time()

    def admin(self, index: int) -> str:
        return f"http://127.0.0.1:{self.admin_ports[index]}"

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        environ = dict(os.environ)
        environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), environ.get("PYTHONPATH")])
        )
        with (self.workdir / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environ
            )
        self.processes.append(process)
        return process

    def start_prometheus(self) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            sys.exit("needs the prometheus binary (Debian package `prometheus`)")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "model-sidecar",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{port}"], "labels": {"pod": pod}}
                        for pod, port in zip(PODS, self.admin_ports, strict=True)
                    ],
                }
            ],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        self.spawn(
            "prometheus",
            [
                binary,
                f"--config.file={path}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
                "--log.level=warn",
            ],
        )

    def start_pods(self, config: Path) -> None:
        for index, pod in enumerate(PODS):
            self.spawn(
                pod,
                [
                    sys.executable, "-m", "sidecar.cli", "serve", "--config", str(config),
                    "--listen", f"127.0.0.1:{self.proxy_ports[index]}",
                    "--admin-listen", f"127.0.0.1:{self.admin_ports[index]}",
                ],
            )  # fmt: skip

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        urls = [f"{self.admin(i)}/readyz" for i in range(len(PODS))]
        urls.append(f"{self.prometheus}/-/ready")
        deadline = time.monotonic() + 30
        for url in urls:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url) as response:
                        if response.status == 200:
                            break
                if time.monotonic() > deadline:
                    sys.exit(f"{url} not ready; logs in {self.workdir}")
                await asyncio.sleep(0.1)

    async def traffic(self, http: aiohttp.ClientSession, index: int, model: str) -> None:
        url = f"http://127.0.0.1:{self.proxy_ports[index]}/v1/chat/completions"
        body = {"model": model, "messages": QUESTION}
        headers = {"Authorization": "Bearer sk-walkthrough"}
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.post(url, json=body, headers=headers) as response:
                    await response.read()
                    self.calls += 1

    async def rollout(self, http: aiohttp.ClientSession, index: int, name: str) -> dict[str, Any]:
        async with http.get(f"{self.admin(index)}/status") as response:
            status: dict[str, Any] = await response.json()
        # Absent until the pod reloaded a config that has it.
        absent = {"weights": {}, "rollout": {"state": "absent", "transitions": []}}
        experiment: dict[str, Any] = status["experiments"].get(name, absent)
        return experiment

    async def wait_all(
        self, http: aiohttp.ClientSession, name: str, state: str, timeout: float = 120
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = [await self.rollout(http, i, name) for i in range(len(PODS))]
            if all(f["rollout"]["state"] == state for f in found):
                return found
            if time.monotonic() > deadline:
                sys.exit(f"{name}: not every pod reached {state}: {[f['rollout'] for f in found]}")
            await asyncio.sleep(0.2)

    async def wait_any(
        self, http: aiohttp.ClientSession, name: str, state: str, timeout: float = 120
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for i in range(len(PODS)):
                found = await self.rollout(http, i, name)
                if found["rollout"]["state"] == state:
                    return found
            if time.monotonic() > deadline:
                sys.exit(f"{name}: no pod reached {state}")
            await asyncio.sleep(0.1)

    def report(self, index: int) -> str:
        environ = dict(os.environ)
        environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), environ.get("PYTHONPATH")])
        )
        done = subprocess.run(
            [sys.executable, "-m", "sidecar.cli", "report", self.admin(index)],
            capture_output=True,
            text=True,
            env=environ,
            timeout=60,
            check=False,
        )
        return (done.stdout + done.stderr).rstrip()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def transitions_table(found: list[dict[str, Any]], started: float) -> tuple[str, list[str]]:
    """A Markdown table: when each pod entered each state (seconds since the pods started), and
    the spread between the first and the last pod; plus plain lines for the closing note."""
    states: list[str] = []
    for experiment in found:
        for transition in experiment["rollout"]["transitions"]:
            if transition["to"] not in states:
                states.append(transition["to"])
    header = "| state | " + " | ".join(PODS) + " | spread |"
    lines = [header, "|---|" + "---|" * (len(PODS) + 1)]
    plain = []
    for state in states:
        times = []
        for experiment in found:
            entered = [t for t in experiment["rollout"]["transitions"] if t["to"] == state]
            times.append(entered[-1]["at_unix"] if entered else None)
        known = [t for t in times if t is not None]
        spread = max(known) - min(known) if known else 0.0
        cells = [f"{t - started:.2f} s" if t is not None else "—" for t in times]
        lines.append(f"| `{state}` | " + " | ".join(cells) + f" | {spread:.2f} s |")
        plain.append(f"{state}: " + ", ".join(cells) + f" (spread {spread:.2f} s)")
    return "\n".join(lines), plain


def status_excerpt(experiment: dict[str, Any]) -> str:
    """The rollout part of /status, transitions shortened to the last three."""
    rollout = dict(experiment["rollout"])
    rollout["transitions"] = rollout["transitions"][-3:]
    shown = {"weights": experiment["weights"], "rollout": rollout}
    return json.dumps(shown, indent=2)


async def run(workdir: Path) -> dict[str, Any]:
    walk = Walkthrough(workdir)
    simulator = walk.sim
    runner = web.AppRunner(simulator.build_app(), access_log=None)
    await runner.setup()
    sim_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", sim_port).start()
    sim_url = f"http://127.0.0.1:{sim_port}"
    # The failing rollout's models start healthy (same speed as their control).
    simulator.profiles[FAILING_CONTROL] = ModelProfile(FAILING_CONTROL, ttft_s=0.02)
    simulator.profiles[FAILING_CANDIDATE] = ModelProfile(FAILING_CANDIDATE, ttft_s=0.02)
    first = experiment("mini-rollout", CONTROL_MODEL, CANDIDATE_MODEL, walk.prometheus)
    config = workdir / "rollout.yaml"
    first_text = config_text(sim_url, [first])
    config.write_text(first_text)
    shown: dict[str, Any] = {}
    tasks: list[asyncio.Task[None]] = []
    try:
        walk.start_prometheus()
        walk.start_pods(config)
        async with aiohttp.ClientSession() as http:
            await walk.wait_ready(http)
            walk.started = time.time()
            tasks = [
                asyncio.create_task(walk.traffic(http, i, CONTROL_MODEL))
                for i in range(len(PODS))
                for _ in range(3)
            ]
            shown["first_status"] = status_excerpt(await walk.rollout(http, 0, "mini-rollout"))
            mid = await walk.wait_any(http, "mini-rollout", "step_25")
            shown["mid_status"] = status_excerpt(mid)
            done = await walk.wait_all(http, "mini-rollout", "promoted")
            shown["promoted"] = done
            shown["final_status"] = status_excerpt(done[0])
            shown["report"] = walk.report(0)
            shown["admin"] = walk.admin(0)

            # Phase 2: a second rollout added to the config; its candidate fails at 25 %.
            second = experiment(
                "mini-rollout-2", FAILING_CONTROL, FAILING_CANDIDATE, walk.prometheus
            )
            config.write_text(config_text(sim_url, [first, second]))
            tasks += [
                asyncio.create_task(walk.traffic(http, i, FAILING_CONTROL))
                for i in range(len(PODS))
                for _ in range(3)
            ]
            phase_two = time.time()
            await walk.wait_any(http, "mini-rollout-2", "step_25", timeout=180)
            profile = simulator.profiles[FAILING_CANDIDATE]
            simulator.profiles[FAILING_CANDIDATE] = replace(profile, error_rate=0.5)
            rolled = await walk.wait_all(http, "mini-rollout-2", "rolled_back")
            shown["rolled_back"] = rolled
            shown["rollback_status"] = status_excerpt(rolled[0])
            shown["phase_two_started"] = phase_two
            shown["calls"] = walk.calls
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        walk.stop()
        await runner.cleanup()
    shown["config"] = first_text
    shown["started"] = walk.started
    return shown


def page(shown: dict[str, Any]) -> str:
    table, _ = transitions_table(shown["promoted"], shown["started"])
    back_table, _ = transitions_table(shown["rolled_back"], shown["phase_two_started"])
    rollback = [
        t
        for experiment in shown["rolled_back"]
        for t in experiment["rollout"]["transitions"]
        if t["to"] == "rolled_back"
    ]
    detail = next((t for t in rollback if t["reason"] != "fleet"), rollback[0])
    return f"""# Roll a model out in steps

<!-- Generated by scripts/rollout_walkthrough.py from a real run: three sidecars, the
simulated provider, a real Prometheus. Do not edit by hand; run the script again. -->

A staged rollout moves a share of an app's calls from the model it uses today (the control)
to a candidate, step by step: 1 %, 5 %, 25 %, 50 %, 100 %. A step advances only when every
gate holds with enough evidence; a gate that fails rolls the candidate back at once. With
`decision: prometheus` every sidecar of the workload reads the same verdict from the
Prometheus that scrapes them all, so the pods move together and roll back together.

This page was produced by `scripts/rollout_walkthrough.py`: three `model-sidecar serve`
processes in front of the simulated provider, a Prometheus scraping all three every second,
steady traffic through every pod ({shown["calls"]:,} calls in all), and the schedule compressed to
seconds (production values: `min_duration: 10m`, `min_calls: 200`, `evaluation_interval: 15s`).

## 1. Add the experiment

The app keeps asking for `{CONTROL_MODEL}`; the rollout sends a growing share of those calls
to `{CANDIDATE_MODEL}`. The gates' limits are the `stop_loss` section.

```yaml
{shown["config"].rstrip()}
```

```console
$ model-sidecar check-config rollout.yaml
```

Start every pod with it (`model-sidecar serve --config rollout.yaml`), or add it to a running
fleet's config: the sidecars reload it live.

## 2. Watch it start

`GET /status` on a pod's admin port, right after start (the `rollout` part of the
experiment):

```json
{shown["first_status"]}
```

A sidecar that joins a fleet mid-rollout (a new or restarted pod) reads the fleet's step from
Prometheus (`model_sidecar_rollout_weight`, `model_sidecar_rollout_state`) and starts there,
not at 1 %.

## 3. A step held, the gates judged

At 25 %, `/status` shows each gate's value against its limit and why it holds:

```json
{shown["mid_status"]}
```

Error ratios are judged on the difference of the two proportions with an 80 % confidence
interval (Newcombe's method, from two Wilson intervals): the gate fails only when the whole
interval lies above the limit, passes only when it lies at or below it, and says
`undecided` in between. Nothing is judged before `min_calls` per arm at the step.

## 4. Promoted

Every pod went through every step and promoted the candidate. When each pod entered each
state (seconds after the pods started) and the spread between the first and the last pod:

{table}

```json
{shown["final_status"]}
```

`model-sidecar report` on a pod's admin URL, at the end (the arms side by side):

```console
$ model-sidecar report {shown["admin"]}
{shown["report"]}
```

## 5. When the candidate fails

A second rollout was added to the running fleet's config (`mini-rollout-2`,
`{FAILING_CONTROL}` → `{FAILING_CANDIDATE}`); once the candidate held 25 % it was made to fail
half of its calls. Every pod rolled it back (seconds after it was added):

{back_table}

The rollback, as the pod that judged it logged it and `/status` shows it:

```text
{detail["from"]} -> {detail["to"]} ({detail["reason"]}): {detail["detail"]}
```

```json
{shown["rollback_status"]}
```

## 6. Take over by hand

The admin listener's control endpoints (behind the admin token, or loopback only without
one) act on one pod:

| endpoint | applies in | does |
|---|---|---|
| `POST /experiments/<name>/pause` | pending, a step | hold the current share until resumed |
| `POST /experiments/<name>/resume` | paused, rolled_back | go on (after a rollback: from step 1) |
| `POST /experiments/<name>/promote` | pending, a step, paused | all calls to the candidate |
| `POST /experiments/<name>/abort` | pending, a step, paused, promoted | roll back |

With `decision: prometheus`, a rollback (a gate's or an abort) and a promotion reach the
other pods at their next evaluation; pause and resume are per pod (send them to every pod).
If Prometheus cannot be reached, or a query fails, every pod holds its step, counts
`model_sidecar_rollout_decision_errors_total` and says so in `/status` (`decision_error`);
it never advances blind, and a rollback already decided stays.

## 7. See it in Grafana and get paged

The comparison dashboard's "Staged rollouts" row shows the candidate's share per pod, each
gate's value against its limit, transitions and decision errors; transitions and silent model
changes are annotations on every panel. Alerts: `RolloutRolledBack`, `RolloutStuck` (a step
held for 3x its minimum duration), `ModelChangedSilently` (see alerts/runbooks.md).
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rollout-walkthrough-") as directory:
        shown = asyncio.run(run(Path(directory)))
    text = render(page(shown), str(args.out))
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
