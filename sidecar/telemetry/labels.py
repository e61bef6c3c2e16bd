"""Bounded label values: a model label admits at most N distinct names, the rest become "other"."""

from __future__ import annotations

OTHER = "other"

# Longer "model names" are not model names (a pasted prompt, a token): never admit them.
MAX_NAME_LENGTH = 256


class ModelLabels:
    """The values one model label may take: the first `limit` names seen, then `other`.

    Each model label (request model, response model) has its own instance, so each label
    has at most `limit + 1` values. Admitted names stay admitted for the life of the
    process, so a name maps to the same label value every time. Memory is bounded by
    `limit`: names that overflow are counted, never stored.
    """

    __slots__ = ("_admitted", "limit", "overflowed")

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        self.limit = limit
        self._admitted: set[str] = set()
        # Lookups whose name was replaced by `other` (one per call, not per distinct name).
        self.overflowed = 0

    def __len__(self) -> int:
        return len(self._admitted)

    def resolve(self, name: str | None) -> str:
        """The label value for `name`: "" when unknown, the name when admitted, else `other`."""
        if not name:
            return ""
        admitted = self._admitted
        if name in admitted:
            return name
        if len(admitted) < self.limit and len(name) <= MAX_NAME_LENGTH:
            admitted.add(name)
            return name
        self.overflowed += 1
        return OTHER
