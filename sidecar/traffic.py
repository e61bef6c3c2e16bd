"""Traffic that calls models through a sidecar with the official SDKs (Gemini over HTTP)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

PLACEHOLDER_KEY = "sk-demo-not-a-real-key"

PROMPTS = (
    "Summarise the incident report in two sentences.",
    "Classify this ticket: 'my invoice is wrong'.",
    "Write a haiku about tail latency.",
    "Translate 'good morning' to French.",
    "List three risks of a model rollout.",
)


@dataclass(frozen=True)
class ModelTarget:
    """A model to call and the wire protocol to call it with."""

    protocol: str  # openai, anthropic or gemini
    model: str
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> ModelTarget:
        """`openai:gpt-4o-mini` → ModelTarget('openai', 'gpt-4o-mini')."""
        protocol, sep, model = text.partition(":")
        if not sep or protocol not in ("openai", "anthropic", "gemini") or not model:
            raise ValueError(
                f"expected PROTOCOL:MODEL with openai, anthropic or gemini, got {text!r}"
            )
        return cls(protocol, model)


@dataclass
class TrafficStats:
    """What the generator itself saw (the summary reads the sidecar's /metrics instead)."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0


class TrafficGenerator:
    """Sends a mix of streaming and non-streaming calls at a fixed rate through one base URL."""

    def __init__(
        self,
        base_url: str,
        targets: Sequence[ModelTarget],
        *,
        rng: random.Random,
        max_in_flight: int = 64,
        max_retries: int = 2,
        headers: dict[str, str] | None = None,
    ) -> None:
        import anthropic
        import openai

        self.base_url = base_url
        self.targets = list(targets)
        self.rng = rng
        self.stats = TrafficStats()
        self._weights = [t.weight for t in self.targets]
        self._slots = asyncio.Semaphore(max_in_flight)
        self._headers = headers or {}
        self._openai = openai.AsyncOpenAI(
            base_url=f"{base_url}/v1",
            api_key=PLACEHOLDER_KEY,
            max_retries=max_retries,
            default_headers=self._headers,
        )
        self._anthropic = anthropic.AsyncAnthropic(
            base_url=base_url,
            api_key=PLACEHOLDER_KEY,
            max_retries=max_retries,
            default_headers=self._headers,
        )
        self._http = aiohttp.ClientSession()
        self._errors: tuple[type[BaseException], ...] = (
            openai.APIError,
            anthropic.APIError,
            aiohttp.ClientError,
            asyncio.TimeoutError,
        )

    async def run(self, duration: float, rps: float) -> TrafficStats:
        """Send calls at `rps` (open loop) for `duration` seconds, then wait for the last ones."""
        tasks: set[asyncio.Task[None]] = set()
        interval = 1.0 / rps
        start = time.monotonic()
        sent = 0
        while (now := time.monotonic()) - start < duration:
            due = start + sent * interval
            if due > now:
                await asyncio.sleep(due - now)
                continue
            sent += 1
            if self._slots.locked():
                self.stats.skipped += 1
                continue
            task = asyncio.create_task(self._one_call())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return self.stats

    async def close(self) -> None:
        """Close the SDK clients and the HTTP session."""
        await self._openai.close()
        await self._anthropic.close()
        await self._http.close()

    async def _one_call(self) -> None:
        async with self._slots:
            target = self.rng.choices(self.targets, self._weights)[0]
            stream = self.rng.random() < 0.5
            # A small prompt set at temperature 0 makes repeats, so repeatability shows.
            deterministic = self.rng.random() < 0.4
            prompt = self.rng.choice(PROMPTS)
            self.stats.sent += 1
            try:
                if target.protocol == "openai":
                    await self._call_openai(target.model, prompt, stream, deterministic)
                elif target.protocol == "anthropic":
                    await self._call_anthropic(target.model, prompt, stream, deterministic)
                else:
                    await self._call_gemini(target.model, prompt, stream, deterministic)
            except self._errors:
                self.stats.failed += 1

    async def _call_openai(self, model: str, prompt: str, stream: bool, zero: bool) -> None:
        options: dict[str, Any] = {"temperature": 0} if zero else {}
        if self.rng.random() < 0.5:
            options["logprobs"] = True
        messages: Any = [{"role": "user", "content": prompt}]
        if stream:
            response = await self._openai.chat.completions.create(
                model=model, messages=messages, stream=True, **options
            )
            async for _ in response:
                pass
        else:
            await self._openai.chat.completions.create(model=model, messages=messages, **options)

    async def _call_anthropic(self, model: str, prompt: str, stream: bool, zero: bool) -> None:
        options: dict[str, Any] = {"temperature": 0} if zero else {}
        messages: Any = [{"role": "user", "content": prompt}]
        if stream:
            events = await self._anthropic.messages.create(
                model=model, max_tokens=256, messages=messages, stream=True, **options
            )
            async for _ in events:
                pass
        else:
            await self._anthropic.messages.create(
                model=model, max_tokens=256, messages=messages, **options
            )

    async def _call_gemini(self, model: str, prompt: str, stream: bool, zero: bool) -> None:
        body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
        if zero:
            body["generationConfig"] = {"temperature": 0}
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"{self.base_url}/v1beta/models/{model}:{method}"
        headers = {"x-goog-api-key": PLACEHOLDER_KEY, **self._headers}
        async with self._http.post(url, json=body, headers=headers) as response:
            await response.read()
            if response.status >= 400:
                raise aiohttp.ClientResponseError(response.request_info, (), status=response.status)
