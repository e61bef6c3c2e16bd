"""The pipeline: calls reach every sink off the call path; failures and overload stay contained."""

from __future__ import annotations

import asyncio

from sidecar.pipeline import Pipeline
from sidecar.record import CallRecord


def make_record(model: str = "m") -> CallRecord:
    record = CallRecord(
        upstream="openai",
        protocol="openai",
        provider_name="openai",
        method="POST",
        path="/v1/chat/completions",
        server_address="127.0.0.1",
        server_port=1,
    )
    record.request.request_model = model
    return record


class ListSink:
    name = "list"

    def __init__(self) -> None:
        self.started: list[CallRecord] = []
        self.finished: list[CallRecord] = []
        self.drops = 0
        self.closed = False

    def call_started(self, record: CallRecord) -> None:
        self.started.append(record)

    def call_finished(self, record: CallRecord) -> None:
        self.finished.append(record)

    def dropped(self, record: CallRecord) -> None:
        self.drops += 1

    def close(self) -> None:
        self.closed = True


class BrokenSink(ListSink):
    name = "broken"

    def call_started(self, record: CallRecord) -> None:
        raise RuntimeError("broken sink")

    def call_finished(self, record: CallRecord) -> None:
        raise RuntimeError("broken sink")

    def close(self) -> None:
        raise RuntimeError("broken sink")


async def test_records_are_enriched_then_reach_every_sink_even_past_a_broken_one() -> None:
    good = ListSink()

    def enrich(record: CallRecord) -> None:
        record.cost_usd = 1.5

    def broken_enricher(record: CallRecord) -> None:
        raise ValueError("broken enricher")

    pipeline = Pipeline([BrokenSink(), good], stages=[broken_enricher, enrich])
    pipeline.start()
    records = [make_record(str(i)) for i in range(5)]
    for record in records:
        pipeline.started(record)
        pipeline.submit(record)
    # Submitting never runs the sinks inline: the call path does not wait on them.
    assert good.finished == []
    await asyncio.sleep(0.01)
    assert good.finished == records
    assert good.started == records
    assert all(r.cost_usd == 1.5 for r in good.finished)
    await pipeline.close()
    assert good.closed


async def test_a_full_queue_drops_and_counts_instead_of_growing() -> None:
    sink = ListSink()
    pipeline = Pipeline([sink], queue_size=10)
    pipeline.start()
    for i in range(25):
        pipeline.submit(make_record(str(i)))
    assert pipeline.dropped_total == 15
    assert sink.drops == 15
    await pipeline.close()
    assert len(sink.finished) == 10


async def test_close_drains_what_is_queued() -> None:
    sink = ListSink()
    pipeline = Pipeline([sink])
    pipeline.start()
    for i in range(100):
        pipeline.submit(make_record(str(i)))
    await pipeline.close()
    assert len(sink.finished) == 100
