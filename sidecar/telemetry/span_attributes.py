"""A call's span name and attributes, in the GenAI convention generation(s) the sidecar emits:
the keys that differ between generations come from `SPAN_KEYS` (conventions.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from opentelemetry.util.types import AttributeValue

from sidecar.record import OK, CallRecord
from sidecar.telemetry.conventions import SPAN_KEYS, V1_41, Generation

INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"


def span_name(record: CallRecord) -> str:
    """`{gen_ai.operation.name} {gen_ai.request.model}`, or just the operation without a model."""
    model = record.request.request_model
    operation = record.request.operation
    return f"{operation} {model}" if model else operation


class SpanAttributeKeys:
    """The generation-dependent keys of the sidecar's generations, worked out once."""

    __slots__ = ("cache_write", "previous_response_id", "top_k_is_int")

    def __init__(self, generations: Sequence[Generation]) -> None:
        keys = [SPAN_KEYS[generation] for generation in generations]
        # In `dup` mode a span carries both generations' keys.
        self.cache_write = tuple(dict.fromkeys(k.cache_write_tokens for k in keys))
        self.previous_response_id = tuple(
            dict.fromkeys(k.previous_response_id for k in keys if k.previous_response_id)
        )
        # One key, two types: the newest generation's type wins.
        self.top_k_is_int = keys[-1].top_k_is_int


DEFAULT_KEYS = SpanAttributeKeys((V1_41,))


def span_attributes(
    record: CallRecord, keys: SpanAttributeKeys = DEFAULT_KEYS
) -> dict[str, AttributeValue]:
    """The semconv and `model_sidecar.*` attributes of a call; unknown values are left out."""
    request = record.request
    top_k = request.top_k
    # The openai.* attributes belong to OpenAI's API, which Azure OpenAI serves too.
    openai = record.provider_name in ("openai", "azure.ai.openai")
    tier = request.service_tier if openai and request.service_tier != "auto" else None
    pairs: tuple[tuple[str, AttributeValue | None], ...] = (
        ("gen_ai.operation.name", request.operation),
        ("gen_ai.provider.name", record.provider_name),
        ("gen_ai.request.model", request.request_model),
        ("gen_ai.request.temperature", request.temperature),
        ("gen_ai.request.max_tokens", request.max_tokens),
        ("gen_ai.request.top_p", request.top_p),
        ("gen_ai.request.top_k", top_k if top_k is None or keys.top_k_is_int else float(top_k)),
        ("gen_ai.request.frequency_penalty", request.frequency_penalty),
        ("gen_ai.request.presence_penalty", request.presence_penalty),
        ("gen_ai.request.stop_sequences", request.stop_sequences),
        ("gen_ai.request.seed", request.seed),
        ("gen_ai.request.choice.count", request.choice_count),
        ("gen_ai.request.stream", True if request.stream else None),
        ("gen_ai.request.encoding_formats", request.encoding_formats),
        ("gen_ai.embeddings.dimension.count", request.dimensions),
        ("gen_ai.output.type", request.output_type),
        ("gen_ai.conversation.id", request.conversation_id),
        ("gen_ai.response.model", record.response_model),
        ("gen_ai.response.id", record.response_id),
        ("gen_ai.response.finish_reasons", tuple(record.finish_reasons) or None),
        ("gen_ai.response.time_to_first_chunk", record.time_to_first_chunk),
        ("gen_ai.usage.input_tokens", record.input_tokens),
        ("gen_ai.usage.output_tokens", record.output_tokens),
        ("gen_ai.usage.cache_read.input_tokens", record.cache_read_tokens),
        *((key, record.cache_creation_tokens) for key in keys.cache_write),
        ("gen_ai.usage.reasoning.output_tokens", record.reasoning_tokens),
        ("model_sidecar.usage.input_audio_tokens", record.input_audio_tokens),
        ("model_sidecar.usage.output_audio_tokens", record.output_audio_tokens),
        ("model_sidecar.usage.cache_read_audio_tokens", record.cache_read_audio_tokens),
        ("model_sidecar.time_to_first_text_chunk", _since(record, record.first_text_chunk)),
        ("model_sidecar.time_to_first_audio_chunk", _since(record, record.first_audio_chunk)),
        *((key, request.previous_response_id) for key in keys.previous_response_id),
        ("openai.api.type", request.api_type if openai else None),
        ("openai.request.service_tier", tier),
        ("openai.response.service_tier", record.response_service_tier if openai else None),
        ("openai.response.system_fingerprint", record.system_fingerprint if openai else None),
        ("error.type", record.error_type or None),
        ("server.address", record.server_address),
        ("server.port", record.server_port),
        ("http.response.status_code", record.http_status),
        ("model_sidecar.upstream", record.upstream),
        ("model_sidecar.outcome", record.outcome),
        ("model_sidecar.cost_usd", record.cost_usd),
        ("model_sidecar.confidence", record.confidence),
        ("model_sidecar.confidence_min", record.confidence_min),
        ("model_sidecar.low_confidence", record.low_confidence or None),
        ("model_sidecar.client_retry_count", record.client_retry_count),
        ("model_sidecar.sidecar_retries", record.sidecar_retries),
        ("model_sidecar.repeat_result", record.repeat_result),
        ("model_sidecar.experiment", record.experiment or None),
        ("model_sidecar.variant", record.variant or None),
        ("model_sidecar.request_id", record.request_id or None),
        ("model_sidecar.pair_id", record.pair_id or None),
        ("model_sidecar.overhead_seconds", record.overhead),
        ("model_sidecar.provider_latency_seconds", record.provider_latency_s),
    )
    return {key: value for key, value in pairs if value is not None}


