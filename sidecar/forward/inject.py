"""What the sidecar adds to a request on its way upstream, to be removed on the way back."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.protocols.interface import WireProtocol
from sidecar.record import CallRecord


@dataclass(frozen=True, slots=True)
class Injected:
    """What the sidecar asked the upstream for that the app did not (removed on the way back)."""

    usage: bool = False
    logprobs: bool = False

    @property
    def any(self) -> bool:
        """Whether anything was injected."""
        return self.usage or self.logprobs


def inject_fields(
    protocol: WireProtocol,
    record: CallRecord,
    body: bytes,
    stream_usage: bool,
    logprobs: bool,
) -> tuple[bytes, Injected]:
    """The body to send upstream: asking for stream usage and/or logprobs when enabled."""
    info = record.request
    usage_added = logprobs_added = False
    if stream_usage and info.stream:
        changed = protocol.inject_stream_usage(info, body)
        if changed is not None:
            body, usage_added = changed, True
            record.stream_usage_injected = True
    if logprobs:
        changed = protocol.inject_logprobs(info, body)
        if changed is not None:
            body, logprobs_added = changed, True
            info.logprobs = True
    return body, Injected(usage_added, logprobs_added)
