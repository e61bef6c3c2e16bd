"""The app's request, asking for another model: the `model` field of the JSON body, or the
model segment of a Gemini or Vertex AI path. Everything else in the request stays as the app
sent it."""

from __future__ import annotations

from urllib.parse import quote

import orjson

from sidecar.forward.exchange import Outbound
from sidecar.forward.routing import Route
from sidecar.protocols.gemini import gemini_call

# Protocols whose paths name the model (`.../models/{model}:{method}`).
_MODEL_IN_PATH = frozenset(("gemini", "vertex"))


def ask_for_model(outbound: Outbound, target: Route, model: str) -> Outbound | None:
    """`outbound` rewritten to ask `target` for `model` (`target` speaks the same protocol;
    its path is the request's), or None when the request's model cannot be found."""
    method, route, query, body, json, info = outbound
    protocol = route.protocol
    if info.request_model == model:
        return outbound._replace(route=target)
    path = route.path
    current, call = gemini_call(path)
    if current is not None and protocol.name in _MODEL_IN_PATH:
        at = path.rfind("/models/")
        new_path = f"{path[: at + len('/models/')]}{quote(model, safe='')}:{call}"
        new_route = Route(target.upstream, target.protocol, new_path)
        return Outbound(
            method, new_route, query, body, json, protocol.classify(method, new_path, query, json)
        )
    if not isinstance(json, dict) or "model" not in json:
        return None
    changed = {**json, "model": model}
    info = protocol.classify(method, path, query, changed)
    return Outbound(method, target, query, orjson.dumps(changed), changed, info)
