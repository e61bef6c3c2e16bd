"""What an admin handler answers: a status, headers and a whole body (no streaming needed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete admin response."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


def json_reply(document: Any, status: int = 200, *extra: tuple[str, str]) -> Reply:
    """`document` as JSON (the separators aiohttp's json_response used: clients grep them)."""
    return Reply(status, json.dumps(document).encode(), (("Content-Type", JSON_TYPE), *extra))


def text_reply(text: str, status: int = 200) -> Reply:
    """A short plain-text answer (probes read only the status)."""
    return Reply(status, text.encode(), (("Content-Type", TEXT_TYPE),))


def error_reply(status: int, message: str, *extra: tuple[str, str]) -> Reply:
    """`{"error": {"message": ...}}`, the shape every admin error has."""
    return json_reply({"error": {"message": message}}, status, *extra)
