"""The audit sample: a JSON-lines file of sampled request/response pairs for human review.

Opt-in (`audit.sample_rate`). Headers are never written; body fields that carry credentials
are dropped, strings that look like API keys and the operator's `audit.redact` patterns
are replaced by [REDACTED]; the file is rotated past `audit.max_bytes`.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from pathlib import Path
from typing import IO, Any

import orjson

from sidecar.config.experiments import AuditConfig
from sidecar.record import CallRecord

log = logging.getLogger("sidecar.experiments.audit")

REDACTED = "[REDACTED]"
# Body fields whose value is a credential, whatever it looks like.
CREDENTIAL_FIELDS = frozenset(
    (
        "api_key",
        "apikey",
        "api-key",
        "authorization",
        "x-api-key",
        "x-goog-api-key",
        "access_token",
        "password",
        "secret",
    )
)
# Strings shaped like provider keys and bearer tokens, redacted wherever they appear.
KEY_PATTERNS = (
    r"sk-[A-Za-z0-9_\-]{8,}",
    r"AIza[0-9A-Za-z_\-]{20,}",
    r"(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}",
)


class Redactor:
    """Removes credential fields and replaces key-shaped strings and configured patterns."""

    def __init__(self, patterns: list[str], max_chars: int) -> None:
        # Compiled one by one: an operator's pattern may carry its own global flags.
        self._patterns = [re.compile(p) for p in (*KEY_PATTERNS, *patterns)]
        self.max_chars = max_chars

    def text(self, value: str) -> str:
        """A string cut to `max_chars`, with every match replaced."""
        value = value[: self.max_chars]
        for pattern in self._patterns:
            value = pattern.sub(REDACTED, value)
        return value

    def value(self, value: Any) -> Any:
        """A JSON value with credentials removed and strings redacted, recursively."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                key: self.value(item)
                for key, item in value.items()
                if str(key).lower() not in CREDENTIAL_FIELDS
            }
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value


class AuditLog:
    """Chooses calls at the configured rate and writes each as one JSON line, size-rotated."""

    def __init__(self, config: AuditConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.path = Path(config.path)
        self.redactor = Redactor(config.redact, config.max_chars)
        self._rng = rng or random.Random()
        self._file: IO[bytes] | None = None
        self._size = 0

    def sample(self) -> bool:
        """Whether the next call goes into the sample."""
        return self._rng.random() < self.config.sample_rate

    def entry(self, record: CallRecord) -> dict[str, Any]:
        """The audit line of a finished call (redacted; no headers)."""
        request = record.request
        response: dict[str, Any] = {}
        if record.output_text is not None:
            response["text"] = self.redactor.text(record.output_text)
        if record.output_tool_calls:
            response["tool_calls"] = [self.redactor.text(c) for c in record.output_tool_calls]
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.start_unix_ns / 1e9)),
            "request_id": record.request_id,
            "experiment": record.experiment,
            "variant": record.variant,
            "upstream": record.upstream,
            "path": record.path,
            "operation": request.operation,
            "request_model": request.request_model,
            "response_model": record.response_model,
            "http_status": record.http_status,
            "outcome": record.outcome,
            "duration_seconds": round(record.duration, 6),
            "input_tokens": record.input_tokens,
            "output_tokens": record.output_tokens,
            "cost_usd": record.cost_usd,
            "confidence": record.confidence,
            "finish_reasons": record.finish_reasons,
            "request": self.redactor.value(record.request_body),
            "response": response,
        }

    def write(self, record: CallRecord) -> None:
        """Append the call's line, rotating the file first when it would grow past max_bytes."""
        line = orjson.dumps(self.entry(record), default=str) + b"\n"
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
            self._size = self._file.tell()
        if self._size and self._size + len(line) > self.config.max_bytes:
            self._rotate()
        assert self._file is not None
        self._file.write(line)
        self._file.flush()
        self._size += len(line)

    def _rotate(self) -> None:
        """audit.jsonl → audit.jsonl.1 → … → audit.jsonl.N (the oldest is removed)."""
        self.close()
        backups = self.config.backups
        if backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for index in range(backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._file = self.path.open("ab")
        self._size = 0

    def close(self) -> None:
        """Close the file (it is reopened on the next write)."""
        if self._file is not None:
            self._file.close()
            self._file = None
