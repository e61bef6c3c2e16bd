"""Content-Encoding undone (gzip, deflate, brotli) as bytes pass, so compressed bodies parse."""

from __future__ import annotations

import zlib
from typing import Any


class ContentDecoder:
    """Incrementally undoes a Content-Encoding so a compressed body can be parsed."""

    def __init__(self, encoding: str) -> None:
        self._brotli: Any = None
        self._zlib: Any = None
        enc = encoding.strip().lower()
        if enc in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self._zlib = zlib.decompressobj()
        elif enc == "br":
            import brotli

            self._brotli = brotli.Decompressor()
        self.identity = self._zlib is None and self._brotli is None

    def decode(self, data: bytes) -> bytes:
        """Decoded bytes of one more piece of the body; b"" when it cannot be decoded."""
        try:
            if self._zlib is not None:
                return bytes(self._zlib.decompress(data))
            if self._brotli is not None:
                return bytes(self._brotli.process(data))
        except Exception:
            self._zlib = None
            self._brotli = None
            return b""
        return data


def decodable_encodings() -> tuple[str, ...]:
    """Content-Encodings the sidecar can read, for filtering Accept-Encoding upstream."""
    try:
        import brotli  # noqa: F401

        return ("gzip", "deflate", "br")
    except ImportError:
        return ("gzip", "deflate")