def _since(record: CallRecord, moment: float | None) -> float | None:
    return None if moment is None else moment - record.received


RETRY_EVENT = "model_sidecar.retry"


def span_events(record: CallRecord) -> list[tuple[str, dict[str, AttributeValue], int]]:
    """(name, attributes, unix ns) of the call's span events: one per sidecar retry attempt."""
    return [
        (
            RETRY_EVENT,
            {
                "model_sidecar.retry.attempt": attempt.attempt,
                "model_sidecar.retry.reason": attempt.reason,
                "model_sidecar.retry.delay_seconds": attempt.delay_s,
            },
            attempt.start_unix_ns,
        )
        for attempt in record.retry_attempts
    ]


def is_error(record: CallRecord) -> bool:
    """True when the call did not end well (its span gets status ERROR)."""
    return record.outcome != OK


def content_attributes(record: CallRecord, max_chars: int) -> dict[str, AttributeValue]:
    """Opt-in message content as semconv JSON strings, each with at most `max_chars` of content."""
    attributes: dict[str, AttributeValue] = {}
    if max_chars <= 0:
        return attributes
    body = record.request_body
    if isinstance(body, dict):
        messages = _input_messages(body, _Budget(max_chars))
        if messages:
            attributes[INPUT_MESSAGES] = _json(messages)
        instructions = _system_instructions(body, _Budget(max_chars))
        if instructions:
            attributes[SYSTEM_INSTRUCTIONS] = _json(instructions)
    if record.output_text is not None:
        output = {
            "role": "assistant",
            "parts": [_Budget(max_chars).text_part(record.output_text)],
            "finish_reason": record.finish_reasons[0] if record.finish_reasons else "",
        }
        attributes[OUTPUT_MESSAGES] = _json([output])
    return attributes


