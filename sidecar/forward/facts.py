"""Facts about the app's request that stages need after the call, taken on the call path.

Only hashes are kept of what identifies a request (its Idempotency-Key, its body for
repeatability); the decoded body itself travels with the record only when a stage or content
capture asked for it, and only up to `MAX_KEPT_BODY_BYTES`, so a backed-up sink queue never
holds thousands of large prompts.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

# Request bodies larger than this are not kept for the audit sample or content capture.
MAX_KEPT_BODY_BYTES = 1024 * 1024
# Left out of the request fingerprint: apps vary them between otherwise identical calls
# (and the sidecar may add `stream_options` itself).
_UNFINGERPRINTED_FIELDS = ("stream_options",)


def hash_idempotency_key(value: str) -> bytes:
    """A 16-byte digest of an Idempotency-Key, so the key itself is never stored."""
    return hashlib.blake2b(value.encode("utf-8", "replace"), digest_size=16).digest()


def request_fingerprint(upstream: str, method: str, path: str, body: Any) -> bytes:
    """A hash of where the request went and its canonical JSON body minus stream options."""
    if isinstance(body, dict) and any(key in body for key in _UNFINGERPRINTED_FIELDS):
        body = {key: value for key, value in body.items() if key not in _UNFINGERPRINTED_FIELDS}
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{upstream}\0{method}\0{path}\0".encode())
    digest.update(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    return digest.digest()


def kept_body(body: Any, size: int) -> Any:
    """The decoded body to keep with the record: itself when `size` bytes fit the budget."""
    return body if size <= MAX_KEPT_BODY_BYTES else None
