"""The attribution label of a call: allow-list, first-N bound, `other`, `none`; the header is
stripped from what is forwarded only when configured so."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict
from pydantic import ValidationError

from sidecar.config.models import SidecarConfig
from sidecar.config.objectives import AttributionConfig
from sidecar.forward.attribution import Attribution
from sidecar.forward.headers import upstream_request_headers


def test_an_allow_list_admits_only_its_values() -> None:
    attribution = Attribution(AttributionConfig(header="X-Team", values=["search", "ads"]))
    assert attribution.header == "x-team"
    assert [attribution.resolve(v) for v in ("search", " ads ", "billing", "", None)] == [
        "search",
        "ads",
        "other",
        "other",
        "none",
    ]
    assert len(attribution) == 2


def test_without_a_list_the_first_values_are_kept_then_other() -> None:
    attribution = Attribution(AttributionConfig(header="x-feature", max_values=2))
    assert [attribution.resolve(v) for v in ("a", "b", "c", "a", "x" * 200, "other")] == [
        "a",
        "b",
        "other",
        "a",
        "other",
        "other",
    ]
    assert len(attribution) == 2


def test_strip_removes_the_header_from_the_forwarded_request() -> None:
    app = CIMultiDict({"X-Team": "search", "Authorization": "Bearer k", "Content-Length": "2"})
    kept = upstream_request_headers(app, ("gzip",))
    assert kept["x-team"] == "search"
    stripped = upstream_request_headers(
        app, ("gzip",), Attribution(AttributionConfig(header="x-team", strip=True)).strip
    )
    assert "x-team" not in stripped and stripped["Authorization"] == "Bearer k"


def test_config_errors_are_plain() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        AttributionConfig(header="x-team", values=["other"])
    with pytest.raises(ValidationError, match="not a valid header name"):
        AttributionConfig(header="x team")
    with pytest.raises(ValidationError, match=r"not one of attribution\.values"):
        SidecarConfig.model_validate(
            {
                "attribution": {"header": "x-team", "values": ["search"]},
                "budgets": {"ads": {"usd_per_day": 10}},
            }
        )
    with pytest.raises(ValidationError, match="exactly one of usd_per_day and usd_per_month"):
        SidecarConfig.model_validate({"attribution": {"header": "x-team"}, "budgets": {"ads": {}}})
