"""Attribution: which team or feature a call belongs to, from one allow-listed request header,
decided once per call before it is forwarded (the bounded `attribution` label).

An allow-list admits only its values; without one, the first `max_values` distinct values seen
are admitted for the life of the process. Anything else becomes `other`, a missing header
`none`: the label set never grows past the bound, and values that overflow are never stored.
"""

from __future__ import annotations

from sidecar.config.objectives import AttributionConfig

OTHER = "other"
NONE = "none"
# Longer values are not team names (a pasted token, an id): never admitted.
MAX_VALUE_LENGTH = 128


class Attribution:
    """The attribution header of one config and the values it has admitted."""

    __slots__ = ("_admitted", "_fixed", "config", "header", "limit", "strip")

    def __init__(self, config: AttributionConfig) -> None:
        self.config = config
        self.header = config.header
        # Removed from the request before forwarding (None: forwarded as sent).
        self.strip = config.header if config.strip else None
        self._fixed = config.values is not None
        self._admitted: set[str] = set(config.values or ())
        self.limit = len(self._admitted) if self._fixed else config.max_values

    def __len__(self) -> int:
        return len(self._admitted)

    def resolve(self, value: str | None) -> str:
        """The label value of a call whose header is `value` (None: no such header)."""
        if value is None:
            return NONE
        value = value.strip()
        admitted = self._admitted
        if value in admitted:
            return value
        if (
            not self._fixed
            and len(admitted) < self.limit
            and 0 < len(value) <= MAX_VALUE_LENGTH
            and value.isprintable()
            and value not in (OTHER, NONE)
        ):
            admitted.add(value)
            return value
        return OTHER
