"""The pod's AWS credentials: found by botocore's chain (EKS Pod Identity's container endpoint
here), refreshed before they expire without a failed call, never on the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError

from sidecar.app import Sidecar
from sidecar.aws.credentials import ADVISORY_REFRESH_S, MANDATORY_REFRESH_S, AwsCredentials
from tests.helpers.aws import ContainerCredentials, IssuedKey
from tests.helpers.bedrock import SONNET, app_client, in_thread
from tests.helpers.logs import captured_logs
from tests.helpers.records import RecordingSink
from tests.helpers.sidecar import SidecarFactory
from tests.helpers.simulator import RunningSimulator

MESSAGES = [{"role": "user", "content": [{"text": "Hello there."}]}]


def converse(client: Any) -> dict[str, Any]:
    return dict(client.converse(modelId=SONNET, messages=MESSAGES))


def signing_key(simulator: RunningSimulator) -> str:
    authorization = simulator.sim.received[-1].headers["Authorization"]
    return authorization.split("Credential=")[1].split("/")[0]


def accept_into(simulator: RunningSimulator) -> Callable[[IssuedKey], None]:
    aws = simulator.sim.aws

    def accept(key: IssuedKey) -> None:
        aws.accept(
            key.access_key, key.secret_key, session_token=key.token, expires_at=key.expires_at
        )

    return accept


async def start_with_endpoint(
    sidecar_factory: SidecarFactory,
    bedrock_upstream: dict[str, object],
    endpoint: ContainerCredentials,
    monkeypatch: pytest.MonkeyPatch,
) -> Sidecar:
    for name, value in endpoint.environ().items():
        monkeypatch.setenv(name, value)
    return await sidecar_factory(bedrock_upstream)


# Through a sidecar -----------------------------------------------------------------------------


async def test_expired_temporary_credentials_are_refreshed_without_a_failed_call(
    sidecar_factory: SidecarFactory,
    bedrock_upstream: dict[str, object],
    simulator: RunningSimulator,
    records: RecordingSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = ContainerCredentials(accept_into(simulator), lifetime_s=1.5)
    with endpoint.serving():
        sidecar = await start_with_endpoint(
            sidecar_factory, bedrock_upstream, endpoint, monkeypatch
        )
        client = app_client(sidecar.proxy_url)
        await in_thread(lambda: converse(client))
        first = signing_key(simulator)
        expired = next(key for key in endpoint.issued if key.access_key == first)
        # Calls keep coming while the first key expires, and after it has.
        while time.time() < expired.expires_at + 0.3:
            await in_thread(lambda: converse(client))
            await asyncio.sleep(0.2)
        later = signing_key(simulator)
    assert later != first
    assert later in {key.access_key for key in endpoint.issued}
    assert endpoint.refused == 0  # the pod identity token went with every fetch
    assert len(endpoint.issued) >= 2
    outcomes = {record.outcome for record in records.records}
    assert outcomes == {"ok"}
    # The simulator never saw a key past its expiry.
    assert all(
        received.headers["X-Amz-Security-Token"].startswith("container-token-")
        for received in simulator.sim.received
    )


async def test_a_slow_credential_endpoint_never_blocks_the_event_loop(
    sidecar_factory: SidecarFactory,
    bedrock_upstream: dict[str, object],
    simulator: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Keys that always need refreshing, from an endpoint that takes 0.6 s per answer.
    endpoint = ContainerCredentials(accept_into(simulator), lifetime_s=30, delay_s=0.6)
    with endpoint.serving():
        sidecar = await start_with_endpoint(
            sidecar_factory, bedrock_upstream, endpoint, monkeypatch
        )
        client = app_client(sidecar.proxy_url)
        gaps: list[float] = []

        async def tick() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.get_running_loop().create_task(tick())
        started = time.monotonic()
        reply = await in_thread(lambda: converse(client))
        took = time.monotonic() - started
        ticker.cancel()
    assert reply["stopReason"] == "end_turn"
    assert took >= 0.6  # the call waited for fresh credentials ...
    assert max(gaps) < 0.3  # ... while the loop (the sidecar's, in this process) kept running


@pytest.mark.slow
async def test_a_refused_credential_fetch_is_logged_once_and_calls_go_as_they_came(
    sidecar_factory: SidecarFactory,
    bedrock_upstream: dict[str, object],
    simulator: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = ContainerCredentials(accept_into(simulator), lifetime_s=60)
    with captured_logs("sidecar") as logs, endpoint.serving():
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url)
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-pod-identity-token")
        sidecar = await sidecar_factory(bedrock_upstream)
        client = app_client(sidecar.proxy_url)
        for _ in range(2):
            with pytest.raises(ClientError) as refused:
                await in_thread(lambda: converse(client))
            assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert endpoint.refused >= 1 and not endpoint.issued
    (line,) = logs.containing("AWS credentials could not be loaded")
    assert "wrong-pod-identity-token" not in line


# The holder, with botocore's refreshable credentials --------------------------------------------


class Clock:
    """The time botocore's RefreshableCredentials sees, movable by the test."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class Refresher:
    """A refresh function for RefreshableCredentials: numbered keys, each valid `valid_for` s
    from the clock's now."""

    def __init__(
        self, clock: Clock, valid_for: float, *, delay: float = 0.0, fail: bool = False
    ) -> None:
        self.clock = clock
        self.valid_for = valid_for
        self.delay = delay
        self.fail = fail
        self.calls = 0

    def __call__(self) -> dict[str, str]:
        self.calls += 1
        time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("credential endpoint unreachable")
        expiry = self.clock() + timedelta(seconds=self.valid_for)
        return {
            "access_key": f"ASIAREFRESHED{self.calls}",
            "secret_key": f"secret-{self.calls}",
            "token": f"token-{self.calls}",
            "expiry_time": expiry.isoformat(),
        }


