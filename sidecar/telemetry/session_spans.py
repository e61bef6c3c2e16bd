"""A Realtime session's span: its name, attributes and events (its responses are spans of their
own, children of this one, built like any call's by span_attributes.py)."""

from __future__ import annotations

from opentelemetry.util.types import AttributeValue

from sidecar.record import OK, SessionRecord

SESSION_OPERATION = "realtime_session"
ERROR_EVENT = "model_sidecar.realtime.error"


def session_span_name(session: SessionRecord) -> str:
    """`realtime_session {gen_ai.request.model}` (the GenAI conventions name no realtime
    operation yet; this is the sidecar's own)."""
    model = session.request_model
    return f"{SESSION_OPERATION} {model}" if model else SESSION_OPERATION


def session_attributes(session: SessionRecord) -> dict[str, AttributeValue]:
    """The semconv and `model_sidecar.*` attributes of a session; unknown values left out."""
    pairs: tuple[tuple[str, AttributeValue | None], ...] = (
        ("gen_ai.provider.name", session.provider_name),
        ("gen_ai.request.model", session.request_model),
        ("gen_ai.response.model", session.response_model),
        ("gen_ai.conversation.id", session.session_id),
        ("gen_ai.usage.input_tokens", session.input_tokens if session.responses else None),
        ("gen_ai.usage.output_tokens", session.output_tokens if session.responses else None),
        ("gen_ai.usage.cache_read.input_tokens", session.cache_read_tokens or None),
        ("model_sidecar.usage.input_audio_tokens", session.input_audio_tokens or None),
        ("model_sidecar.usage.output_audio_tokens", session.output_audio_tokens or None),
        ("model_sidecar.usage.cache_read_audio_tokens", session.cache_read_audio_tokens or None),
        ("error.type", session.error_type or None),
        ("server.address", session.server_address),
        ("server.port", session.server_port),
        ("http.response.status_code", session.http_status),
        ("model_sidecar.upstream", session.upstream),
        ("model_sidecar.outcome", session.outcome),
        ("model_sidecar.request_id", session.request_id or None),
        ("model_sidecar.cost_usd", session.cost_usd),
        ("model_sidecar.realtime.close_code", session.close_code),
        ("model_sidecar.realtime.closed_by", session.closed_by or None),
        ("model_sidecar.realtime.responses", session.responses),
        ("model_sidecar.realtime.errors", session.error_count),
        ("model_sidecar.realtime.client_messages", session.client_messages),
        ("model_sidecar.realtime.upstream_messages", session.upstream_messages),
        ("model_sidecar.realtime.client_bytes", session.client_bytes),
        ("model_sidecar.realtime.upstream_bytes", session.upstream_bytes),
        ("model_sidecar.realtime.unparsed_messages", session.unparsed_messages or None),
        ("model_sidecar.realtime.malformed", session.malformed or None),
    )
    return {key: value for key, value in pairs if value is not None}


def session_events(session: SessionRecord) -> list[tuple[str, dict[str, AttributeValue], int]]:
    """(name, attributes, unix ns) of the session's span events: one per `error` event kept."""
    events: list[tuple[str, dict[str, AttributeValue], int]] = []
    for error in session.errors:
        attributes: dict[str, AttributeValue] = {"error.type": error.error_type}
        if error.code:
            attributes["model_sidecar.realtime.error_code"] = error.code
        events.append((ERROR_EVENT, attributes, error.unix_ns))
    return events


def session_is_error(session: SessionRecord) -> bool:
    """True when the session did not end well (its span gets status ERROR)."""
    return session.outcome != OK
