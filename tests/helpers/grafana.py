"""What Grafana does to a dashboard's queries before Prometheus sees them, emulated for tests:
resolve `label_values()` variables with All selected, then substitute every variable.

All expands like Grafana's Prometheus datasource: the variable's `allValue` when it has one,
else every value found, regex-escaped, joined as `(a|b)`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>[a-zA-Z_]\w*)\)$")
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
# A metric selector with its matchers: `name{...}`.
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^{}]*)\}")
REGEX_SPECIALS = re.compile(r"([\\^$*+?.()|{}\[\]])")

# Grafana's built-in interval variables, as they would be at a 15 s scrape interval.
BUILTINS = {"__rate_interval": "1m", "__range": "5m", "__interval": "15s"}

Query = Callable[[str], Awaitable[list[dict[str, Any]]]]


def substitute(text: str, values: dict[str, str]) -> str:
    """`text` with every `$name` / `${name}` replaced; unknown variables raise KeyError."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in values:
            return values[name]
        if name in BUILTINS:
            return BUILTINS[name]
        raise KeyError(f"undefined variable ${name} in {text!r}")

    return VARIABLE.sub(replace, text)


def all_value(found: list[str], variable: dict[str, Any]) -> str:
    """What `$variable` becomes with All selected."""
    if variable.get("allValue"):
        return str(variable["allValue"])
    escaped = [REGEX_SPECIALS.sub(r"\\\1", value) for value in found]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


async def resolve_variables(
    dashboard: dict[str, Any], query: Query
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(variable → substituted text, variable → values found) with All selected everywhere."""
    values: dict[str, str] = {}
    found: dict[str, list[str]] = {}
    for variable in dashboard["templating"]["list"]:
        name = variable["name"]
        if variable["type"] == "datasource":
            values[name] = "prometheus"
            continue
        text = (
            variable["query"] if isinstance(variable["query"], str) else variable["query"]["query"]
        )
        match = LABEL_VALUES.match(text)
        assert match, f"variable {name}: expected label_values(selector, label), got {text!r}"
        selector = substitute(match["selector"], values)
        label = match["label"]
        series = await query(f"count by ({label}) ({selector})")
        found[name] = sorted({s["metric"][label] for s in series if s["metric"].get(label)})
        values[name] = all_value(found[name], variable)
    return values, found


def selectors(expr: str) -> Iterator[str]:
    """Every `metric{matchers}` selector in a PromQL expression."""
    for match in SELECTOR.finditer(expr):
        yield match.group(0)
