"""`model-sidecar report --by team`: calls, errors, tokens and spend per attribution value,
read from a real sidecar's /metrics after official SDK calls from three teams."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest

from sidecar.cli import main
from tests.helpers.sdk import SDKClients
from tests.helpers.sidecar import SidecarFactory

MESSAGES: list[Any] = [{"role": "user", "content": "Who pays for this call?"}]


async def test_report_by_team_from_a_sidecar(
    sidecar_factory: SidecarFactory, sdk: SDKClients, capsys: pytest.CaptureFixture[str]
) -> None:
    sidecar = await sidecar_factory(
        {"attribution": {"header": "x-team", "values": ["search", "ads"]}}
    )
    client = sdk.openai(sidecar.proxy_url)
    for team, calls in (("search", 3), ("ads", 1), ("billing", 2)):
        for _ in range(calls):
            await client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, extra_headers={"x-team": team}
            )
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            extra_headers={"x-team": "ads", "x-sim-status": "429"},
        )
    await asyncio.sleep(0.2)  # the pipeline runs off the call path
    capsys.readouterr()
    code = await asyncio.to_thread(
        main, ["report", sidecar.admin_url, "--by", "team", "--format", "json"]
    )
    assert code == 0
    teams = {row["team"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(teams) == {"search", "ads", "other"}
    assert teams["search"]["calls"] == 3 and teams["search"]["errors"] == 0
    assert teams["ads"]["calls"] == 2 and teams["ads"]["errors"] == 1
    assert teams["other"]["calls"] == 2  # billing is not on the list
    assert teams["search"]["cost_usd"] > teams["other"]["cost_usd"] > 0
    assert teams["search"]["input_tokens"] > 0 and teams["search"]["output_tokens"] > 0
    # The table: most expensive team first.
    code = await asyncio.to_thread(main, ["report", sidecar.admin_url, "--by", "team"])
    table = capsys.readouterr().out.splitlines()
    assert code == 0
    assert table[0].startswith("Per team (attribution header)")
    assert table[2].split()[:2] == ["team", "calls"]
    assert table[3].split()[0] == "search"
