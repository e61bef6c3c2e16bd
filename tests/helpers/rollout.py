"""A fleet of sidecars running one staged rollout in front of the simulator, with steady
traffic through every pod, and what their /status says about the rollout."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from sidecar.app import Sidecar
from tests.helpers.experiments import CONTROL_MODEL, QUESTION, split
from tests.helpers.ports import free_port
from tests.helpers.sidecar import SidecarFactory

EXPERIMENT = "rollout"
STEPS = [1, 5, 25, 50, 100]
# Compressed to seconds: evaluated every second, at least 2 s and 10 calls per arm a step.
INTERVAL = 1.0


def rollout_experiment(prometheus_url: str | None, **rollout: Any) -> dict[str, Any]:
    """The experiment under test: a rollout of CANDIDATE_MODEL over CONTROL_MODEL."""
    settings: dict[str, Any] = {
        "steps": STEPS,
        "min_calls": 10,
        "min_duration": "2s",
        "evaluation_interval": INTERVAL,
        **rollout,
    }
    if prometheus_url is not None:
        settings |= {"decision": "prometheus", "prometheus": {"url": prometheus_url}}
    # 10 calls a step decide little: the error limit is wide, the interval does the rest.
    gates = {"max_error_ratio_increase": 0.2, "max_p95_ratio": 1.5}
    return split(100, 0, name=EXPERIMENT, stop_loss=gates, rollout=settings)


class Fleet:
    """Sidecars of one workload (fixed admin ports, so Prometheus can be told them first)."""

    def __init__(self, factory: SidecarFactory, pods: int = 3) -> None:
        self.factory = factory
        self.admin_ports = [free_port() for _ in range(pods)]
        self.pods: list[Sidecar | None] = [None] * pods
        self.experiment: dict[str, Any] = {}
        self._traffic: list[asyncio.Task[None]] = []
        self.calls = 0

    @property
    def targets(self) -> list[str]:
        """host:port of every pod's admin listener (what Prometheus scrapes)."""
        return [f"127.0.0.1:{port}" for port in self.admin_ports]

    async def start(self, experiment: dict[str, Any]) -> None:
        """Start every pod with `experiment`, and traffic through each."""
        self.experiment = experiment
        for index in range(len(self.pods)):
            await self.start_pod(index)
        self._traffic = [
            asyncio.create_task(self._send(index, worker))
            for index in range(len(self.pods))
            for worker in range(4)
        ]

    async def start_pod(self, index: int) -> Sidecar:
        """(Re)start one pod on its admin port."""
        pod = await self.factory(
            {
                "admin_listen": f"127.0.0.1:{self.admin_ports[index]}",
                "experiments": [self.experiment],
            }
        )
        self.pods[index] = pod
        return pod

    async def stop_pod(self, index: int) -> None:
        """Stop one pod (its traffic waits until it is back)."""
        pod = self.pods[index]
        self.pods[index] = None
        if pod is not None:
            await pod.stop()

    async def _send(self, index: int, worker: int) -> None:
        body = {"model": CONTROL_MODEL, "messages": QUESTION}
        async with aiohttp.ClientSession() as http:
            while True:
                pod = self.pods[index]
                if pod is None or pod.draining:
                    await asyncio.sleep(0.05)
                    continue
                url = pod.proxy_url + "/v1/chat/completions"
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.post(url, json=body) as response:
                        await response.read()
                        self.calls += 1

    async def stop(self) -> None:
        """Stop the traffic (the factory stops the pods)."""
        for task in self._traffic:
            task.cancel()
        await asyncio.gather(*self._traffic, return_exceptions=True)

    async def rollout(self, index: int) -> dict[str, Any]:
        """One pod's rollout status (/status)."""
        pod = self.pods[index]
        assert pod is not None
        async with aiohttp.ClientSession() as http, http.get(pod.admin_url + "/status") as r:
            body: dict[str, Any] = await r.json()
        rollout: dict[str, Any] = body["experiments"][EXPERIMENT]["rollout"]
        return rollout

    async def rollouts(self) -> list[dict[str, Any]]:
        """Every running pod's rollout status."""
        return [await self.rollout(i) for i, pod in enumerate(self.pods) if pod is not None]

    async def wait_for(
        self, condition: Callable[[list[dict[str, Any]]], bool], timeout: float, what: str
    ) -> list[dict[str, Any]]:
        """Poll every pod's status until `condition` holds; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        found = await self.rollouts()
        while not condition(found):
            if time.monotonic() > deadline:
                summary = [(r["state"], r["why"], r["decision_error"]) for r in found]
                raise AssertionError(
                    f"{what}: not after {timeout} s ({self.calls} calls): {summary}"
                )
            await asyncio.sleep(0.1)
            found = await self.rollouts()
        return found


def states(found: list[dict[str, Any]]) -> list[str]:
    """Each pod's state."""
    return [rollout["state"] for rollout in found]


def reached(found: list[dict[str, Any]], state: str) -> list[float]:
    """When each pod entered `state` (unix time of its last transition into it)."""
    times = []
    for rollout in found:
        entered = [t["at_unix"] for t in rollout["transitions"] if t["to"] == state]
        assert entered, f"a pod never entered {state}: {rollout['transitions']}"
        times.append(entered[-1])
    return times


def path(rollout: dict[str, Any]) -> list[str]:
    """The states a pod went through, in order."""
    return [t["to"] for t in rollout["transitions"]]
