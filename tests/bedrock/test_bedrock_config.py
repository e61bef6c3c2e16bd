"""Configuring a `bedrock` upstream: it exists only when configured, takes its region from the
URL or `region:`, refuses what it cannot sign for, and keeps the pod's credentials across
reloads."""

from __future__ import annotations

import pytest

from sidecar.app import Sidecar
from sidecar.aws.region import is_region, region_from_url
from sidecar.config.load import ConfigError, load_config
from sidecar.config.models import SidecarConfig
from tests.helpers.sidecar import SidecarFactory, sidecar_config


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://bedrock-runtime.us-east-1.amazonaws.com", "us-east-1"),
        ("https://bedrock-runtime-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ("https://BEDROCK-RUNTIME.EU-CENTRAL-1.AMAZONAWS.COM/", "eu-central-1"),
        ("https://bedrock-runtime.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        (
            "https://vpce-0a1b2c3d-xyz.bedrock-runtime.ap-southeast-2.vpce.amazonaws.com",
            "ap-southeast-2",
        ),
        ("https://bedrock-runtime.eu-west-3.api.aws", "eu-west-3"),
        ("https://bedrock.us-east-1.amazonaws.com", None),  # the control plane, not runtime
        ("http://127.0.0.1:8080", None),
        ("https://bedrock-runtime.amazonaws.com", None),
        ("https://bedrock-runtime.us-east-1.example.com", None),
    ],
)
def test_region_from_the_endpoint(url: str, region: str | None) -> None:
    assert region_from_url(url) == region


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("us-east-1", True),
        ("ap-southeast-4", True),
        ("us-gov-west-1", True),
        ("useast1", False),
        ("US-EAST-1", False),
        ("us-east", False),
        ("", False),
    ],
)
def test_region_names(value: str, valid: bool) -> None:
    assert is_region(value) is valid


def test_the_upstream_flag_makes_a_bedrock_upstream() -> None:
    config = load_config(
        upstreams={"bedrock": "https://bedrock-runtime.eu-west-3.amazonaws.com"}, environ={}
    )
    bedrock = config.upstreams["bedrock"]
    assert (bedrock.protocol, bedrock.path_prefix, bedrock.aws_region) == (
        "bedrock",
        "",
        "eu-west-3",
    )
    from_env = load_config(
        environ={
            "MODEL_SIDECAR_UPSTREAMS": "bedrock=https://bedrock-runtime.us-west-2.amazonaws.com"
        }
    )
    assert from_env.upstreams["bedrock"].aws_region == "us-west-2"


def test_bedrock_exists_only_when_configured() -> None:
    assert "bedrock" not in SidecarConfig().upstreams
    assert set(SidecarConfig().upstreams) == {"openai", "anthropic", "gemini"}


def test_region_key_wins_over_the_url() -> None:
    config = SidecarConfig.model_validate(
        {
            "upstreams": {
                "bedrock": {
                    "url": "https://bedrock-runtime.us-east-1.amazonaws.com",
                    "region": "eu-central-1",
                }
            }
        }
    )
    assert config.upstreams["bedrock"].aws_region == "eu-central-1"


def test_an_endpoint_without_a_region_needs_the_region_key() -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(upstreams={"bedrock": "http://127.0.0.1:9000"}, environ={})
    (line,) = refused.value.errors
    assert "upstream 'bedrock': cannot tell the AWS region from http://127.0.0.1:9000" in line
    assert "set region" in line


def test_a_malformed_region_is_refused() -> None:
    with pytest.raises(ValueError, match="expected an AWS region such as us-east-1"):
        SidecarConfig.model_validate(
            {"upstreams": {"bedrock": {"url": "http://127.0.0.1:9", "region": "useast1"}}}
        )


async def test_a_named_bedrock_upstream_with_a_prefix_signs_for_its_own_region(
    sidecar_factory: SidecarFactory,
) -> None:
    sidecar = await sidecar_factory(
        {
            "upstreams": {
                "bedrock-eu": {
                    "url": "https://bedrock-runtime.eu-west-1.amazonaws.com",
                    "protocol": "bedrock",
                    "path_prefix": "/eu",
                }
            }
        }
    )
    routing = sidecar.routing.current
    route = routing.router.route("/eu/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse")
    assert (route.upstream.name, route.protocol.name) == ("bedrock-eu", "bedrock")
    signer = route.upstream.signer
    assert signer is not None
    assert (signer.service, signer.region) == ("bedrock", "eu-west-1")
    assert signer.host_header == "bedrock-runtime.eu-west-1.amazonaws.com"
    assert routing.upstreams["openai"].signer is None
    assert sidecar.status()["upstreams"]["bedrock-eu"]["protocol"] == "bedrock"


async def test_a_reload_keeps_the_pods_credentials(sidecar_factory: SidecarFactory) -> None:
    upstream = {"bedrock": {"url": "https://bedrock-runtime.us-east-1.amazonaws.com"}}
    sidecar: Sidecar = await sidecar_factory({"upstreams": upstream})
    before = sidecar.routing.current.upstreams["bedrock"].signer
    assert before is not None
    moved = {"bedrock": {**upstream["bedrock"], "region": "us-west-2"}}
    sidecar.reload(sidecar_config("http://127.0.0.1:9", {"upstreams": moved}))
    after = sidecar.routing.current.upstreams["bedrock"].signer
    assert after is not None and after.region == "us-west-2"
    assert after.credentials is before.credentials  # looked up once per process
