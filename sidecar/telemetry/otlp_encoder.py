"""OTLP trace protobuf written by hand: one CLIENT span at a time, straight to wire bytes.

The SDK's generic encoder builds a protobuf object per span, attribute and value; this one
writes `opentelemetry.proto.trace.v1.Span` bytes directly (keys pre-encoded once, the
resource and scope encoded once), and joins encoded spans into an
`ExportTraceServiceRequest` without touching them again. Field numbers follow
opentelemetry-proto; tests decode the output with opentelemetry-proto and compare it
with what the SDK's encoder produces for the same span.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

log = logging.getLogger("sidecar.telemetry.otlp_encoder")

SPAN_KIND_CLIENT = 3
STATUS_CODE_ERROR = 2
# Span.flags: the W3C trace flags are not repeated here; bit 8 says whether bit 9
# ("the parent is remote") is known.
FLAG_HAS_IS_REMOTE = 0x100
FLAG_IS_REMOTE = 0x200

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MASK = (1 << 64) - 1
_MAX_CACHED_KEYS = 1024
MAX_CACHED_VALUES = 256  # distinct values remembered per attribute key
MAX_CACHED_FIELD_BYTES = 160  # longer fields (message content) are never remembered
_ONE_BYTE = tuple(bytes((value,)) for value in range(128))
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack

# Tags (field number << 3 | wire type), named after the message and field they open.
_REQUEST_RESOURCE_SPANS = b"\x0a"
_RESOURCE_SPANS_RESOURCE = b"\x0a"
_RESOURCE_SPANS_SCOPE_SPANS = b"\x12"
_RESOURCE_ATTRIBUTES = b"\x0a"
_SCOPE_SPANS_SCOPE = b"\x0a"
_SCOPE_SPANS_SPANS = b"\x12"
_SCOPE_NAME = b"\x0a"
_SPAN_TRACE_ID = b"\x0a\x10"  # with the fixed length: 16 bytes
_SPAN_SPAN_ID = b"\x12\x08"  # 8 bytes
_SPAN_PARENT_SPAN_ID = b"\x22\x08"
_SPAN_NAME = b"\x2a"
_SPAN_KIND_CLIENT = b"\x30" + _ONE_BYTE[SPAN_KIND_CLIENT]
_SPAN_START = b"\x39"
_SPAN_END = b"\x41"
_SPAN_ATTRIBUTE = b"\x4a"
_SPAN_EVENT = b"\x5a"
_SPAN_STATUS = b"\x7a"
_SPAN_FLAGS = b"\x85\x01"  # field 16, fixed32
_EVENT_TIME = b"\x09"
_EVENT_NAME = b"\x12"
_EVENT_ATTRIBUTE = b"\x1a"
_STATUS_MESSAGE = b"\x12"
_STATUS_CODE = b"\x18"
_KEY_VALUE_KEY = b"\x0a"
_KEY_VALUE_VALUE = b"\x12"
_ANY_STRING = b"\x0a"
_ANY_BOOL_TRUE = b"\x10\x01"
_ANY_BOOL_FALSE = b"\x10\x00"
_ANY_INT = b"\x18"
_ANY_DOUBLE = b"\x21"
_ANY_ARRAY = b"\x2a"
_ANY_KVLIST = b"\x32"
_ANY_BYTES = b"\x3a"
_LIST_VALUES = b"\x0a"  # ArrayValue.values and KeyValueList.values
_UNSET_STATUS = _SPAN_STATUS + b"\x00"
_ROOT_FLAGS = _SPAN_FLAGS + _FIXED32(FLAG_HAS_IS_REMOTE)
_CHILD_OF_REMOTE_FLAGS = _SPAN_FLAGS + _FIXED32(FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE)


def varint(value: int) -> bytes:
    """A non-negative integer as a protobuf base-128 varint."""
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    size = len(payload)
    return tag + (_ONE_BYTE[size] if size < 0x80 else varint(size)) + payload


def _utf8(value: str) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError:  # lone surrogates: never send invalid UTF-8 to a collector
        return value.encode(errors="replace")


def any_value(value: Any) -> bytes | None:
    """An `AnyValue` message body, or None for a value OTLP cannot carry (it is left out)."""
    kind = type(value)
    if kind is str:
        return length_delimited(_ANY_STRING, _utf8(value))
    if kind is bool:
        return _ANY_BOOL_TRUE if value else _ANY_BOOL_FALSE
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            return None
        return _ANY_INT + varint(value & _UINT64_MASK)
    if kind is float:
        return _ANY_DOUBLE + _DOUBLE(value)
    if kind is tuple or kind is list:
        return _array(value)
    return _any_value_of_subclass(value)


def _any_value_of_subclass(value: Any) -> bytes | None:
    """The slower path for subclasses (enums, str/int subclasses), bytes, sequences, mappings."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return any_value(bool(value))
    if isinstance(value, str):  # the content, whatever __str__ says (str-mixin enums)
        return length_delimited(_ANY_STRING, _utf8(value))
    if isinstance(value, int):
        return any_value(int(value))
    if isinstance(value, float):
        return any_value(float(value))
    if isinstance(value, bytes):
        return length_delimited(_ANY_BYTES, value)
    if isinstance(value, Sequence):
        return _array(value)
    if isinstance(value, Mapping):
        items = b"".join(
            length_delimited(_LIST_VALUES, pair)
            for key, item in value.items()
            if (pair := _key_value(_key_field(str(key)), item)) is not None
        )
        return length_delimited(_ANY_KVLIST, items)
    return None


