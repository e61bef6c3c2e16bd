"""Fixtures: the injection templates exactly as the chart renders them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import helm_python as helm
import pytest

from sidecar.inject.patch import InjectionTemplate
from tests.helpers.chart import CHART_DIR, injection_json


@pytest.fixture(scope="session")
def injection_files() -> Iterator[dict[str, str]]:
    """{"native": injection.json text, "classic": ...} from the chart."""
    helm.disable_logging()
    with helm.Chart.load(CHART_DIR) as chart:
        yield {
            "native": injection_json(chart, native=True),
            "classic": injection_json(chart, native=False),
        }


@pytest.fixture(scope="session")
def native_template(injection_files: dict[str, str]) -> InjectionTemplate:
    return InjectionTemplate.from_mapping(json.loads(injection_files["native"]))


@pytest.fixture(scope="session")
def classic_template(injection_files: dict[str, str]) -> InjectionTemplate:
    return InjectionTemplate.from_mapping(json.loads(injection_files["classic"]))
