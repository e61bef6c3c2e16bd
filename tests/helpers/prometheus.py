"""A real Prometheus for tests: a plain process on 127.0.0.1 scraping given targets every 1 s.

    async with running_prometheus(["127.0.0.1:9788"], tmp_path) as prometheus:
        series = await prometheus.wait_for_series("up == 1", count=1)

A missing `prometheus` binary skips the test, or fails it when CI=true.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.helpers.ports import free_port

# The first sample lands ~6 s after start (service discovery runs on a 5 s tick).
FIRST_SCRAPE_TIMEOUT = 30.0


def prometheus_binary() -> str:
    """Path of the prometheus binary; skips the test without it (fails it when CI=true)."""
    path = shutil.which("prometheus")
    if path is None:
        message = "prometheus binary not found (Debian package `prometheus`)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


class PrometheusServer:
    """A running Prometheus and its HTTP query API."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        url: str,
        log_path: Path,
        command: Sequence[str] = (),
    ) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path
        # How it was started: `restart` starts it again on the same address and storage.
        self.command = list(command)

    async def restart(self) -> None:
        """Start the stopped server again with the same address, config and storage."""
        assert self.process.poll() is not None, "stop() it first"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        await self.wait_ready()

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log, for failure messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The result vector of an instant query (PromQL `expr`) evaluated now, or at the unix
        time `at`."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/api/v1/query", params=params) as response,
        ):
            payload = await response.json()
        if payload.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {payload}")
        result: list[dict[str, Any]] = payload["data"]["result"]
        return result

    async def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """The result of /api/v1/query_exemplars for `expr` between two unix times."""
        params = {"query": expr, "start": str(start), "end": str(end)}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/api/v1/query_exemplars", params=params) as response,
        ):
            payload = await response.json()
        if payload.get("status") != "success":
            raise AssertionError(f"query_exemplars {expr!r} failed: {payload}")
        result: list[dict[str, Any]] = payload["data"]
        return result

    async def api(self, path: str) -> Any:
        """The `data` of a GET on the HTTP API, e.g. "alerts" or "rules" (/api/v1/...)."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/api/v1/{path}") as response,
        ):
            payload = await response.json()
        if payload.get("status") != "success":
            raise AssertionError(f"/api/v1/{path} failed: {payload}")
        return payload["data"]

    async def wait_for_series(
        self, expr: str, count: int = 1, timeout: float = FIRST_SCRAPE_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Poll `expr` until it returns at least `count` series; fail after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        result: list[dict[str, Any]] = []
        while loop.time() < deadline:
            result = await self.query(expr)
            if len(result) >= count:
                return result
            await asyncio.sleep(0.25)
        raise AssertionError(
            f"{expr!r} returned {len(result)} series after {timeout} s, expected {count}: "
            f"{result}\nprometheus log:\n{self.log_tail()}"
        )

    async def wait_ready(self, timeout: float = 15.0) -> None:
        """Wait until /-/ready answers 200."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession() as session:
            while loop.time() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"prometheus exited early:\n{self.log_tail()}")
                try:
                    async with session.get(f"{self.url}/-/ready") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"prometheus not ready after {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the process, killing it if it does not exit promptly."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def write_config(path: Path, targets: Sequence[str], rule_files: Sequence[Path] = ()) -> None:
    """A config scraping `targets` (host:port, path /metrics) and evaluating `rule_files`
    every second."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {"job_name": "model-sidecar", "static_configs": [{"targets": list(targets)}]}
        ],
    }
    if rule_files:
        config["rule_files"] = [str(Path(rule_file).resolve()) for rule_file in rule_files]
    path.write_text(yaml.safe_dump(config))


@asynccontextmanager
async def running_prometheus(
    targets: Sequence[str],
    workdir: Path,
    rule_files: Sequence[Path] = (),
    features: Sequence[str] = (),
) -> AsyncIterator[PrometheusServer]:
    """Start Prometheus scraping `targets` and evaluating `rule_files` (alerting and recording
    rules, every second), with its config and storage under `workdir`; `features` are
    `--enable-feature` flags (e.g. `exemplar-storage`)."""
    binary = prometheus_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    write_config(config_path, targets, rule_files)
    log_path = workdir / "prometheus.log"
    address = f"127.0.0.1:{free_port()}"
    command = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address={address}",
        "--log.level=warn",
        *(f"--enable-feature={feature}" for feature in features),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    server = PrometheusServer(process, f"http://{address}", log_path, command)
    try:
        await server.wait_ready()
        yield server
    finally:
        server.stop()
