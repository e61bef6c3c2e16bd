"""Audio files for transcription tests: silent WAV files of a chosen length."""

from __future__ import annotations

import io
import wave


def silent_wav(seconds: float, rate: int = 16_000) -> bytes:
    """A mono 16-bit WAV file of `seconds` of silence."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\0\0" * round(seconds * rate))
    return buffer.getvalue()
