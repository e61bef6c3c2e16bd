"""`model-sidecar report URL` as a person first runs it: a table that fits 120 columns with the
headline numbers, model calls only, nothing empty; `--wide` for the rest; a clear word when
pointed at the proxy port instead of the admin port."""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlsplit

from sidecar.app import Sidecar
from sidecar.tools.report import DEFAULT_COLUMNS
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import SDKClients

CHAT = [{"role": "user", "content": "hi"}]


async def report(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sidecar.cli", "report", *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def header_and_rows(table: str) -> tuple[list[str], dict[str, list[str]]]:
    """The column names and the rows by model of a report table."""
    lines = [line for line in table.splitlines() if line.strip() and "─" not in line]
    split = [[cell for cell in line.strip().split("  ") if cell.strip()] for line in lines[1:]]
    header = [cell.strip() for cell in split[0]]
    rows = {cells[0].strip(): [cell.strip() for cell in cells] for cells in split[1:]}
    return header, rows


async def test_the_default_view_fits_120_columns_with_model_calls_only(
    sidecar: Sidecar, sdk: SDKClients, records: RecordingSink
) -> None:
    openai = sdk.openai(sidecar.proxy_url)
    anthropic = sdk.anthropic(sidecar.proxy_url)
    for _ in range(2):  # at temperature 0 twice: repeatability, for --wide
        await openai.chat.completions.create(model="gpt-4o-mini", messages=CHAT, temperature=0)
    stream = await openai.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)
    async for _ in stream:
        pass
    await anthropic.messages.create(model="claude-3-5-haiku-latest", max_tokens=8, messages=CHAT)
    # Operation `other`: a token count and a model list, which must not count as model calls.
    await anthropic.messages.count_tokens(model="claude-3-5-haiku-latest", messages=CHAT)
    await openai.models.list()
    await records.wait_for(6)

    status, out, err = await report(sidecar.admin_url)
    assert status == 0, err
    assert max(len(line) for line in out.splitlines()) <= 120, out
    header, rows = header_and_rows(out)
    # Only the headline columns; no experiment or variant (there is none); every one measured.
    assert header == ["model", *DEFAULT_COLUMNS], out
    assert set(rows) == {"gpt-4o-mini", "claude-3-5-haiku-latest"}, "no `-` model row"
    assert rows["claude-3-5-haiku-latest"][1] == "1", "the token count is not a model call"
    assert rows["gpt-4o-mini"][1] == "3"

    status, wide, _ = await report("--wide", sidecar.admin_url)
    assert status == 0
    wide_header, _ = header_and_rows(wide)
    assert set(header) < set(wide_header) and "repeat same %" in wide_header
    assert not {"accepted", "edited", "rejected", "hallucination"} & set(wide_header)

    # Without a scheme, and as a /metrics URL, it is the same report.
    address = urlsplit(sidecar.admin_url).netloc
    status, plain, _ = await report(address)
    assert status == 0 and header_and_rows(plain) == (header, rows)


async def test_pointed_at_the_proxy_port_it_says_where_metrics_are(sidecar: Sidecar) -> None:
    status, out, err = await report(sidecar.proxy_url)
    assert status == 2 and out == ""
    (line,) = err.splitlines()
    assert "proxy port" in line and "admin port (default 9788" in line
    assert "Traceback" not in err and "HTTP Error" not in err


async def test_an_admin_url_nothing_answers_on_is_one_line(sidecar: Sidecar) -> None:
    status, _, err = await report("http://127.0.0.1:1")
    assert status == 1 and len(err.splitlines()) == 1 and "cannot read" in err
    status, _, err = await report("ftp://example.com/metrics")
    assert status == 2 and "expected the admin URL of a sidecar" in err
