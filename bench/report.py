"""Turns repetitions into medians, ratios, the tables and PASS/FAIL against the targets."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.loads import Latencies, Streams, Throughput

# Added latencies at or below this are within the measurement's noise: ratios of added
# latency divide by at least this much, so a pass-through that adds ~0 never yields ±∞.
NOISE_FLOOR_MS = 0.05
# Typographic characters of the tables (spelled as escapes for the linter).
TIMES = "\u00d7"
NONE = "\u2013"
REFERENCE = "passthrough"
SUBJECT = "sidecar-full"
BASELINE = "direct"


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile by the nearest-rank method (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Measurement:
    """One contender in one repetition."""

    contender: str
    repetition: int
    throughput: Throughput | None = None
    cpu_us_per_call: float | None = None
    open_loop: dict[int, Latencies | None] = field(default_factory=dict)
    streams: dict[int, Streams] = field(default_factory=dict)
    peak_rss_bytes: int | None = None
    warmup_errors: int = 0

    @property
    def errors(self) -> int:
        """Failed calls over every load."""
        total = self.warmup_errors + (self.throughput.errors if self.throughput else 0)
        total += sum(run.errors for run in self.open_loop.values() if run is not None)
        return total + sum(run.errors for run in self.streams.values())


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


@dataclass
class Summary:
    """Medians over repetitions of one contender, with added latency against direct."""

    contender: str
    calls_per_second: float | None
    cpu_us_per_call: float | None
    peak_rss_mb: float | None
    errors: int
    latency: dict[int, dict[str, float | None]]  # rate -> p50/p90/p99/added_p50/added_p99 (ms)
    streaming: dict[int, dict[str, float | None]]  # concurrency -> ttfc/total/added_* (ms), held


def _added(
    own: Measurement, direct: Measurement | None, pick: Callable[[Measurement], float | None]
) -> float | None:
    mine = pick(own)
    theirs = pick(direct) if direct is not None else None
    return None if mine is None or theirs is None else mine - theirs


def _latency_ms(rate: int, q: float) -> Callable[[Measurement], float | None]:
    def pick(m: Measurement) -> float | None:
        run = m.open_loop.get(rate)
        return quantile(run.seconds, q) * 1e3 if run is not None and run.seconds else None

    return pick


def _stream_ms(concurrency: int, which: str) -> Callable[[Measurement], float | None]:
    def pick(m: Measurement) -> float | None:
        run = m.streams.get(concurrency)
        values = getattr(run, which) if run is not None else []
        return quantile(values, 0.5) * 1e3 if values else None

    return pick


def summarize(measurements: Sequence[Measurement], contender: str) -> Summary:
    """Medians of one contender's repetitions; added values are taken per repetition."""
    own = [m for m in measurements if m.contender == contender]
    direct = {m.repetition: m for m in measurements if m.contender == BASELINE}
    rates = sorted({rate for m in own for rate in m.open_loop})
    concurrencies = sorted({c for m in own for c in m.streams})
    latency: dict[int, dict[str, float | None]] = {}
    for rate in rates:
        row: dict[str, float | None] = {}
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            pick = _latency_ms(rate, q)
            row[name] = _median([pick(m) for m in own])
            if name != "p90":
                row[f"added_{name}"] = _median(
                    [_added(m, direct.get(m.repetition), pick) for m in own]
                )
        latency[rate] = row
    streaming: dict[int, dict[str, float | None]] = {}
    for concurrency in concurrencies:
        row = {}
        for which in ("ttfc", "total"):
            pick = _stream_ms(concurrency, which)
            row[which] = _median([pick(m) for m in own])
            row[f"added_{which}"] = _median(
                [_added(m, direct.get(m.repetition), pick) for m in own]
            )
        events = sum(m.streams[concurrency].content_events for m in own if concurrency in m.streams)
        held = sum(m.streams[concurrency].held_back for m in own if concurrency in m.streams)
        row["held_back"] = held / events if events else None
        streaming[concurrency] = row
    rss = _median([m.peak_rss_bytes for m in own])
    return Summary(
        contender=contender,
        calls_per_second=_median([m.throughput.per_second if m.throughput else None for m in own]),
        cpu_us_per_call=_median([m.cpu_us_per_call for m in own]),
        peak_rss_mb=rss / 2**20 if rss is not None else None,
        errors=sum(m.errors for m in own),
        latency=latency,
        streaming=streaming,
    )


def _fmt(value: float | None, digits: int = 2) -> str:
    return NONE if value is None else f"{value:,.{digits}f}"


def _floor(added_ms: float | None) -> float | None:
    return None if added_ms is None else max(added_ms, NOISE_FLOOR_MS)


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or base is None or base == 0:
        return NONE
    return f"{value / base:.2f}{TIMES}"


