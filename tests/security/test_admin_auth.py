"""The admin plane over real sockets: read-only endpoints open to any peer; control endpoints
behind the bearer token, or loopback-only without one; checked before routing; the token never
shown anywhere."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from sidecar.admin.auth import bearer_token, is_control_request, is_loopback
from sidecar.admin.token import TOKEN_FILE_ENV, AdminToken, AdminTokenError
from sidecar.app import Sidecar
from tests.helpers.addresses import non_loopback_address
from tests.helpers.experiments import split
from tests.helpers.logs import captured_logs
from tests.helpers.serve import serve_process
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

TOKEN = "adm-7f3e9c1b5a2d48e6-token"
RESUME = "/experiments/exp/resume"
READ_ONLY = ("/metrics", "/healthz", "/readyz", "/status")


class Admin:
    """The admin listener of a sidecar bound to every address, reached two ways."""

    def __init__(self, sidecar: Sidecar, http: aiohttp.ClientSession, outside: str) -> None:
        port = urlsplit(sidecar.admin_url).port
        self.sidecar = sidecar
        self.http = http
        self.loopback = f"http://127.0.0.1:{port}"
        self.outside = f"http://{outside}:{port}"  # the peer is then that address, not loopback

    async def call(
        self, base: str, path: str, method: str = "POST", token: str | None = None, **extra: str
    ) -> tuple[int, dict[str, str], str]:
        headers = dict(extra)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.http.request(method, base + path, headers=headers) as response:
            return response.status, dict(response.headers), await response.text()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "admin-token"
    path.write_text(TOKEN + "\n")  # as `kubectl create secret --from-file` leaves it
    return path


async def admin_of(sidecar_factory: SidecarFactory, **config: object) -> AsyncIterator[Admin]:
    outside = non_loopback_address()
    sidecar = await sidecar_factory(
        {"admin_listen": "0.0.0.0:0", "experiments": [split()], **config}
    )
    async with aiohttp.ClientSession() as http:
        yield Admin(sidecar, http, outside)


@pytest.fixture
async def open_admin(sidecar_factory: SidecarFactory) -> AsyncIterator[Admin]:
    """No token configured."""
    async for admin in admin_of(sidecar_factory):
        yield admin


@pytest.fixture
async def token_admin(sidecar_factory: SidecarFactory, token_file: Path) -> AsyncIterator[Admin]:
    """A token from a file."""
    async for admin in admin_of(sidecar_factory, admin_token_file=str(token_file)):
        yield admin


async def test_without_a_token_control_answers_loopback_only(open_admin: Admin) -> None:
    status, _, body = await open_admin.call(open_admin.loopback, RESUME)
    assert status == 200 and '"resumed": "exp"' in body
    status, _, body = await open_admin.call(open_admin.outside, RESUME)
    assert status == 403
    assert "loopback" in body and "MODEL_SIDECAR_ADMIN_TOKEN_FILE" in body
    # A forwarded-for header is never believed.
    forged = {
        "X-Forwarded-For": "127.0.0.1",
        "X-Real-IP": "127.0.0.1",
        "Forwarded": "for=127.0.0.1",
    }
    status, _, _ = await open_admin.call(open_admin.outside, RESUME, **forged)
    assert status == 403
    # Checked before routing: an unknown action, another method, an unknown path.
    for method, path in (
        ("POST", "/experiments/exp/frobnicate"),
        ("GET", RESUME),
        ("DELETE", "/experiments/exp"),
        ("POST", "/metrics"),
        ("GET", "/no-such-endpoint"),
    ):
        status, _, _ = await open_admin.call(open_admin.outside, path, method)
        assert status == 403, (method, path)
    status, _, _ = await open_admin.call(open_admin.loopback, "/experiments/exp/frobnicate")
    assert status == 404  # a loopback peer may call, so routing answers


async def test_read_only_endpoints_are_open_to_any_peer(token_admin: Admin) -> None:
    for base in (token_admin.loopback, token_admin.outside):
        for path in READ_ONLY:
            status, _, _ = await token_admin.call(base, path, "GET")
            assert status == 200, (base, path)


async def test_with_a_token_every_control_call_needs_it(token_admin: Admin) -> None:
    for base in (token_admin.loopback, token_admin.outside):
        for token in (None, "wrong-token", TOKEN + "x", TOKEN[:-1]):
            status, headers, body = await token_admin.call(base, RESUME, token=token)
            assert status == 401, (base, token)
            assert headers["WWW-Authenticate"].startswith("Bearer")
            assert TOKEN not in body
        status, _, body = await token_admin.call(base, RESUME, token=TOKEN)
        assert status == 200 and '"resumed": "exp"' in body
        # Auth before routing: without the token an unknown action is 401, with it 404.
        status, _, _ = await token_admin.call(base, "/experiments/exp/frobnicate")
        assert status == 401
        status, _, _ = await token_admin.call(base, "/experiments/exp/frobnicate", token=TOKEN)
        assert status == 404
    # The scheme is case-insensitive; another scheme is not a bearer token.
    status, _, _ = await token_admin.call(
        token_admin.loopback, RESUME, Authorization=f"bearer {TOKEN}"
    )
    assert status == 200
    status, _, _ = await token_admin.call(
        token_admin.loopback, RESUME, Authorization=f"Basic {TOKEN}"
    )
    assert status == 401


async def test_the_token_never_reaches_logs_metrics_or_status(
    sidecar_factory: SidecarFactory, token_file: Path
) -> None:
    with captured_logs("sidecar", "aiohttp") as logs:
        async for admin in admin_of(sidecar_factory, admin_token_file=str(token_file)):
            await admin.call(admin.outside, RESUME, token="wrong-token")
            await admin.call(admin.outside, RESUME, token=TOKEN)
            await admin.call(admin.outside, RESUME)
            admin.sidecar.reload(admin.sidecar.config)  # re-reads the file
            texts = [await admin.call(admin.outside, path, "GET") for path in READ_ONLY]
            status = texts[READ_ONLY.index("/status")][2]
            assert '"admin_control": "token"' in status
    assert any("refused POST /experiments/exp/resume" in line for line in logs.lines)
    assert not logs.containing(TOKEN) and not logs.containing("wrong-token")
    for _, _, text in texts:
        assert TOKEN not in text


async def test_a_rotated_token_file_takes_effect_and_a_broken_one_keeps_the_last(
    token_admin: Admin, token_file: Path
) -> None:
    rotated = token_file.with_name("rotated")
    rotated.write_text("rotated-token-2\n")
    os.replace(rotated, token_file)  # as the kubelet swaps a Secret's files: atomically
    status, _, _ = await token_admin.call(token_admin.outside, RESUME, token=TOKEN)
    assert status == 401
    status, _, _ = await token_admin.call(token_admin.outside, RESUME, token="rotated-token-2")
    assert status == 200
    with captured_logs("sidecar") as logs:
        token_file.write_text("")
        status, _, _ = await token_admin.call(token_admin.outside, RESUME, token="rotated-token-2")
    assert status == 200, "an empty file keeps the last good token"
    assert logs.containing("the file is empty") and logs.containing("previous admin token")
    # A reload without a token file: control endpoints are loopback-only again.
    config = token_admin.sidecar.config.model_copy(update={"admin_token_file": None})
    token_admin.sidecar.reload(config)
    status, _, _ = await token_admin.call(token_admin.outside, RESUME, token="rotated-token-2")
    assert status == 403
    status, _, _ = await token_admin.call(token_admin.loopback, RESUME)
    assert status == 200


def test_token_files_that_cannot_be_used_are_refused(tmp_path: Path) -> None:
    cases = {
        "missing": (None, "cannot read it"),
        "empty": ("\n\n", "the file is empty"),
        "two-words": ("two words\n", "one word"),
    }
    for name, (content, complaint) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_text(content)
        with pytest.raises(AdminTokenError, match=complaint):
            AdminToken(str(path))
    assert AdminToken(None).current() is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.5", False),
        ("::ffff:10.0.0.5", False),
        ("fe80::1%eth0", False),
        ("0.0.0.0", False),
        ("localhost", False),  # a peer is an address, never a name
        ("", False),
    ],
)
def test_loopback_peers(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_what_counts_as_a_control_request() -> None:
    assert not is_control_request("GET", "/metrics")
    assert not is_control_request("HEAD", "/healthz")
    assert is_control_request("POST", "/experiments/x/resume")
    assert is_control_request("GET", "/experiments/x")
    assert is_control_request("POST", "/status")
    assert is_control_request("GET", "/metrics/")
    assert bearer_token("Bearer abc") == "abc" and bearer_token("Bearer ") is None
    assert bearer_token("Token abc") is None


async def test_ipv6_loopback_peer_may_call_without_a_token(sidecar_factory: SidecarFactory) -> None:
    try:
        sidecar = await sidecar_factory({"admin_listen": "[::1]:0", "experiments": [split()]})
    except OSError:  # pragma: no cover - a machine without IPv6 on loopback
        pytest.skip("::1 cannot be bound on this machine")
    async with aiohttp.ClientSession() as http, http.post(sidecar.admin_url + RESUME) as reply:
        assert reply.status == 200


async def test_serve_warns_once_when_control_is_loopback_only_off_loopback(
    simulator: RunningSimulator, token_file: Path
) -> None:
    async with serve_process(simulator.url, args=["--admin-listen", "0.0.0.0:0"]) as served:
        _, log = await served.stop()
    warnings = [line for line in log.splitlines() if "answer loopback peers only" in line]
    assert len(warnings) == 1 and "0.0.0.0:0" in warnings[0]
    args = ["--admin-listen", "0.0.0.0:0", "--admin-token-file", str(token_file)]
    async with serve_process(simulator.url, args=args) as served:
        _, log = await served.stop()
    assert "loopback peers only" not in log and TOKEN not in log


async def test_serve_refuses_to_start_with_a_token_file_it_cannot_read(tmp_path: Path) -> None:
    for content in (None, ""):
        path = tmp_path / "token"
        if content is not None:
            path.write_text(content)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sidecar.cli", "serve",
            "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "MODEL_SIDECAR_CONFIG": "", TOKEN_FILE_ENV: str(path)},
        )  # fmt: skip
        _, err = await asyncio.wait_for(process.communicate(), timeout=30)
        text = err.decode()
        assert process.returncode == 2, text
        assert text.count("\n") == 1 and str(path) in text and "Traceback" not in text