def refreshable(valid_for: float, refresher: Refresher) -> RefreshableCredentials:
    """Credentials valid for `valid_for` s from now, refreshed by `refresher`."""
    clock = refresher.clock
    return RefreshableCredentials(
        "ASIAFIRST",
        "secret-0",
        "token-0",
        clock() + timedelta(seconds=valid_for),
        refresher,
        "test",
        time_fetcher=clock,
    )


async def test_long_lived_credentials_are_read_without_a_refresh() -> None:
    refresher = Refresher(Clock(), 3600)
    holder = AwsCredentials(lambda: refreshable(3600, refresher))
    assert (await holder.current()).access_key == "ASIAFIRST"
    assert refresher.calls == 0


async def test_in_the_advisory_window_the_old_keys_sign_while_new_ones_are_fetched() -> None:
    clock = Clock()
    refresher = Refresher(clock, 3600, delay=0.2)
    holder = AwsCredentials(lambda: refreshable(ADVISORY_REFRESH_S + 120, refresher))
    assert (await holder.current()).access_key == "ASIAFIRST"
    clock.offset = timedelta(seconds=180)  # now inside the early refresh window
    started = time.monotonic()
    assert (await holder.current()).access_key == "ASIAFIRST"  # no waiting for the refresh
    assert time.monotonic() - started < 0.1
    for _ in range(100):
        await asyncio.sleep(0.02)
        if (await holder.current()).access_key == "ASIAREFRESHED1":
            break
    assert (await holder.current()).access_key == "ASIAREFRESHED1"
    assert refresher.calls == 1


async def test_in_the_mandatory_window_calls_wait_for_one_shared_refresh() -> None:
    refresher = Refresher(Clock(), 3600, delay=0.2)
    holder = AwsCredentials(lambda: refreshable(MANDATORY_REFRESH_S - 60, refresher))
    keys = await asyncio.gather(*(holder.current() for _ in range(5)))
    assert {key.access_key for key in keys} == {"ASIAREFRESHED1"}
    assert refresher.calls == 1


async def test_a_failed_refresh_keeps_valid_keys_then_gives_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    refresher = Refresher(clock, 3600, fail=True)
    holder = AwsCredentials(lambda: refreshable(ADVISORY_REFRESH_S + 120, refresher))
    with caplog.at_level(logging.WARNING, logger="sidecar.aws"):
        assert (await holder.current()).access_key == "ASIAFIRST"
        clock.offset = timedelta(seconds=ADVISORY_REFRESH_S)  # 2 minutes left: still good
        assert (await holder.current()).access_key == "ASIAFIRST"
        assert (await holder.current()).access_key == "ASIAFIRST"
        clock.offset = timedelta(seconds=ADVISORY_REFRESH_S + 110)  # 10 s left: too close
        assert await holder.current() is None
    failures = [r for r in caplog.records if "could not be refreshed" in r.getMessage()]
    assert len(failures) == 1
    assert "ConnectionError: credential endpoint unreachable" in failures[0].getMessage()
    assert refresher.calls >= 2


async def test_a_chain_that_raises_means_no_credentials() -> None:
    def broken() -> Any:
        raise ValueError("malformed shared config")

    assert await AwsCredentials(broken).current() is None
