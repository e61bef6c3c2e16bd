"""The small text fields of a multipart/form-data request body (audio transcription and
translation, image edits): `model` for the labels, without copying the uploaded file.

The listener already holds the whole body; this reads only the part headers and the values
of parts without a filename, skipping each file's bytes with one search for the boundary.
"""

from __future__ import annotations

import re

# Fields longer than this are not a model name or a flag: they are skipped.
MAX_FIELD_BYTES = 1024
# At most this many text fields are read (a form with more is not an API call's).
MAX_FIELDS = 32

_BOUNDARY = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_NAME = re.compile(rb'[\s;]name\s*=\s*"([^"]*)"', re.IGNORECASE)
_FILENAME = re.compile(rb"[\s;]filename\*?\s*=", re.IGNORECASE)


def is_multipart(content_type: str) -> bool:
    """Whether a Content-Type names a multipart/form-data body."""
    return content_type.strip().lower().startswith("multipart/form-data")


def form_fields(body: bytes, content_type: str) -> dict[str, str] | None:
    """{name: value} of the form's small text fields; None when `body` is not multipart or
    has no boundary. A malformed body gives the fields read before the damage."""
    if not is_multipart(content_type):
        return None
    match = _BOUNDARY.search(content_type)
    if match is None:
        return None
    delimiter = b"--" + (match.group(1) or match.group(2)).encode("latin-1", "replace")
    fields: dict[str, str] = {}
    position = body.find(delimiter)
    while position >= 0 and len(fields) < MAX_FIELDS:
        start = position + len(delimiter)
        if body[start : start + 2] == b"--":
            break  # the closing delimiter
        head_end = body.find(b"\r\n\r\n", start)
        if head_end < 0:
            break
        head = body[start:head_end]
        following = body.find(b"\r\n" + delimiter, head_end + 4)
        if following < 0:
            break
        name = _NAME.search(head)
        size = following - (head_end + 4)
        if name is not None and _FILENAME.search(head) is None and size <= MAX_FIELD_BYTES:
            value = body[head_end + 4 : following]
            fields[name.group(1).decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        position = following + 2
    return fields
