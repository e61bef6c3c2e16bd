"""The pod's AWS credentials, from botocore's standard chain, read without blocking the event loop.

botocore's chain finds them where AWS SDKs do: the environment (`AWS_ACCESS_KEY_ID`, ...), web
identity (IRSA: `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`), container credentials (EKS Pod
Identity and ECS: `AWS_CONTAINER_CREDENTIALS_FULL_URI`), shared config and credentials files,
and instance metadata. Finding them and refreshing temporary ones can do network I/O, so both
run in a thread: the chain is resolved in the background from the moment the holder is made,
and temporary credentials are refreshed ahead of their expiry while the old ones still sign.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("sidecar.aws")

# botocore refreshes temporary credentials in the last 15 minutes of their life (its advisory
# window) and stops using the old ones in the last 10 (its mandatory window). Until a minute
# before the first, reading them does no I/O; from then on they are refreshed in a thread,
# while the old ones keep signing until the mandatory window begins.
ADVISORY_REFRESH_S = 15 * 60 + 60
MANDATORY_REFRESH_S = 10 * 60
# Old credentials still sign after a failed refresh if they are valid for this long.
LAST_RESORT_S = 30

NO_CREDENTIALS = (
    "no AWS credentials found (environment, web identity / IRSA, EKS Pod Identity or container "
    "credentials, shared config, instance metadata): requests to %s are forwarded with "
    "the app's own signature, which AWS refuses because the app signed them for the sidecar's "
    "address. Give the pod an AWS identity (see the README, 'Amazon Bedrock')."
)

Resolver = Callable[[], Any]


class OneLineWarnings(logging.Filter):
    """Drops the tracebacks botocore attaches to its credential warnings: the sidecar logs
    what failed in one line of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


def default_chain() -> Any:
    """botocore's credential provider chain, resolved: Credentials, or None when none is found."""
    # The signer's modules too: loaded here, in a thread, not on the first call's event loop.
    import botocore.auth
    import botocore.awsrequest
    import botocore.session

    # botocore's debug lines carry the canonical request, security token included: they never
    # pass, whatever the sidecar's own level.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    botocore_log = logging.getLogger("botocore.credentials")
    if not any(isinstance(item, OneLineWarnings) for item in botocore_log.filters):
        botocore_log.addFilter(OneLineWarnings())
    return botocore.session.Session().get_credentials()


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Take a finished refresh's exception (already logged) so asyncio does not report it."""
    if not task.cancelled():
        task.exception()


def describe_error(error: BaseException) -> str:
    """A one-line description of a credential error (its type and the start of its message)."""
    text = " ".join(str(error).split())[:200]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class AwsCredentials:
    """Credentials to sign with, for every AWS-signed upstream of the sidecar (one per process).

    `resolve` (botocore's chain by default) runs once, in a thread, starting now.
    """

    def __init__(self, resolve: Resolver = default_chain, *, users: str = "AWS upstreams") -> None:
        self.users = users
        self._resolved: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._frozen: Any = None  # the last credentials read (botocore ReadOnlyCredentials)
        self._refresh: asyncio.Task[Any] | None = None
        self._failing = False  # a refresh failed and was logged; logged again once it recovers
        thread = threading.Thread(
            target=self._run_resolve, args=(resolve,), name="aws-credentials", daemon=True
        )
        thread.start()

    def _run_resolve(self, resolve: Resolver) -> None:
        source = None
        try:
            source = resolve()
        except Exception as exc:
            log.warning(
                "AWS credentials could not be loaded (%s); " + NO_CREDENTIALS,
                describe_error(exc),
                self.users,
            )
        else:
            if source is None:
                log.warning(NO_CREDENTIALS, self.users)
            else:
                log.info(
                    "AWS credentials found (%s): requests to %s are signed with them",
                    getattr(source, "method", None) or "unknown source",
                    self.users,
                )
        finally:
            self._resolved.set_result(source)

    async def source(self) -> Any:
        """botocore's credentials object (None when the chain found none), once resolved."""
        if self._resolved.done():
            return self._resolved.result()
        return await asyncio.wrap_future(self._resolved)

    async def current(self) -> Any:
        """Credentials to sign one request with (`access_key`, `secret_key`, `token`), or None
        when there are none. Never blocks the loop and never raises."""
        source = await self.source()
        if source is None:
            return None
        refresh_needed = getattr(source, "refresh_needed", None)
        if refresh_needed is None or not refresh_needed(ADVISORY_REFRESH_S):
            # Long-lived keys, or temporary ones far from expiry: reading them does no I/O.
            self._frozen = source.get_frozen_credentials()
            return self._frozen
        refresh = self._start_refresh(source)
        if self._frozen is not None and not refresh_needed(MANDATORY_REFRESH_S):
            return self._frozen  # still good: sign with them while the refresh runs
        try:
            return await asyncio.shield(refresh)
        except Exception:
            # Logged by the refresh; the old credentials, if still valid, are better than none.
            if self._frozen is not None and not refresh_needed(LAST_RESORT_S):
                return self._frozen
            return None

    def _start_refresh(self, source: Any) -> asyncio.Task[Any]:
        """The refresh under way, or a new one (one at a time, shared by every caller)."""
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.get_running_loop().create_task(self._refreshed(source))
            self._refresh.add_done_callback(_retrieve)
        return self._refresh

    async def _refreshed(self, source: Any) -> Any:
        try:
            frozen = await asyncio.to_thread(source.get_frozen_credentials)
        except Exception as exc:
            if not self._failing:
                self._failing = True
                log.warning(
                    "AWS credentials could not be refreshed (%s): requests to %s are signed "
                    "with the old ones while valid, then forwarded unsigned",
                    describe_error(exc),
                    self.users,
                )
            raise
        if self._failing:
            self._failing = False
            log.info("AWS credentials refreshed again")
        self._frozen = frozen
        return frozen