class _Budget:
    """How many characters of content may still go into one attribute."""

    def __init__(self, chars: int) -> None:
        self.left = chars

    @property
    def spent(self) -> bool:
        return self.left <= 0

    def text(self, value: str) -> str:
        cut = value[: max(self.left, 0)]
        self.left -= max(len(value), 1)
        return cut

    def text_part(self, value: str) -> dict[str, Any]:
        return {"type": "text", "content": self.text(value)}

    def value(self, value: Any) -> Any:
        """A JSON value (tool arguments, results): whole if it fits, else cut as a JSON string."""
        if isinstance(value, str):
            return self.text(value)
        encoded = orjson.dumps(value, default=str).decode()
        if len(encoded) <= self.left:
            self.left -= max(len(encoded), 1)
            return value
        return self.text(encoded)


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _input_messages(body: dict[str, Any], budget: _Budget) -> list[dict[str, Any]]:
    """Chat history from an OpenAI, Anthropic or Gemini request body, in the semconv shape."""
    if "messages" in body:
        items = body["messages"]
    elif "contents" in body:
        items = body["contents"]
    elif "input" in body:
        items = body["input"]
    elif "prompt" in body:
        items = body["prompt"]
    else:
        return []
    if isinstance(items, str):
        return [{"role": "user", "parts": [budget.text_part(items)]}]
    if not isinstance(items, list):
        return []
    messages = []
    for item in items:
        if budget.spent:
            break
        if isinstance(item, dict):
            messages.append(_message(item, budget))
        else:
            # Completions prompts and embeddings inputs: a list of strings (or token ids).
            messages.append({"role": "user", "parts": [budget.text_part(str(item))]})
    return messages


def _message(item: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    role = str(item.get("role") or "user")
    if role == "model":
        role = "assistant"
    budget.left -= len(role)
    if role == "tool" and "tool_call_id" in item:
        response = budget.value(item.get("content"))
        part = {"type": "tool_call_response", "id": item["tool_call_id"], "response": response}
        return {"role": role, "parts": [part]}
    parts = _parts(item.get("content", item.get("parts")), budget)
    for call in item.get("tool_calls") or ():
        if budget.spent or not isinstance(call, dict):
            break
        function = call.get("function") or {}
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.get("name"),
                "arguments": budget.value(function.get("arguments")),
            }
        )
    return {"role": role, "parts": parts}


def _parts(content: Any, budget: _Budget) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [budget.text_part(content)]
    if not isinstance(content, list):
        return []
    parts = []
    for item in content:
        if budget.spent:
            break
        parts.append(_part(item, budget))
    return parts


def _part(item: Any, budget: _Budget) -> dict[str, Any]:
    """One content block (OpenAI part, Anthropic block or Gemini part) as a semconv part."""
    if isinstance(item, str):
        return budget.text_part(item)
    if not isinstance(item, dict):
        return {"type": "unknown"}
    if isinstance(item.get("text"), str):
        return budget.text_part(item["text"])
    kind = item.get("type")
    if kind == "tool_use":
        arguments = budget.value(item.get("input"))
        return {
            "type": "tool_call",
            "id": item.get("id"),
            "name": item.get("name"),
            "arguments": arguments,
        }
    if kind == "tool_result":
        response = budget.value(item.get("content"))
        return {"type": "tool_call_response", "id": item.get("tool_use_id"), "response": response}
    call = item.get("functionCall")
    if isinstance(call, dict):
        arguments = budget.value(call.get("args"))
        return {"type": "tool_call", "name": call.get("name"), "arguments": arguments}
    result = item.get("functionResponse")
    if isinstance(result, dict):
        response = budget.value(result.get("response"))
        return {"type": "tool_call_response", "name": result.get("name"), "response": response}
    return {"type": str(kind or "unknown")}


def _system_instructions(body: dict[str, Any], budget: _Budget) -> list[dict[str, Any]]:
    """Instructions given beside the history: Anthropic `system`, Gemini `systemInstruction`,
    OpenAI Responses `instructions`."""
    value = body.get("system", body.get("instructions"))
    if value is None:
        value = body.get("systemInstruction", body.get("system_instruction"))
        if isinstance(value, dict):
            value = value.get("parts")
    return _parts(value, budget)