def tables(summaries: Sequence[Summary]) -> str:
    """Three markdown tables: throughput and cost, open-loop latency, streaming."""
    by_name = {s.contender: s for s in summaries}
    ref = by_name.get(REFERENCE)
    base = by_name.get(BASELINE)
    lines = [
        f"| contender | calls/s @c64 | {TIMES} direct | {TIMES} pass-through "
        f"| proxy CPU µs/call | {TIMES} pass-through | peak RSS MB | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        lines.append(
            f"| {s.contender} | {_fmt(s.calls_per_second, 0)} "
            f"| {_ratio(s.calls_per_second, base.calls_per_second if base else None)} "
            f"| {_ratio(s.calls_per_second, ref.calls_per_second if ref else None)} "
            f"| {_fmt(s.cpu_us_per_call, 0)} "
            f"| {_ratio(s.cpu_us_per_call, ref.cpu_us_per_call if ref else None)} "
            f"| {_fmt(s.peak_rss_mb, 1)} | {s.errors} |"
        )
    rates = sorted({rate for s in summaries for rate in s.latency})
    lines += [
        "",
        "| contender | "
        + " | ".join(
            f"{r}/s p50 ms | p90 | p99 | added p50 | added p99 | {TIMES} pass-through added p50"
            for r in rates
        )
        + " |",
        "|---|" + "---:|" * (6 * len(rates)),
    ]
    for s in summaries:
        cells = []
        for rate in rates:
            row = s.latency.get(rate)
            if row is None or row["p50"] is None:
                cells += ["skipped (over capacity)"] + [NONE] * 5
                continue
            ref_row = ref.latency.get(rate) if ref else None
            cells += [_fmt(row["p50"]), _fmt(row["p90"]), _fmt(row["p99"])]
            cells += [_fmt(row["added_p50"]), _fmt(row["added_p99"])]
            ref_added = ref_row["added_p50"] if ref_row else None
            cells.append(_ratio(row["added_p50"], _floor(ref_added)))
        lines.append(f"| {s.contender} | " + " | ".join(cells) + " |")
    concurrencies = sorted({c for s in summaries for c in s.streaming})
    lines += [
        "",
        "| contender | "
        + " | ".join(
            f"c{c} TTFC p50 ms | added TTFC | total p50 ms | added total | chunks held back"
            for c in concurrencies
        )
        + " |",
        "|---|" + "---:|" * (5 * len(concurrencies)),
    ]
    for s in summaries:
        cells = []
        for c in concurrencies:
            row = s.streaming.get(c, {})
            held = row.get("held_back")
            cells += [
                _fmt(row.get("ttfc")),
                _fmt(row.get("added_ttfc")),
                _fmt(row.get("total")),
                _fmt(row.get("added_total")),
                NONE if held is None else f"{held:.1%}",
            ]
        lines.append(f"| {s.contender} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Verdict:
    """One target of issue #6 and whether this run met it."""

    target: str
    measured: str
    passed: bool | None  # None: not measured in this run


def verdicts(summaries: Sequence[Summary], rate: int = 300) -> list[Verdict]:
    """Every target of issue #6, checked against this run's medians."""
    by_name = {s.contender: s for s in summaries}
    full, ref = by_name.get(SUBJECT), by_name.get(REFERENCE)
    litellm, direct = by_name.get("litellm"), by_name.get(BASELINE)
    result: list[Verdict] = []

    def check(target: str, value: float | None, base: float | None, limit: float, le: bool) -> None:
        if value is None or base is None or base == 0:
            result.append(Verdict(target, "not measured", None))
            return
        ratio = value / base
        passed = ratio <= limit if le else ratio >= limit
        result.append(Verdict(target, f"{ratio:.2f}{TIMES} ({value:,.1f} vs {base:,.1f})", passed))

    if full is None or ref is None:
        return [Verdict("targets", "need sidecar-full and passthrough", None)]
    check(
        f"throughput ≥ 0.8{TIMES} pass-through",
        full.calls_per_second,
        ref.calls_per_second,
        0.8,
        False,
    )
    check(
        f"throughput ≥ 30{TIMES} LiteLLM",
        full.calls_per_second,
        litellm.calls_per_second if litellm else None,
        30,
        False,
    )
    check(
        f"CPU/call ≤ 1.25{TIMES} pass-through",
        full.cpu_us_per_call,
        ref.cpu_us_per_call,
        1.25,
        True,
    )
    for name, limit in (("added_p50", 1.2), ("added_p99", 1.5)):
        mine = full.latency.get(rate, {}).get(name)
        theirs = ref.latency.get(rate, {}).get(name)
        label = f"{name.replace('_', ' ')} @{rate}/s ≤ {limit}{TIMES} pass-through"
        check(label, mine, _floor(theirs), limit, True)
    for concurrency, row in sorted(full.streaming.items()):
        mine, theirs = row.get("added_ttfc"), ref.streaming.get(concurrency, {}).get("added_ttfc")
        target = f"streaming c{concurrency}: added TTFC p50 within 0.3 ms of pass-through"
        if mine is None or theirs is None:
            result.append(Verdict(target, "not measured", None))
        else:
            diff = mine - theirs
            result.append(
                Verdict(target, f"{diff:+.3f} ms ({mine:.3f} vs {theirs:.3f})", diff <= 0.3)
            )
    held = full.streaming.get(1, {}).get("held_back")
    direct_held = direct.streaming.get(1, {}).get("held_back") if direct else None
    if held is None or direct_held is None:
        result.append(Verdict("chunks never held back (c1)", "not measured", None))
    else:
        result.append(
            Verdict(
                "chunks never held back (c1)",
                f"{held:.1%} coalesced (direct {direct_held:.1%})",
                held <= direct_held + 0.01,
            )
        )
    rss = full.peak_rss_mb
    result.append(
        Verdict(
            "peak RSS ≤ 100 MB",
            "not measured" if rss is None else f"{rss:.1f} MB",
            None if rss is None else rss <= 100,
        )
    )
    return result


def verdict_lines(items: Sequence[Verdict]) -> str:
    """PASS/FAIL/N/A lines."""
    words = {True: "PASS", False: "FAIL", None: "N/A "}
    return "\n".join(f"{words[v.passed]}  {v.target}: {v.measured}" for v in items)
