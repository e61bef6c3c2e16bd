"""The app's request, asking for another model: the `model` field of the JSON body, or the
model segment of a Gemini path. Everything else in the request stays as the app sent it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from sidecar.protocols.gemini import gemini_call
from sidecar.protocols.interface import WireProtocol
from sidecar.record import RequestInfo


@dataclass(frozen=True, slots=True)
class Rewritten:
    """A request for another model: its path, body (raw and decoded) and what the protocol
    learns from it."""

    path: str
    body: bytes
    json: Any
    info: RequestInfo


def ask_for_model(
    protocol: WireProtocol,
    method: str,
    path: str,
    query: str,
    body: bytes,
    json: Any,
    info: RequestInfo,
    model: str,
) -> Rewritten | None:
    """The request rewritten to ask for `model`, or None when its model cannot be found;
    `json` is `body` decoded."""
    if info.request_model == model:
        return Rewritten(path, body, json, info)
    current, call = gemini_call(path)
    if current is not None and protocol.name == "gemini":
        at = path.rfind("/models/")
        new_path = f"{path[: at + len('/models/')]}{quote(model, safe='')}:{call}"
        return Rewritten(new_path, body, json, protocol.classify(method, new_path, query, json))
    if not isinstance(json, dict) or "model" not in json:
        return None
    changed = {**json, "model": model}
    return Rewritten(
        path, orjson.dumps(changed), changed, protocol.classify(method, path, query, changed)
    )
