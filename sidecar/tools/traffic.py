"""Traffic that calls models through a sidecar with the official SDKs (openai, incl. Azure
OpenAI, and anthropic); Gemini, Vertex AI and Ollama over HTTP in their own wire formats."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

PLACEHOLDER_KEY = "sk-demo-not-a-real-key"
PROTOCOLS = ("openai", "anthropic", "gemini", "azure", "vertex", "ollama")
# Anthropic requires max_tokens; used when a call does not set one.
ANTHROPIC_DEFAULT_MAX_TOKENS = 256
AZURE_API_VERSION = "2024-10-21"
# The Vertex AI project and regions the traffic names in its paths.
VERTEX_PREFIX = "/v1/projects/demo/locations/{region}/publishers/{publisher}/models/"
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"

PROMPTS = (
    "Summarise the incident report in two sentences.",
    "Classify this ticket: 'my invoice is wrong'.",
    "Write a haiku about tail latency.",
    "Translate 'good morning' to French.",
    "List three risks of a model rollout.",
)


@dataclass(frozen=True)
class ModelTarget:
    """A model to call, the wire protocol to call it with, and the sidecar path it lives under."""

    protocol: str  # one of PROTOCOLS; for azure the model is the deployment name
    model: str
    weight: float = 1.0
    # A named upstream's path prefix on the sidecar (e.g. "/vllm"); "" for the protocol's own.
    path_prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> ModelTarget:
        """`openai:gpt-4o-mini` → ModelTarget('openai', 'gpt-4o-mini')."""
        protocol, sep, model = text.partition(":")
        if not sep or protocol not in PROTOCOLS or not model:
            raise ValueError(f"expected PROTOCOL:MODEL with {', '.join(PROTOCOLS)}, got {text!r}")
        return cls(protocol, model)


@dataclass(frozen=True)
class CallSpec:
    """One call to make: which model, what messages, and with which options."""

    target: ModelTarget
    messages: tuple[Mapping[str, str], ...]  # {"role": system|user|assistant, "content": ...}
    stream: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    logprobs: bool = False

    @classmethod
    def user(cls, target: ModelTarget, prompt: str, **options: Any) -> CallSpec:
        """A call with one user message."""
        return cls(target, ({"role": "user", "content": prompt},), **options)


@dataclass
class SDKCaller:
    """Sends CallSpecs through one sidecar base URL with the official SDKs (Gemini, Vertex AI
    and Ollama over HTTP).

    Clients are made per protocol, path prefix and API key on first use and reused.
    """

    base_url: str
    max_retries: int = 2
    headers: Mapping[str, str] = field(default_factory=dict)
    _clients: dict[tuple[str, str, str], Any] = field(default_factory=dict, repr=False)
    _http: aiohttp.ClientSession | None = field(default=None, repr=False)

    @staticmethod
    def errors() -> tuple[type[BaseException], ...]:
        """The exceptions a failed call raises (provider errors, HTTP and timeout errors)."""
        import anthropic
        import openai

        return (openai.APIError, anthropic.APIError, aiohttp.ClientError, asyncio.TimeoutError)

    async def send(self, spec: CallSpec, api_key: str = PLACEHOLDER_KEY) -> None:
        """Make the call, reading a stream to its end; raises one of `errors()` on failure."""
        protocol = spec.target.protocol
        if protocol in ("openai", "azure"):
            await self._call_openai(spec, api_key)
        elif protocol == "anthropic":
            await self._call_anthropic(spec, api_key)
        elif protocol == "vertex":
            await self._call_vertex(spec, api_key)
        elif protocol == "ollama":
            await self._call_ollama(spec)
        else:
            await self._call_gemini(spec, api_key)

    def prepare(self, target: ModelTarget, api_key: str = PLACEHOLDER_KEY) -> None:
        """Make the client for `target` now (SDK imports take seconds and block the loop)."""
        if target.protocol in ("gemini", "vertex", "ollama"):
            if self._http is None:
                self._http = aiohttp.ClientSession()
        else:
            self._client(target, api_key)

    async def close(self) -> None:
        """Close every SDK client and the HTTP session."""
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        if self._http is not None:
            await self._http.close()

    def _client(self, target: ModelTarget, api_key: str) -> Any:
        key = (target.protocol, target.path_prefix, api_key)
        if key not in self._clients:
            base = self.base_url + target.path_prefix
            options: dict[str, Any] = {
                "api_key": api_key,
                "max_retries": self.max_retries,
                "default_headers": dict(self.headers),
            }
            if target.protocol == "openai":
                import openai

                self._clients[key] = openai.AsyncOpenAI(base_url=f"{base}/v1", **options)
            elif target.protocol == "azure":
                import openai

                self._clients[key] = openai.AsyncAzureOpenAI(
                    azure_endpoint=base, api_version=AZURE_API_VERSION, **options
                )
            else:
                import anthropic

                self._clients[key] = anthropic.AsyncAnthropic(base_url=base, **options)
        return self._clients[key]

    async def _call_openai(self, spec: CallSpec, api_key: str) -> None:
        options: dict[str, Any] = {}
        if spec.temperature is not None:
            options["temperature"] = spec.temperature
        if spec.max_tokens is not None:
            options["max_completion_tokens"] = spec.max_tokens
        if spec.logprobs:
            options["logprobs"] = True
        create = self._client(spec.target, api_key).chat.completions.create
        messages = [dict(message) for message in spec.messages]
        if spec.stream:
            response = await create(
                model=spec.target.model, messages=messages, stream=True, **options
            )
            async for _ in response:
                pass
        else:
            await create(model=spec.target.model, messages=messages, **options)

    async def _call_anthropic(self, spec: CallSpec, api_key: str) -> None:
        options: dict[str, Any] = {}
        if spec.temperature is not None:  # anthropic 2.x has no `temperature` argument
            options["extra_body"] = {"temperature": spec.temperature}
        system = [m["content"] for m in spec.messages if m["role"] == "system"]
        if system:
            options["system"] = "\n\n".join(system)
        messages = [dict(m) for m in spec.messages if m["role"] != "system"]
        max_tokens = spec.max_tokens or ANTHROPIC_DEFAULT_MAX_TOKENS
        create = self._client(spec.target, api_key).messages.create
        if spec.stream:
            events = await create(
                model=spec.target.model,
                max_tokens=max_tokens,
                messages=messages,
                stream=True,
                **options,
            )
            async for _ in events:
                pass
        else:
            await create(
                model=spec.target.model, max_tokens=max_tokens, messages=messages, **options
            )

    async def _call_gemini(self, spec: CallSpec, api_key: str) -> None:
        method = "streamGenerateContent?alt=sse" if spec.stream else "generateContent"
        url = f"{self.base_url}{spec.target.path_prefix}/v1beta/models/{spec.target.model}:{method}"
        await self._post(url, _gemini_body(spec), {"x-goog-api-key": api_key})

    async def _call_vertex(self, spec: CallSpec, api_key: str) -> None:
        """Claude models in Anthropic's format by rawPredict, the others in Gemini's."""
        target = spec.target
        base = self.base_url + target.path_prefix
        headers = {"Authorization": f"Bearer {api_key}"}
        if not target.model.startswith("claude"):
            prefix = VERTEX_PREFIX.format(region="us-central1", publisher="google")
            method = "streamGenerateContent?alt=sse" if spec.stream else "generateContent"
            await self._post(f"{base}{prefix}{target.model}:{method}", _gemini_body(spec), headers)
            return
        body: dict[str, Any] = {
            "anthropic_version": VERTEX_ANTHROPIC_VERSION,
            "max_tokens": spec.max_tokens or ANTHROPIC_DEFAULT_MAX_TOKENS,
            "messages": [dict(m) for m in spec.messages if m["role"] != "system"],
            "stream": spec.stream,
        }
        system = [m["content"] for m in spec.messages if m["role"] == "system"]
        if system:
            body["system"] = "\n\n".join(system)
        if spec.temperature is not None:
            body["temperature"] = spec.temperature
        prefix = VERTEX_PREFIX.format(region="us-east5", publisher="anthropic")
        method = "streamRawPredict" if spec.stream else "rawPredict"
        await self._post(f"{base}{prefix}{target.model}:{method}", body, headers)

    async def _call_ollama(self, spec: CallSpec) -> None:
        """Ollama's native chat (an NDJSON stream, or one JSON body); Ollama takes no key."""
        options: dict[str, Any] = {}
        if spec.temperature is not None:
            options["temperature"] = spec.temperature
        if spec.max_tokens is not None:
            options["num_predict"] = spec.max_tokens
        body: dict[str, Any] = {
            "model": spec.target.model,
            "messages": [dict(m) for m in spec.messages],
            "stream": spec.stream,
        }
        if options:
            body["options"] = options
        await self._post(f"{self.base_url}{spec.target.path_prefix}/api/chat", body, {})

    async def _post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        """POST `body` and read the answer to its end; raise on an error status."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        async with self._http.post(url, json=body, headers={**headers, **self.headers}) as response:
            text = await response.text()
            if response.status >= 400:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message=text[:300]
                )


def _gemini_body(spec: CallSpec) -> dict[str, Any]:
    """A generateContent body (Gemini API and Vertex AI alike)."""
    body: dict[str, Any] = {
        "contents": [
            {
                "role": "model" if m["role"] == "assistant" else "user",
                "parts": [{"text": m["content"]}],
            }
            for m in spec.messages
            if m["role"] != "system"
        ]
    }
    system = [{"text": m["content"]} for m in spec.messages if m["role"] == "system"]
    if system:
        body["systemInstruction"] = {"parts": system}
    generation: dict[str, Any] = {}
    if spec.temperature is not None:
        generation["temperature"] = spec.temperature
    if spec.max_tokens is not None:
        generation["maxOutputTokens"] = spec.max_tokens
    if generation:
        body["generationConfig"] = generation
    return body


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
        self.base_url = base_url
        self.targets = list(targets)
        self.rng = rng
        self.stats = TrafficStats()
        self._weights = [t.weight for t in self.targets]
        self._slots = asyncio.Semaphore(max_in_flight)
        self._caller = SDKCaller(base_url, max_retries=max_retries, headers=headers or {})
        self._errors = SDKCaller.errors()

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
        await self._caller.close()

    async def _one_call(self) -> None:
        async with self._slots:
            target = self.rng.choices(self.targets, self._weights)[0]
            stream = self.rng.random() < 0.5
            # A small prompt set at temperature 0 makes repeats, so repeatability shows.
            deterministic = self.rng.random() < 0.4
            prompt = self.rng.choice(PROMPTS)
            logprobs = target.protocol == "openai" and self.rng.random() < 0.5
            spec = CallSpec.user(
                target,
                prompt,
                stream=stream,
                temperature=0 if deterministic else None,
                logprobs=logprobs,
            )
            self.stats.sent += 1
            try:
                await self._caller.send(spec)
            except self._errors:
                self.stats.failed += 1
