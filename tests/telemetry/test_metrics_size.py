"""/metrics without `_created` series: nothing reads them (dashboards and alerts use rate() and
increase()), and each labelled series of every counter and histogram would add one."""

from __future__ import annotations

import aiohttp
from prometheus_client import disable_created_metrics, enable_created_metrics

from sidecar.app import Sidecar
from tests.helpers.records import RecordingSink

HI = [{"role": "user", "content": "hi"}]
# A fixed mix: three OpenAI models, streamed and not, two Anthropic models, Gemini, an error.
CALLS = [
    *(
        ("/v1/chat/completions", {"model": model, "stream": stream, "messages": HI}, {})
        for model in ("gpt-4o-mini", "gpt-4o", "o3-mini")
        for stream in (False, True)
    ),
    *(
        ("/v1/messages", {"model": model, "max_tokens": 8, "messages": HI}, {})
        for model in ("claude-3-5-haiku-latest", "claude-sonnet-4")
    ),
    (
        "/v1beta/models/gemini-2.0-flash:generateContent",
        {"contents": [{"parts": [{"text": "hi"}]}]},
        {},
    ),
    ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": HI}, {"x-sim-status": "503"}),
]


# Families that describe the process, not the calls: never the same twice.
RUNTIME = ("process_", "python_")


def calls_only(text: str, created: bool = True) -> str:
    """The exposition without the runtime families (and, unless `created`, without every
    `_created` family: HELP, TYPE and samples)."""
    kept = []
    for line in text.splitlines(keepends=True):
        name = line.removeprefix("# HELP ").removeprefix("# TYPE ").split("{")[0].split(" ")[0]
        if name.startswith(RUNTIME) or (not created and name.endswith("_created")):
            continue
        kept.append(line)
    return "".join(kept)


async def test_metrics_carry_no_created_series(sidecar: Sidecar, records: RecordingSink) -> None:
    async with aiohttp.ClientSession() as http:
        for path, body, headers in CALLS:
            async with http.post(sidecar.proxy_url + path, json=body, headers=headers) as reply:
                await reply.read()
        await records.wait_for(len(CALLS))
        async with http.get(sidecar.admin_url + "/metrics") as reply:
            served = await reply.text()
        # What the same registry would serve with the client library's default: the only
        # difference is the `_created` lines, one per labelled counter and histogram series.
        enable_created_metrics()  # type: ignore[no-untyped-call]
        try:
            async with http.get(sidecar.admin_url + "/metrics") as reply:
                default = await reply.text()
        finally:
            disable_created_metrics()  # type: ignore[no-untyped-call]
    assert "_created" not in served
    created = [line for line in default.splitlines() if "_created{" in line]
    assert len(created) > len(CALLS), "each labelled series had one"
    assert calls_only(served) == calls_only(default, created=False)
    assert len(served) < len(default) - sum(len(line) for line in created)
