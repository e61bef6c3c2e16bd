"""Per-model failures never stop the others; the budget cap stops the whole probe."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.ports import closed_port_url
from tests.helpers.probe import probe
from tests.helpers.simulator import RunningSimulator


async def test_down_endpoint_missing_key_and_unknown_provider_are_reported_per_model(
    simulator: RunningSimulator, prompts_file: Path
) -> None:
    run = await probe(
        [
            "openai:gpt-4o-mini",
            "anthropic:claude-sonnet-4",  # its upstream is a closed port
            "gemini:gemini-2.0-flash",  # the public Gemini endpoint, and no key set
            "mistral:mistral-small",  # no such provider or upstream
        ],
        {"openai": simulator.url, "anthropic": closed_port_url()},
        prompts_file,
        environ={},
        requests=12,
        concurrency=3,
    )
    assert run.status == 1, "a model that could not be probed fails the command"
    mini = run.model("openai:gpt-4o-mini")
    assert mini["status"] == "ok" and mini["calls"] == 12 and mini["errors"] == 0
    assert mini["rank"] == 1

    down = run.model("anthropic:claude-sonnet-4")
    assert down["status"] == "failed" and down["rank"] is None
    assert down["errors_by_type"] == {"connection_error": down["calls"]}
    assert "could not reach the upstream" in down["problem"]
    # Given up after a few failures instead of hammering a dead endpoint 12 + 3 times.
    assert down["warmup_calls"] + down["sent"] < 12

    no_key = run.model("gemini:gemini-2.0-flash")
    assert no_key["status"] == "skipped" and no_key["calls"] == 0
    assert "GEMINI_API_KEY or GOOGLE_API_KEY" in no_key["problem"]
    unknown = run.model("mistral:mistral-small")
    assert unknown["status"] == "skipped"
    assert "unknown provider or upstream 'mistral'" in unknown["problem"]
    # No call went to the public Gemini endpoint: the simulator saw only OpenAI calls.
    assert {r.path_qs for r in simulator.sim.received} == {"/v1/chat/completions"}


async def test_budget_cap_stops_sending_before_spending_more(
    simulator: RunningSimulator, prompts_file: Path
) -> None:
    budget = 0.012  # about 25 gpt-4o and Sonnet calls, warm-up included; 80 were planned
    run = await probe(
        ["openai:gpt-4o", "anthropic:claude-sonnet-4"],
        {"openai": simulator.url, "anthropic": simulator.url},
        prompts_file,
        requests=40,
        concurrency=4,
        budget_usd=budget,
    )
    assert run.status == 0, run.err
    report = run.report
    assert report["budget_reached"] is True
    priciest_call = max(m["cost_per_call_usd"] for m in report["models"])
    # The stated bound: at most one call per model beyond the cap; in practice none.
    assert report["spent_usd"] <= budget + len(report["models"]) * priciest_call
    assert report["spent_usd"] <= budget * 1.001
    assert report["spent_usd"] > budget - 2 * priciest_call, "stopped well before the cap"
    for model in report["models"]:
        assert 0 < model["sent"] < model["planned"] == 40
        assert model["note"] == "budget reached"
    sent = sum(m["sent"] + m["warmup_calls"] for m in report["models"])
    assert len(simulator.sim.received) == sent


async def test_budget_is_not_reached_when_roomy(
    simulator: RunningSimulator, prompts_file: Path
) -> None:
    run = await probe(
        ["openai:gpt-4o-mini"],
        {"openai": simulator.url},
        prompts_file,
        requests=10,
        concurrency=2,
        budget_usd=1.0,
    )
    assert run.report["budget_reached"] is False
    assert run.model("openai:gpt-4o-mini")["sent"] == 10
    assert 0 < run.report["spent_usd"] < 1.0
