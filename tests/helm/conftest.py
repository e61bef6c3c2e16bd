"""Fixtures: the chart loaded once, each named value set rendered once per session."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import helm_python as helm
import pytest

from tests.helpers.chart import CHART_DIR, VALUE_SETS, Rendered, render


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    helm.disable_logging()
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def rendered(chart: helm.Chart) -> Callable[[str], Rendered]:
    """rendered("webhook") -> the manifests for VALUE_SETS["webhook"], rendered once."""
    cache: dict[str, Rendered] = {}

    def get(name: str) -> Rendered:
        if name not in cache:
            cache[name] = render(chart, VALUE_SETS[name])
        return cache[name]

    return get
