"""AWS regions: recognising one, and reading it from a Bedrock endpoint's host name."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# us-east-1, eu-central-2, us-gov-west-1, ap-southeast-4, cn-north-1, ...
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
# bedrock-runtime[-fips].REGION.amazonaws.com[.cn], its VPC endpoints
# (vpce-....bedrock-runtime.REGION.vpce.amazonaws.com) and dual-stack names (REGION.api.aws).
_ENDPOINT = re.compile(
    r"(?:^|\.)bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.(?:vpce\.)?(?:amazonaws\.com(?:\.cn)?|api\.aws)$"
)


def is_region(value: str) -> bool:
    """Whether `value` is shaped like an AWS region name."""
    return _REGION.fullmatch(value) is not None


def region_from_url(url: str) -> str | None:
    """The region of a Bedrock runtime endpoint URL, or None when its host does not name one."""
    host = (urlsplit(url).hostname or "").lower()
    match = _ENDPOINT.search(host)
    if match is None or not is_region(match.group(1)):
        return None
    return match.group(1)
