"""Official SDK clients for tests, all carrying API_KEY, the canary no log may ever show."""

from __future__ import annotations

from typing import Any

API_KEY = "sk-test-SECRET-0123456789abcdef"


class SDKClients:
    """Official SDK clients made for a test, closed at its end."""

    def __init__(self) -> None:
        self._made: list[Any] = []

    def openai(self, base: str, max_retries: int = 0) -> Any:
        """An AsyncOpenAI client whose base URL is `base` + /v1."""
        import openai

        client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=max_retries)
        self._made.append(client)
        return client

    def anthropic(self, base: str, max_retries: int = 0) -> Any:
        """An AsyncAnthropic client whose base URL is `base`."""
        import anthropic

        client = anthropic.AsyncAnthropic(base_url=base, api_key=API_KEY, max_retries=max_retries)
        self._made.append(client)
        return client

    async def close(self) -> None:
        for client in self._made:
            await client.close()
