"""`simulate` command: prints its base URLs, serves, and stops cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import aiohttp
import pytest

from sidecar.simulate.cli import add_arguments, main

RUN = (
    "import argparse, sys\n"
    "from sidecar.simulate.cli import add_arguments, main\n"
    "parser = argparse.ArgumentParser()\n"
    "add_arguments(parser)\n"
    "sys.exit(main(parser.parse_args()))\n"
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_simulate_command_serves_until_signalled(signum: int) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUN,
        "--listen",
        "127.0.0.1:0",
        "--fastest",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        first = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        base_url = first.decode().rsplit(" ", 1)[-1].strip()
        assert base_url.startswith("http://127.0.0.1:")
        openai_line = (await process.stdout.readline()).decode()
        assert openai_line.strip() == f"OPENAI_BASE_URL={base_url}/v1"
        announced = [(await process.stdout.readline()).decode() for _ in range(6)]
        assert f"OLLAMA_HOST={base_url}\n" in [line.lstrip() for line in announced]
        async with aiohttp.ClientSession() as session:
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            async with session.post(base_url + "/v1/chat/completions", json=body) as response:
                assert response.status == 200
                assert (await response.json())["object"] == "chat.completion"
            # Ollama and Azure OpenAI are served by the same command.
            ollama = {**body, "model": "llama3.2", "stream": False}
            async with session.post(base_url + "/api/chat", json=ollama) as response:
                assert (await response.json())["done"] is True
            azure = base_url + "/openai/deployments/prod-gpt4o/chat/completions?api-version=x"
            async with session.post(azure, json=body, headers={"api-key": "k"}) as response:
                assert (await response.json())["model"] == "gpt-4o-2024-08-06"
        process.send_signal(signum)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_bad_listen_address_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert main(parser.parse_args(["--listen", "nowhere"])) == 2
    captured = capsys.readouterr()  # a usage error: on stderr, as argparse writes them
    assert "HOST:PORT" in captured.err and captured.out == ""
