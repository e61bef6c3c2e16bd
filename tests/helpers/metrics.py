"""Reading a sidecar's /metrics in tests: scrape, then sum samples by name and labels."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


async def scrape(admin_url: str) -> list[Sample]:
    """Every sample the sidecar's /metrics serves now."""
    async with aiohttp.ClientSession() as http, http.get(admin_url + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(
        sample.value
        for sample in samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def series(samples: list[Sample], name: str) -> list[Sample]:
    """The samples called `name`."""
    return [sample for sample in samples if sample.name == name]
