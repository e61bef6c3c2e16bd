"""Feedback by request id, and the audit sample: metrics by variant, clear errors, no secrets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from sidecar.config.experiments import AuditConfig
from sidecar.experiments.audit import AuditLog
from sidecar.forward.requestid import REQUEST_ID_HEADER
from sidecar.record import CallRecord
from sidecar.simulate.profiles import ModelProfile
from tests.helpers.experiments import CANDIDATE_MODEL, CONTROL_MODEL, QUESTION, split
from tests.helpers.metrics import scrape, total
from tests.helpers.records import RecordingSink
from tests.helpers.sdk import API_KEY, SDKClients
from tests.helpers.sidecar import SidecarFactory


async def feedback(base: str, body: Any) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + "/_sidecar/feedback", json=body) as response,
    ):
        return response.status, await response.json()


async def test_feedback_is_counted_by_model_and_variant(
    sidecar_factory: SidecarFactory, sdk: SDKClients, models: dict[str, ModelProfile]
) -> None:
    sidecar = await sidecar_factory({"experiments": [split(50, 50, key_header="x-user-id")]})
    client = sdk.openai(sidecar.proxy_url)
    ids: dict[str, list[str]] = {CONTROL_MODEL: [], CANDIDATE_MODEL: []}
    for user in range(12):
        raw = await client.chat.completions.with_raw_response.create(
            model=CONTROL_MODEL, messages=QUESTION, extra_headers={"x-user-id": f"user-{user}"}
        )
        ids[raw.parse().model].append(raw.headers[REQUEST_ID_HEADER])
    assert ids[CONTROL_MODEL] and ids[CANDIDATE_MODEL]
    for request_id in ids[CONTROL_MODEL]:
        status, body = await feedback(
            sidecar.proxy_url, {"request_id": request_id, "outcome": "accepted", "score": 0.9}
        )
        assert (status, body["variant"], body["model"]) == (200, "control", CONTROL_MODEL)
    for request_id in ids[CANDIDATE_MODEL]:
        status, body = await feedback(
            sidecar.proxy_url,
            {"request_id": request_id, "outcome": "edited", "edit_seconds": 42.5},
        )
        assert (status, body["variant"]) == (200, "candidate")
    status, _ = await feedback(
        sidecar.proxy_url, {"request_id": ids[CANDIDATE_MODEL][0], "outcome": "hallucination"}
    )
    assert status == 200

    samples = await scrape(sidecar.admin_url)
    name = "model_sidecar_feedback_total"
    control = {"experiment": "exp", "variant": "control", "gen_ai_request_model": CONTROL_MODEL}
    candidate = {"experiment": "exp", "variant": "candidate"}
    assert total(samples, name, outcome="accepted", **control) == len(ids[CONTROL_MODEL])
    assert total(samples, name, outcome="edited", **candidate) == len(ids[CANDIDATE_MODEL])
    assert total(samples, name, outcome="hallucination", **candidate) == 1
    assert total(samples, name, outcome="edited", **control) == 0
    edits = "model_sidecar_edit_seconds"
    assert total(samples, edits + "_sum", **candidate) == 42.5 * len(ids[CANDIDATE_MODEL])
    assert total(samples, "model_sidecar_feedback_score_count", **control) == len(
        ids[CONTROL_MODEL]
    )


async def test_every_response_has_a_request_id_and_bad_feedback_is_explained(
    sidecar_factory: SidecarFactory, sdk: SDKClients
) -> None:
    sidecar = await sidecar_factory({"feedback": {"max_request_ids": 2}})
    client = sdk.openai(sidecar.proxy_url)
    seen = []
    for headers in ({}, {"x-sim-status": "500"}):
        try:
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=QUESTION, extra_headers=headers
            )
            seen.append(raw.headers[REQUEST_ID_HEADER])
        except openai.InternalServerError as error:
            seen.append(error.response.headers[REQUEST_ID_HEADER])
    stream = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True
    )
    seen.append(stream.headers[REQUEST_ID_HEADER])
    async for _chunk in stream.parse():
        pass
    assert len(set(seen)) == 3
    # Only the last 2 ids are remembered: the first one expired.
    status, body = await feedback(sidecar.proxy_url, {"request_id": seen[0], "outcome": "rejected"})
    assert status == 404
    assert "expired (only the last 2 calls are remembered)" in body["error"]["message"]
    status, body = await feedback(sidecar.proxy_url, {"request_id": "nope", "outcome": "accepted"})
    assert status == 404 and "unknown request_id 'nope'" in body["error"]["message"]
    for bad, message in (
        ({"request_id": seen[2], "outcome": "great"}, "outcome must be one of accepted, edited"),
        ({"request_id": seen[2], "outcome": "edited", "edit_seconds": -1}, "edit_seconds must"),
        ({"request_id": seen[2], "outcome": "edited", "user": "x"}, "unknown field(s) user"),
        ([1, 2], "the body must be a JSON object"),
    ):
        status, body = await feedback(sidecar.proxy_url, bad)
        assert status == 400 and message in body["error"]["message"], body
    status, _ = await feedback(sidecar.proxy_url, {"request_id": seen[2], "outcome": "accepted"})
    assert status == 200
    samples = await scrape(sidecar.admin_url)
    assert total(samples, "model_sidecar_feedback_total", variant="", outcome="accepted") == 1
    async with aiohttp.ClientSession() as http, http.get(sidecar.proxy_url + "/_sidecar/x") as r:
        assert r.status == 404


async def test_the_audit_sample_has_no_credentials(
    sidecar_factory: SidecarFactory,
    sdk: SDKClients,
    models: dict[str, ModelProfile],
    records: RecordingSink,
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit" / "sample.jsonl"
    audit = {"sample_rate": 1.0, "path": str(path), "redact": [r"\b\d{3}-\d{2}-\d{4}\b"]}
    sidecar = await sidecar_factory({"experiments": [split(50, 50)], "audit": audit})
    client = sdk.openai(sidecar.proxy_url)
    secret_question = [
        {"role": "user", "content": f"My SSN is 123-45-6789 and my key is {API_KEY}."}
    ]
    for _ in range(6):
        await client.chat.completions.create(
            model=CONTROL_MODEL,
            messages=secret_question,
            extra_body={"api_key": "plain-secret-value", "metadata": {"password": "hunter2"}},
        )
    stream = await client.chat.completions.create(
        model=CONTROL_MODEL, messages=QUESTION, stream=True
    )
    async for _chunk in stream:
        pass
    done = await records.wait_for(7)
    text = path.read_text()
    for secret in (API_KEY, "plain-secret-value", "hunter2", "123-45-6789", "Bearer"):
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 7
    assert {line["request_id"] for line in lines} == {r.request_id for r in done}
    first = lines[0]
    assert first["request"]["messages"][0]["content"] == (
        "My SSN is [REDACTED] and my key is [REDACTED]."
    )
    assert "api_key" not in first["request"] and first["request"]["metadata"] == {}
    assert all(line["response"]["text"] for line in lines)
    assert lines[-1]["output_tokens"] == 20
    samples = await scrape(sidecar.admin_url)
    name = "model_sidecar_audit_samples_total"
    by_variant = {v: total(samples, name, variant=v) for v in ("control", "candidate")}
    assert sum(by_variant.values()) == 7
    assert by_variant == {
        v: sum(1 for line in lines if line["variant"] == v) for v in ("control", "candidate")
    }


def test_the_audit_file_is_rotated_by_size(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(AuditConfig(sample_rate=1.0, path=str(path), max_bytes=1500, backups=2))
    record = CallRecord("openai", "openai", "openai", "POST", "/v1/chat/completions", "h", 1)
    record.request_body = {"messages": [{"role": "user", "content": "x" * 400}]}
    for _ in range(12):
        log.write(record)
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all(p.stat().st_size <= 1500 for p in tmp_path.iterdir())
    assert all(
        json.loads(line)["path"] == "/v1/chat/completions"
        for p in tmp_path.iterdir()
        for line in p.read_text().splitlines()
    )


@pytest.mark.parametrize("rate", [0.0])
async def test_no_audit_file_without_opt_in(
    sidecar_factory: SidecarFactory, sdk: SDKClients, tmp_path: Path, rate: float
) -> None:
    path = tmp_path / "audit.jsonl"
    sidecar = await sidecar_factory({"audit": {"sample_rate": rate, "path": str(path)}})
    await sdk.openai(sidecar.proxy_url).chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION
    )
    assert not path.exists()
