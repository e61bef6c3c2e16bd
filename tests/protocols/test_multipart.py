"""The text fields of multipart bodies as HTTP clients encode them; files are never read."""

from __future__ import annotations

import httpx

from sidecar.protocols.multipart import MAX_FIELD_BYTES, form_fields, is_multipart
from sidecar.protocols.openai import OpenAIProtocol


def encoded(data: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """(body, Content-Type) exactly as httpx (the openai SDK's transport) sends them."""
    request = httpx.Request("POST", "http://x/v1/audio/transcriptions", data=data, files=files)
    return request.read(), request.headers["Content-Type"]


def test_fields_before_and_after_the_file() -> None:
    audio = b"RIFF" + bytes(range(256)) * 64 + b'\r\n--not-the-boundary name="model"\r\n'
    body, content_type = encoded(
        {"model": "gpt-4o-transcribe", "language": "en", "prompt": "Kubernetes, Prometheus."},
        {"file": ("note.wav", audio, "audio/wav")},
    )
    assert is_multipart(content_type)
    fields = form_fields(body, content_type)
    assert fields == {
        "model": "gpt-4o-transcribe",
        "language": "en",
        "prompt": "Kubernetes, Prometheus.",
    }


def test_a_quoted_boundary_and_crlf_values() -> None:
    body = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.mp3"\r\n'
        b"Content-Type: audio/mpeg\r\n\r\n"
        b"ID3\x00\x01\r\n\r\n\xff\xfb\r\n"
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="model"\r\n\r\n'
        b"whisper-1\r\n"
        b"--b0undary--\r\n"
    )
    assert form_fields(body, 'multipart/form-data; boundary="b0undary"') == {"model": "whisper-1"}


def test_not_multipart_or_damaged() -> None:
    assert form_fields(b'{"model": "x"}', "application/json") is None
    assert form_fields(b"--x\r\n", "multipart/form-data") is None  # no boundary
    cut = b'--x\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1'
    assert form_fields(cut, "multipart/form-data; boundary=x") == {}
    garbage = b"\x00" * 100
    assert form_fields(garbage, "multipart/form-data; boundary=x") == {}
    long_value = "v" * (MAX_FIELD_BYTES + 1)
    body, content_type = encoded(
        {"model": "m", "prompt": long_value}, {"file": ("a.wav", b"RIFF", "audio/wav")}
    )
    assert form_fields(body, content_type) == {"model": "m"}


def test_the_openai_protocol_labels_a_transcription_with_its_form_model() -> None:
    body, content_type = encoded({"model": "whisper-1"}, {"file": ("a.wav", b"RIFF", "audio/wav")})
    fields = form_fields(body, content_type)
    info = OpenAIProtocol().classify("POST", "/v1/audio/transcriptions", "", fields)
    assert (info.operation, info.request_model) == ("other", "whisper-1")
