"""What the sidecar adds to a request on its way upstream, to be removed on the way back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDict

from sidecar.protocols.interface import WireProtocol
from sidecar.record import CallOptions, RequestInfo


@dataclass(frozen=True, slots=True)
class Injected:
    """What the sidecar asked the upstream for that the app did not (removed on the way back)."""

    usage: bool = False
    logprobs: bool = False

    @property
    def any(self) -> bool:
        """Whether anything was injected."""
        return self.usage or self.logprobs


# One shared instance per combination: nothing is allocated per call.
NOTHING, USAGE, LOGPROBS, BOTH = (
    Injected(usage, logprobs)
    for usage, logprobs in ((False, False), (True, False), (False, True), (True, True))
)


def inject_fields(
    protocol: WireProtocol,
    info: RequestInfo,
    body: Any,
    raw_body: bytes,
    options: CallOptions,
    headers: CIMultiDict[str],
) -> tuple[bytes, Injected]:
    """The body to send upstream, asking for stream usage and/or logprobs as `options` say;
    `body` is `raw_body` decoded. What is added must be removed byte-exactly on the way back,
    so the response is then asked for uncompressed."""
    usage_added = logprobs_added = False
    if options.stream_usage and info.stream:
        changed = protocol.inject_stream_usage(info, body, raw_body)
        if changed is not None:
            raw_body, usage_added = changed, True
    if options.logprobs:
        changed = protocol.inject_logprobs(info, body, raw_body)
        if changed is not None:
            raw_body, logprobs_added = changed, True
    if not (usage_added or logprobs_added):
        return raw_body, NOTHING
    headers["Accept-Encoding"] = "identity"
    if usage_added:
        return raw_body, BOTH if logprobs_added else USAGE
    return raw_body, LOGPROBS
