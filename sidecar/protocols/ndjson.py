"""Newline-delimited JSON streams (`application/x-ndjson`): one JSON object a line, parsed as
each line completes; a line cut short by the end of the stream is never parsed."""

from __future__ import annotations

from abc import abstractmethod

from sidecar.protocols.parsers import ResponseParser
from sidecar.record import CallRecord

# A line longer than this (Ollama's last line may carry a long `context`) is dropped unread
# (and with it the stream's chance to look complete), so memory stays bounded.
MAX_LINE_BYTES = 8 * 1024 * 1024


def is_ndjson(content_type: str) -> bool:
    """Whether a Content-Type names a newline-delimited JSON stream."""
    kind = content_type.strip().lower()
    return "ndjson" in kind or kind.startswith("application/jsonl")


class LineStreamParser(ResponseParser):
    """Splits a stream into lines and hands each complete, non-blank one to `on_line`."""

    def __init__(self, record: CallRecord, content_encoding: str = "") -> None:
        super().__init__(record, content_encoding)
        self._partial = b""
        self._skipping = False  # inside an oversized line, until its end

    def feed_decoded(self, data: bytes, now: float) -> None:
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            if self._skipping:
                self._skipping = False
            else:
                line = self._partial + data[start:end] if self._partial else data[start:end]
                self._partial = b""
                if line.strip():
                    self.on_line(line, now)
            start = end + 1
        if self._skipping or start == len(data):
            return
        self._partial += data[start:]
        if len(self._partial) > MAX_LINE_BYTES:
            self._partial = b""
            self._skipping = True

    @abstractmethod
    def on_line(self, line: bytes, now: float) -> None:
        """One complete line (without its newline)."""

    @property
    def complete(self) -> bool:
        """True once the protocol's last line was seen; a stream without it was cut short."""
        return False

    def finish(self) -> None:
        self._partial = b""