def _array(values: Iterable[Any]) -> bytes | None:
    encoded = []
    for item in values:
        body = any_value(item)
        if body is None:
            return None
        encoded.append(length_delimited(_LIST_VALUES, body))
    return length_delimited(_ANY_ARRAY, b"".join(encoded))


def _key_field(key: str) -> bytes:
    """`KeyValue.key` followed by the tag of `KeyValue.value`: everything before the value."""
    return length_delimited(_KEY_VALUE_KEY, _utf8(key)) + _KEY_VALUE_VALUE


def _key_value(key_field: bytes, value: Any) -> bytes | None:
    body = any_value(value)
    if body is None:
        return None
    size = len(body)
    return key_field + (_ONE_BYTE[size] if size < 0x80 else varint(size)) + body


def _remember(
    caches: dict[str, dict[str | int, bytes] | None],
    key: str,
    cache: dict[str | int, bytes] | None,
    value: str | int,
    field: bytes,
) -> None:
    """Keep `field` for `value` of `key`, or mark `key` high-cardinality once it has too many."""
    if cache is None:
        if len(caches) >= _MAX_CACHED_KEYS:
            return
        cache = caches[key] = {}
    if len(cache) < MAX_CACHED_VALUES:
        cache[value] = field
    else:
        caches[key] = None


