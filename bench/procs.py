"""Child processes of the benchmark: start them pinned, wait until they listen, read CPU, RSS."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cores:
    """Where things run: the proxy under test on one core, everything else on another."""

    proxy: tuple[int, ...]
    rest: tuple[int, ...]
    spare: tuple[int, ...] = ()  # every allowed core but the proxy's (held-stream generators)

    @property
    def pinned(self) -> bool:
        """Whether the proxy has a core to itself."""
        return bool(self.proxy) and not set(self.proxy) & set(self.rest)


def plan_cores() -> Cores:
    """The first allowed core for the proxy and the second for the rest, when taskset exists."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2 or shutil.which("taskset") is None:
        return Cores((), ())
    return Cores((allowed[0],), (allowed[1],), tuple(allowed[1:]))


def pin_argv(argv: Sequence[str], cores: Sequence[int]) -> list[str]:
    """`argv` prefixed with `taskset -c CORES` when there are cores to pin to."""
    if not cores:
        return list(argv)
    return ["taskset", "-c", ",".join(map(str, cores)), *argv]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """One process the benchmark started (in its own session), with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        self.pid = self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the process printed."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_for_line(self, prefix: str, timeout: float) -> str:
        """The rest of the first output line starting with `prefix` (e.g. 'listening on ')."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line[len(prefix) :].strip()
            self._check_alive()
            await asyncio.sleep(0.02)
        raise RuntimeError(f"{self.name} printed no {prefix!r} in {timeout} s:\n{self.log_tail()}")

    async def wait_for_port(self, port: int, timeout: float) -> None:
        """Wait until something accepts TCP connections on 127.0.0.1:port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise RuntimeError(
            f"{self.name} did not listen on {port} in {timeout} s:\n{self.log_tail()}"
        )

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the process's own session, then SIGKILL after `grace` seconds."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # stray children of the session


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            children.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its descendants (/proc/PID/stat utime + stime)."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, IndexError):
            fields = _stat_fields(member)
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def _status_bytes(pid: int, field: str) -> int:
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith(field):
                    total += int(line.split()[1]) * 1024
    return total


def peak_rss_bytes(pid: int) -> int:
    """Peak resident memory (VmHWM) of `pid` plus its descendants."""
    return _status_bytes(pid, "VmHWM:")


def rss_bytes(pid: int) -> int:
    """Resident memory now (VmRSS) of `pid` plus its descendants."""
    return _status_bytes(pid, "VmRSS:")


class CpuClock:
    """Exact CPU time of other processes, from their CPU-time clocks (clock_getcpuclockid).

    /proc/PID/stat counts in clock ticks (10 ms here), too coarse for a short scenario that
    uses a tenth of a second; a process's CPU-time clock counts every thread in nanoseconds.
    Falls back to /proc/PID/stat where the call is missing.
    """

    def __init__(self) -> None:
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name, use_errno=True) if name else None
        self._getcpuclockid = getattr(libc, "clock_getcpuclockid", None)

    def _one(self, pid: int) -> float | None:
        if self._getcpuclockid is None:
            return None
        clock = ctypes.c_int()
        if self._getcpuclockid(pid, ctypes.byref(clock)) != 0:
            return None
        try:
            return time.clock_gettime(clock.value)
        except OSError:  # the process is gone
            return None

    def seconds(self, pid: int) -> float:
        """CPU seconds (user + system) of `pid` and its descendants so far."""
        total = 0.0
        for member in process_tree(pid):
            exact = self._one(member)
            if exact is None:
                exact = 0.0
                with contextlib.suppress(OSError, IndexError):
                    fields = _stat_fields(member)
                    exact = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            total += exact
        return total


def preemptions(pid: int) -> int:
    """Times the threads of `pid` and its descendants were taken off a CPU while runnable
    (`nonvoluntary_ctxt_switches`). A proxy alone on its pinned core is hardly ever
    preempted; many preemptions mean something else ran on that core."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{member}/task"):
                with contextlib.suppress(OSError):
                    for line in Path(f"/proc/{member}/task/{task}/status").read_text().splitlines():
                        if line.startswith("nonvoluntary_ctxt_switches:"):
                            total += int(line.split()[1])
    return total


def cpu_pressure_seconds() -> float | None:
    """Time so far in which some runnable task waited for a CPU (`/proc/pressure/cpu`,
    "some" total); None where pressure stall information is missing."""
    try:
        text = Path("/proc/pressure/cpu").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("some "):
            fields = dict(item.split("=", 1) for item in line.split()[1:])
            return int(fields["total"]) / 1e6
    return None


def listen_drops() -> int | None:
    """Connection attempts dropped by a full listen queue so far (TcpExt ListenDrops of this
    network namespace, so other programs' count too); None where /proc/net/netstat is missing.
    A dropped SYN is retried by the client after a second, which shows in time to first chunk."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    rows = [line.split() for line in lines if line.startswith("TcpExt:")]
    if len(rows) < 2 or "ListenDrops" not in rows[0]:
        return None
    return int(rows[1][rows[0].index("ListenDrops")])


def raise_fd_limit(wanted: int) -> int:
    """Raise the open-file limit (children inherit it) towards `wanted`; the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft
