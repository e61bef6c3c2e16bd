"""What the page reads of the metric registry: the series the model-comparison report reads
(`report_prometheus.QUERIES`), of model calls only, summed by model, experiment and variant plus
the labels the report's maths needs — as `sum by (...)` would in PromQL. Summing away the
provider, operation and upstream labels first keeps a reading small (one float per series)."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sidecar.telemetry.registry import MetricRegistry
from sidecar.tools.report import (
    ARM_GROUP,
    RENAMED,
    SampleTuple,
    inference_only,
    one_generation,
)
from sidecar.tools.report_prometheus import QUERIES

# (series name, ((label, value), ...)) in ARM_GROUP order, then the series' own labels.
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]

# Labels kept per series the report reads.
KEPT_LABELS: dict[str, tuple[str, ...]] = {
    series: (*ARM_GROUP, *extra) for series, extra in QUERIES
}
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _family_names() -> frozenset[str]:
    """The registered metric names the kept series come from (every generation's name)."""
    names = set()
    for series in KEPT_LABELS:
        base = next(
            (series.removesuffix(s) for s in _HISTOGRAM_SUFFIXES if series.endswith(s)), series
        )
        names.add(base)
        if base in RENAMED:
            names.update(RENAMED[base].names)
    return frozenset(names)


FAMILY_NAMES = _family_names()


@dataclass(frozen=True, slots=True)
class Reading:
    """The registry's kept series at one moment: `keys[i]` has the value `values[i]`.

    Consecutive readings share one `keys` tuple while no series was added or removed, so a
    reading costs 8 bytes per series beyond the first."""

    at_unix: float
    at_monotonic: float
    keys: tuple[SeriesKey, ...]
    values: array[float]

    def as_dict(self) -> dict[SeriesKey, float]:
        """Series key to value."""
        return dict(zip(self.keys, self.values, strict=True))


def registry_samples(metrics: MetricRegistry) -> Iterator[SampleTuple]:
    """(name, labels, value) of every sample of the families the page reads."""
    for instrument in metrics.instruments:
        if instrument.collected or instrument.name not in FAMILY_NAMES:
            continue
        for family in metrics.metric(instrument.name).collect():
            for sample in family.samples:
                yield sample.name, sample.labels, sample.value


def reduce(samples: Iterable[SampleTuple]) -> dict[SeriesKey, float]:
    """The kept series of model calls, each generation's name read once, summed by KEPT_LABELS."""
    sums: dict[SeriesKey, float] = {}
    for name, labels, value in inference_only(one_generation(samples)):
        kept = KEPT_LABELS.get(name)
        if kept is None:
            continue
        key = (name, tuple((label, labels.get(label, "")) for label in kept))
        sums[key] = sums.get(key, 0.0) + value
    return sums


def delta(now: dict[SeriesKey, float], before: dict[SeriesKey, float]) -> dict[SeriesKey, float]:
    """What each series counted since `before`: a series that went down was reset (an
    experiment removed and added again) and counts from zero, as Prometheus' increase()."""
    result = {}
    for key, value in now.items():
        earlier = before.get(key, 0.0)
        result[key] = value - earlier if value >= earlier else value
    return result


def as_samples(series: dict[SeriesKey, float]) -> list[SampleTuple]:
    """The series as (name, labels, value), as `report.aggregate` reads them."""
    return [(name, dict(labels), value) for (name, labels), value in series.items()]