class OtlpSpanEncoder:
    """Encodes CLIENT spans of one resource and instrumentation scope as OTLP protobuf bytes."""

    def __init__(self, resource_attributes: Mapping[str, Any], scope_name: str) -> None:
        self._key_fields: dict[str, bytes] = {}
        # {tag: {key: {str or int value: field}}}; None for a high-cardinality key.
        self._cached_fields: dict[bytes, dict[str, dict[str | int, bytes] | None]] = {}
        resource = self.attributes(_RESOURCE_ATTRIBUTES, resource_attributes)
        scope = length_delimited(_SCOPE_NAME, _utf8(scope_name))
        self._resource_field = length_delimited(_RESOURCE_SPANS_RESOURCE, resource)
        self._scope_field = length_delimited(_SCOPE_SPANS_SCOPE, scope)

    def attributes(self, tag: bytes, attributes: Mapping[str, Any]) -> bytes:
        """Repeated `KeyValue` fields with `tag`; values OTLP cannot carry are left out.

        Whole fields of string and integer values (never equal to each other, unlike
        bools, ints and floats) of at most `MAX_CACHED_FIELD_BYTES` are remembered per
        (tag, key) up to `MAX_CACHED_VALUES` distinct values; past that the key counts as
        high-cardinality (ids, token counts) and is encoded every time.
        """
        caches = self._cached_fields.get(tag)
        if caches is None:
            caches = self._cached_fields[tag] = {}
        out = []
        for key, value in attributes.items():
            kind = type(value)
            if kind is str or kind is int:
                cache = caches.get(key)
                if cache is not None:
                    field = cache.get(value)
                    if field is not None:
                        out.append(field)
                        continue
                field = self._field(tag, key, value)
                if field is not None:
                    out.append(field)
                    if len(field) <= MAX_CACHED_FIELD_BYTES and (
                        cache is not None or key not in caches
                    ):
                        _remember(caches, key, cache, value, field)
                continue
            field = self._field(tag, key, value)
            if field is not None:
                out.append(field)
        return b"".join(out)

    def _field(self, tag: bytes, key: str, value: Any) -> bytes | None:
        """One attribute as a field with `tag`, or None (logged) when OTLP cannot carry it."""
        key_field = self._key_fields.get(key)
        if key_field is None:
            key_field = _key_field(key)
            if len(self._key_fields) < _MAX_CACHED_KEYS:
                self._key_fields[key] = key_field
        pair = _key_value(key_field, value)
        if pair is None:
            log.debug("attribute %s: %r cannot be sent over OTLP; left out", key, value)
            return None
        size = len(pair)
        return tag + (_ONE_BYTE[size] if size < 0x80 else varint(size)) + pair

    def encode_span(
        self,
        *,
        trace_id: int,
        span_id: int,
        parent_span_id: int | None,
        name: str,
        start_unix_ns: int,
        end_unix_ns: int,
        attributes: Mapping[str, Any],
        events: Sequence[tuple[str, Mapping[str, Any], int]] = (),
        error_message: str | None = None,
    ) -> bytes:
        """One CLIENT span as a `ScopeSpans.spans` field, ready for `encode_request`.

        A parent is always the app's span, hence remote; `error_message` set means
        status ERROR with that message, else the status is UNSET.
        """
        parts = [
            _SPAN_TRACE_ID + trace_id.to_bytes(16, "big"),
            _SPAN_SPAN_ID + span_id.to_bytes(8, "big"),
        ]
        if parent_span_id is not None:
            parts.append(_SPAN_PARENT_SPAN_ID + parent_span_id.to_bytes(8, "big"))
        parts.append(length_delimited(_SPAN_NAME, _utf8(name)))
        parts.append(_SPAN_KIND_CLIENT)
        parts.append(_SPAN_START + _FIXED64(start_unix_ns))
        parts.append(_SPAN_END + _FIXED64(end_unix_ns))
        parts.append(self.attributes(_SPAN_ATTRIBUTE, attributes))
        for event_name, event_attributes, timestamp in events:
            event = (
                _EVENT_TIME
                + _FIXED64(timestamp)
                + length_delimited(_EVENT_NAME, _utf8(event_name))
                + self.attributes(_EVENT_ATTRIBUTE, event_attributes)
            )
            parts.append(length_delimited(_SPAN_EVENT, event))
        if error_message is None:
            parts.append(_UNSET_STATUS)
        else:
            status = _STATUS_CODE + _ONE_BYTE[STATUS_CODE_ERROR]
            if error_message:
                status = length_delimited(_STATUS_MESSAGE, _utf8(error_message)) + status
            parts.append(length_delimited(_SPAN_STATUS, status))
        parts.append(_ROOT_FLAGS if parent_span_id is None else _CHILD_OF_REMOTE_FLAGS)
        return length_delimited(_SCOPE_SPANS_SPANS, b"".join(parts))

    def encode_request(self, spans: Sequence[bytes]) -> bytes:
        """An `ExportTraceServiceRequest` carrying encoded spans under the resource and scope.

        Lengths are worked out first, so the spans are copied once, by a single join.
        """
        scope_spans_size = len(self._scope_field) + sum(map(len, spans))
        scope_spans_head = _RESOURCE_SPANS_SCOPE_SPANS + varint(scope_spans_size)
        resource_spans_size = len(self._resource_field) + len(scope_spans_head) + scope_spans_size
        head = _REQUEST_RESOURCE_SPANS + varint(resource_spans_size)
        return b"".join((head, self._resource_field, scope_spans_head, self._scope_field, *spans))
