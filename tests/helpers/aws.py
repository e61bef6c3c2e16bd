"""AWS credentials for the sidecar in tests: an environment that keeps botocore away from the
machine's own AWS setup, and a container credentials endpoint (what EKS Pod Identity and ECS
serve) that hands out short-lived keys."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Every variable botocore's credential chain reads: removed, then set as a test needs.
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_BEARER_TOKEN_BEDROCK",
)
POD_ACCESS_KEY = "ASIAPODIDENTITYTEST1"
POD_SECRET_KEY = "pod-secret-access-key-never-logged"
POD_SESSION_TOKEN = "pod-session-token-never-logged"
POD_IDENTITY_TOKEN = "eks-pod-identity-token-never-logged"


def isolated_aws_environ(directory: Path) -> dict[str, str]:
    """Settings under which botocore finds no credentials, config or instance metadata of the
    machine running the tests (files in `directory`, which do not exist)."""
    return {
        "AWS_CONFIG_FILE": str(directory / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(directory / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def pod_environ(directory: Path) -> dict[str, str]:
    """The pod's temporary credentials in the standard variables (the simulator accepts them
    once told: see `accept_pod_key`)."""
    return {
        **isolated_aws_environ(directory),
        "AWS_ACCESS_KEY_ID": POD_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": POD_SECRET_KEY,
        "AWS_SESSION_TOKEN": POD_SESSION_TOKEN,
    }


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """One set of temporary credentials the endpoint handed out."""

    access_key: str
    secret_key: str
    token: str
    expires_at: float  # Unix time


class ContainerCredentials:
    """A container credentials endpoint on 127.0.0.1 (the protocol of EKS Pod Identity's agent
    and ECS): every GET hands out new keys valid for `lifetime_s`, after `delay_s`, and calls
    `on_issue` with them first (to have the simulator accept them)."""

    def __init__(
        self,
        on_issue: Callable[[IssuedKey], None],
        *,
        lifetime_s: float,
        delay_s: float = 0.0,
        token: str = POD_IDENTITY_TOKEN,
    ) -> None:
        self.on_issue = on_issue
        self.lifetime_s = lifetime_s
        self.delay_s = delay_s
        self.token = token
        self.issued: list[IssuedKey] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1/credentials"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != endpoint.token:
                    endpoint.refused += 1
                    self.send_error(401)
                    return
                time.sleep(endpoint.delay_s)
                body = json.dumps(endpoint.issue()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return None

        return Handler

    def issue(self) -> dict[str, str]:
        """New keys, registered with `on_issue`, as the endpoint's JSON answer."""
        with self._lock:
            number = len(self.issued) + 1
            key = IssuedKey(
                f"ASIACONTAINER{number:04d}",
                f"container-secret-{number}",
                f"container-token-{number}",
                time.time() + self.lifetime_s,
            )
            self.on_issue(key)
            self.issued.append(key)
        expiration = datetime.fromtimestamp(key.expires_at, UTC).isoformat().replace("+00:00", "Z")
        return {
            "AccessKeyId": key.access_key,
            "SecretAccessKey": key.secret_key,
            "Token": key.token,
            "Expiration": expiration,
        }

    def environ(self) -> dict[str, str]:
        """The variables EKS Pod Identity sets in a pod (the token inline, not as a file)."""
        return {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.url,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": self.token,
        }

    @contextmanager
    def serving(self) -> Iterator[ContainerCredentials]:
        """Serve from a thread while inside."""
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()
