"""The telemetry receivers of the full-telemetry sidecar: a scraper and an OTLP span sink."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from pathlib import Path

import aiohttp
import yaml

from bench.procs import Child, free_port, pin_argv

PROMETHEUS_JOB = "sidecar"


class PrometheusScraper:
    """A real Prometheus scraping the full-telemetry sidecar's admin port every second."""

    name = "prometheus"

    def __init__(self, metrics_port: int, workdir: Path, cores: tuple[int, ...]) -> None:
        self.metrics_port = metrics_port
        self.workdir = workdir
        self.cores = cores
        self.port = free_port()
        self.child: Child | None = None

    @staticmethod
    def available() -> bool:
        """Whether the prometheus binary is installed."""
        return shutil.which("prometheus") is not None

    async def start(self) -> None:
        """Start Prometheus and wait until it is ready."""
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {
                    "job_name": PROMETHEUS_JOB,
                    "static_configs": [{"targets": [f"127.0.0.1:{self.metrics_port}"]}],
                }
            ],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        argv = [
            shutil.which("prometheus") or "prometheus",
            f"--config.file={path}",
            f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self.child = Child(
            "prometheus", pin_argv(argv, self.cores), self.workdir / "prometheus.log"
        )
        await self.child.wait_for_port(self.port, timeout=30)

    async def successful_scrapes(self) -> int:
        """How many scrapes of the sidecar succeeded so far (sum of `up` samples)."""
        query = f'sum(sum_over_time(up{{job="{PROMETHEUS_JOB}"}}[1h]))'
        url = f"http://127.0.0.1:{self.port}/api/v1/query"
        async with aiohttp.ClientSession() as http, http.get(url, params={"query": query}) as r:
            data = await r.json()
        result = data["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0

    def stop(self) -> None:
        """Stop Prometheus."""
        if self.child is not None:
            self.child.stop()


class LoopScraper:
    """GET /metrics every second from the benchmark's own event loop (when Prometheus is absent)."""

    name = "scrape loop"

    def __init__(self, metrics_port: int, interval: float = 1.0) -> None:
        self.url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.interval = interval
        self.scrapes = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start scraping in the background."""
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        async with aiohttp.ClientSession() as http:
            while True:
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(self.url) as response:
                        body = await response.read()
                        if response.status == 200 and b"model_sidecar" in body:
                            self.scrapes += 1
                await asyncio.sleep(self.interval)

    async def successful_scrapes(self) -> int:
        """How many scrapes answered with sidecar metrics."""
        return self.scrapes

    def stop(self) -> None:
        """Stop scraping."""
        if self._task is not None:
            self._task.cancel()


class OtlpSink:
    """bench/otlp_sink.py as a child process on the load generator's core."""

    def __init__(self, workdir: Path, cores: tuple[int, ...]) -> None:
        self.workdir = workdir
        self.cores = cores
        self.url = ""
        self.child: Child | None = None

    async def start(self) -> None:
        """Start the receiver and wait until it listens."""
        port = free_port()
        argv = [sys.executable, "-m", "bench.otlp_sink", "--listen", f"127.0.0.1:{port}"]
        self.child = Child(
            "otlp-sink",
            pin_argv(argv, self.cores),
            self.workdir / "otlp-sink.log",
            cwd=Path(__file__).resolve().parent.parent,
        )
        await self.child.wait_for_port(port, timeout=30)
        self.url = f"http://127.0.0.1:{port}"

    async def spans(self) -> int:
        """How many spans arrived so far."""
        async with aiohttp.ClientSession() as http, http.get(self.url + "/count") as r:
            counts = await r.json()
        return int(counts["spans"])

    async def metric_exports(self) -> int:
        """How many OTLP metrics export requests arrived so far."""
        async with aiohttp.ClientSession() as http, http.get(self.url + "/count") as r:
            counts = await r.json()
        return int(counts["metric_requests"])

    def stop(self) -> None:
        """Stop the receiver."""
        if self.child is not None:
            self.child.stop()
