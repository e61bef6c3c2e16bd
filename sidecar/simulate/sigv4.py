"""What a simulated AWS service accepts: SigV4 signatures from known credentials, checked as
AWS checks them, or Bedrock API keys (`Authorization: Bearer ...`).

The signature is recomputed with botocore's signer over the request as received (method, raw
path and query, the headers the client signed, body) and compared with the one sent.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from multidict import MultiMapping

# Test credentials the simulator accepts unless told otherwise; they open nothing real.
SIMULATOR_ACCESS_KEY = "AKIDSIMULATOR"
SIMULATOR_SECRET_KEY = "simulator-secret-access-key"
SERVICE = "bedrock"
# AWS refuses a signature dated more than 15 minutes from its own clock.
MAX_SKEW_S = 15 * 60

_ALGORITHM = "AWS4-HMAC-SHA256"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_INVALID_TOKEN = "The security token included in the request is invalid."
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)


@dataclass(frozen=True, slots=True)
class AwsCredential:
    """An access key the simulator accepts; temporary ones carry a session token and expiry."""

    access_key: str
    secret_key: str
    session_token: str | None = None
    expires_at: float | None = None  # Unix time; None = never expires


@dataclass(frozen=True, slots=True)
class AuthRefusal:
    """Why a request is refused, as AWS names it (`code` goes into `x-amzn-ErrorType`)."""

    code: str
    message: str
    status: int = 403


@dataclass(frozen=True, slots=True)
class _Authorization:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


class AwsAuth:
    """The credentials a simulated AWS service accepts, and the check of each request."""

    def __init__(
        self,
        credentials: Iterable[AwsCredential] | None = None,
        *,
        api_keys: Iterable[str] = (),
        service: str = SERVICE,
        region: str | None = None,
        max_skew_s: float = MAX_SKEW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`region` None accepts a signature scoped to any region (the simulator has none)."""
        if credentials is None:
            credentials = [AwsCredential(SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY)]
        self._credentials = {c.access_key: c for c in credentials}
        self._api_keys = set(api_keys)
        self.service = service
        self.region = region
        self.max_skew_s = max_skew_s
        self.clock = clock

    @property
    def credentials(self) -> tuple[AwsCredential, ...]:
        """The accepted access keys."""
        return tuple(self._credentials.values())

    def accept(
        self,
        access_key: str,
        secret_key: str,
        *,
        session_token: str | None = None,
        expires_at: float | None = None,
    ) -> AwsCredential:
        """Accept (or replace) an access key; a session token makes it temporary."""
        credential = AwsCredential(access_key, secret_key, session_token, expires_at)
        self._credentials[access_key] = credential
        return credential

    def accept_api_key(self, key: str) -> None:
        """Accept a Bedrock API key, sent as `Authorization: Bearer <key>`."""
        self._api_keys.add(key)

    def revoke(self, access_key: str) -> None:
        """Stop accepting an access key (or API key)."""
        self._credentials.pop(access_key, None)
        self._api_keys.discard(access_key)

    def check(
        self, method: str, raw_path_qs: str, headers: MultiMapping[str], body: bytes
    ) -> AuthRefusal | None:
        """None when the request is signed by an accepted credential, else why not."""
        header = headers.get("Authorization")
        if header is None:
            return AuthRefusal(
                "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        if header.startswith("Bearer "):
            if header[7:].strip() in self._api_keys:
                return None
            return AuthRefusal("UnrecognizedClientException", _INVALID_TOKEN)
        parsed = _parse_authorization(header)
        if isinstance(parsed, AuthRefusal):
            return parsed
        amz_date = headers.get("X-Amz-Date")
        if amz_date is None:
            return _incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a "
                "'Date' header."
            )
        try:
            signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
        except ValueError:
            return _incomplete(f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.")
        refusal = self._check_scope(parsed, amz_date) or self._check_clock(amz_date, signed_at)
        if refusal is not None:
            return refusal
        credential = self._credentials.get(parsed.access_key)
        token = headers.get("X-Amz-Security-Token")
        if credential is None or token != credential.session_token:
            return AuthRefusal("UnrecognizedClientException", _INVALID_TOKEN)
        if credential.expires_at is not None and credential.expires_at <= self.clock():
            return AuthRefusal(
                "ExpiredTokenException", "The security token included in the request is expired"
            )
        try:
            from sidecar.simulate.sigv4_signer import signature
        except ImportError:
            return AuthRefusal(
                "InternalServerException",
                "The simulator needs botocore to verify SigV4 signatures: pip install botocore.",
                status=500,
            )
        host = headers.get("Host", "localhost")
        expected = signature(
            method=method,
            url=f"http://{host}{raw_path_qs}",
            headers=[
                (name, value)
                for name in parsed.signed_headers
                for value in headers.getall(name, ())
            ],
            body=body,
            signed_headers=parsed.signed_headers,
            timestamp=amz_date,
            access_key=credential.access_key,
            secret_key=credential.secret_key,
            session_token=credential.session_token,
            region=parsed.region,
            service=parsed.service,
        )
        if not hmac.compare_digest(expected, parsed.signature):
            return AuthRefusal("InvalidSignatureException", _MISMATCH)
        return None

    def _check_scope(self, parsed: _Authorization, amz_date: str) -> AuthRefusal | None:
        if parsed.date != amz_date[:8]:
            return AuthRefusal(
                "InvalidSignatureException",
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                f"date from HTTP: '{parsed.date}' != '{amz_date[:8]}', from '{amz_date}'.",
            )
        if parsed.service != self.service:
            return AuthRefusal(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{self.service}'. ",
            )
        if self.region is not None and parsed.region != self.region:
            return AuthRefusal(
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region, not '{parsed.region}'. ",
            )
        return None

    def _check_clock(self, amz_date: str, signed_at: datetime) -> AuthRefusal | None:
        now = datetime.fromtimestamp(self.clock(), UTC)
        skew = timedelta(seconds=self.max_skew_s)
        minutes = f"{self.max_skew_s / 60:g} min."
        if signed_at < now - skew:
            return AuthRefusal(
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is now earlier than "
                f"{(now - skew).strftime(_AMZ_DATE)} ({now.strftime(_AMZ_DATE)} - {minutes})",
            )
        if signed_at > now + skew:
            return AuthRefusal(
                "InvalidSignatureException",
                f"Signature not yet current: {amz_date} is still later than "
                f"{(now + skew).strftime(_AMZ_DATE)} ({now.strftime(_AMZ_DATE)} + {minutes})",
            )
        return None


def _incomplete(message: str) -> AuthRefusal:
    return AuthRefusal("IncompleteSignatureException", message)


def _parse_authorization(header: str) -> _Authorization | AuthRefusal:
    """The parts of `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`."""
    algorithm, _, rest = header.partition(" ")
    if algorithm != _ALGORITHM:
        return _incomplete(f"Unsupported authorization type: '{algorithm}'.")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    missing = [key for key in ("Credential", "SignedHeaders", "Signature") if not fields.get(key)]
    if missing:
        return _incomplete(
            " ".join(f"Authorization header requires '{key}' parameter." for key in missing)
        )
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
        return _incomplete(
            "Credential should be scoped to a valid region, service and date, as "
            "<key>/<YYYYMMDD>/<region>/<service>/aws4_request."
        )
    return _Authorization(
        access_key=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3],
        signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=fields["Signature"],
    )
