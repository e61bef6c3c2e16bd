"""The tables and PASS/FAIL lines of issue #23 (performance where a sidecar lives)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.footprint import CallCost, Footprint
from bench.long_streams import HeldStreams
from bench.pod import PodResults
from bench.report import NONE, TIMES, Verdict, quantile
from bench.startup import StartupTimes

MB = 2**20
SUBJECT = "sidecar-full"  # the usual telemetry on: spans exported, /metrics scraped
DEFAULT = "sidecar-default"
REFERENCE = "passthrough"
BASELINE = "direct"
# The targets of issue #23.
CHUNK_CPU_RATIO = 1.0
CALL_CPU_US = 80.0
HELD_RSS_MB = 150.0
HELD_ADDED_TTFC_P99_MS = 2.0
IDLE_RSS_MB = 45.0
READY_SECONDS = 0.3


def _fmt(value: float | None, digits: int = 2) -> str:
    return NONE if value is None else f"{value:,.{digits}f}"


def _mb(value: int | None) -> str:
    return NONE if value is None else f"{value / MB:,.1f}"


def startup_table(items: Sequence[StartupTimes]) -> str:
    """Exec to the first 200 from /readyz."""
    lines = ["| start-up | exec → /readyz 200, median s | min s | max s | runs |"]
    lines.append("|---|---:|---:|---:|---:|")
    for item in items:
        low = min(item.seconds) if item.seconds else None
        high = max(item.seconds) if item.seconds else None
        lines.append(
            f"| {item.variant} | {_fmt(item.median, 3)} | {_fmt(low, 3)} | {_fmt(high, 3)} "
            f"| {len(item.seconds)} |"
        )
    return "\n".join(lines)


def _spans(cost: CallCost | None) -> str:
    if cost is None or cost.spans_expected is None:
        return "no export"
    return f"{cost.spans_received or 0:,} of {cost.spans_expected:,}"


def footprint_table(items: Sequence[Footprint]) -> str:
    """Idle RSS, CPU per non-streaming call, RSS after load."""
    closed = items[0].closed.load if items else "closed loop"
    opened = next((i.open.load for i in items if i.open is not None), None)
    head = f"| contender | idle RSS MB | CPU µs/call, {closed} | spans exported "
    rule = "|---|---:|---:|---:|"
    if opened:
        head += f"| CPU µs/call, {opened} | spans exported "
        rule += "---:|---:|"
    lines = [head + "| RSS after load MB | peak RSS MB | errors |", rule + "---:|---:|---:|"]
    for item in items:
        errors = item.closed.errors + item.stream_errors + (item.open.errors if item.open else 0)
        cells = [
            item.contender,
            _mb(item.idle_rss_bytes),
            _fmt(item.closed.cpu_us_per_call, 1),
            _spans(item.closed),
        ]
        if opened:
            cells += [_fmt(item.open.cpu_us_per_call if item.open else None, 1), _spans(item.open)]
        cells += [_mb(item.rss_after_load_bytes), _mb(item.peak_rss_bytes), str(errors)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ttfc(item: HeldStreams | None, q: float) -> float | None:
    return quantile(item.ttfc_ms, q) if item is not None and item.ttfc_ms else None


def _added(item: HeldStreams, direct: HeldStreams | None, q: float) -> float | None:
    mine, theirs = _ttfc(item, q), _ttfc(direct, q)
    return None if mine is None or theirs is None else mine - theirs


def _find(items: Sequence[HeldStreams], name: str, level: int) -> HeldStreams | None:
    return next((i for i in items if i.contender == name and i.concurrency == level), None)


def held_table(items: Sequence[HeldStreams]) -> str:
    """Per level and contender: CPU per chunk, errors, stalls, TTFC, RSS, generator load."""
    lines = [
        f"| streams | contender | chunks | proxy CPU µs/chunk | {TIMES} pass-through | errors "
        "| stalls | max gap ms | TTFC p50 ms | TTFC p99 ms | added p50 | added p99 "
        "| first streams' TTFC p99 ms | listen drops | peak RSS MB | proxy busy "
        "| proxy preempted | generator busy | generator lag p99 ms |",
        "|---:|---|" + "---:|" * 17,
    ]
    for item in items:
        direct = _find(items, BASELINE, item.concurrency)
        ref = _find(items, REFERENCE, item.concurrency)
        mine, base = item.cpu_us_per_chunk, ref.cpu_us_per_chunk if ref else None
        ratio = NONE if mine is None or not base else f"{mine / base:.2f}{TIMES}"
        busy = f"{item.generator_busy:.0%}" + (" (saturated)" if item.generator_saturated else "")
        proxy = NONE if item.proxy_busy is None else f"{item.proxy_busy:.0%}"
        lines.append(
            f"| {item.concurrency:,} | {item.contender} | {item.chunks:,} | {_fmt(mine, 1)} "
            f"| {ratio} | {item.error_count} | {item.stalls} | {_fmt(item.max_gap_ms, 1)} "
            f"| {_fmt(_ttfc(item, 0.5))} | {_fmt(_ttfc(item, 0.99))} "
            f"| {_fmt(_added(item, direct, 0.5))} | {_fmt(_added(item, direct, 0.99))} "
            f"| {_fmt(quantile(item.first_ttfc_ms, 0.99) if item.first_ttfc_ms else None)} "
            f"| {NONE if item.listen_drops is None else item.listen_drops} "
            f"| {_mb(item.peak_rss_bytes)} | {proxy} "
            f"| {NONE if item.proxy_preemptions is None else f'{item.proxy_preemptions:,}'} "
            f"| {busy} "
            f"| {_fmt(item.generator_lag_p99_ms, 1)} |"
        )
    return "\n".join(lines)


def _chunk_cpu(items: Sequence[HeldStreams], result: list[Verdict]) -> None:
    for level in sorted({i.concurrency for i in items}):
        target = f"streamed chunk CPU ≤ {CHUNK_CPU_RATIO}{TIMES} pass-through (c{level:,})"
        full, ref = _find(items, SUBJECT, level), _find(items, REFERENCE, level)
        mine = full.cpu_us_per_chunk if full else None
        base = ref.cpu_us_per_chunk if ref else None
        if mine is None or not base:
            result.append(Verdict(target, "not measured", None))
            continue
        ratio = mine / base
        measured = f"{ratio:.2f}{TIMES} ({mine:.1f} vs {base:.1f} µs)"
        result.append(Verdict(target, measured, ratio <= CHUNK_CPU_RATIO))


def _held(items: Sequence[HeldStreams], result: list[Verdict]) -> None:
    if not items:
        return
    level = max(i.concurrency for i in items)
    full, direct = _find(items, SUBJECT, level), _find(items, BASELINE, level)
    prefix = f"{level:,} concurrent streams ({SUBJECT})"
    if full is None:
        result.append(Verdict(prefix, "not measured", None))
        return
    errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(full.errors.items()))
    result.append(
        Verdict(
            f"{prefix}: no errors",
            f"{full.error_count} of {full.streams:,} streams" + (f" ({errors})" if errors else ""),
            full.error_count == 0,
        )
    )
    result.append(
        Verdict(
            f"{prefix}: no stall",
            f"{full.stalls} pauses above the stall threshold, longest {full.max_gap_ms:.1f} ms",
            full.stalls == 0,
        )
    )
    rss = full.peak_rss_bytes / MB if full.peak_rss_bytes is not None else None
    result.append(
        Verdict(
            f"{prefix}: peak RSS ≤ {HELD_RSS_MB:.0f} MB",
            "not measured" if rss is None else f"{rss:.1f} MB",
            None if rss is None else rss <= HELD_RSS_MB,
        )
    )
    added = _added(full, direct, 0.99)
    result.append(
        Verdict(
            f"{prefix}: added TTFC p99 ≤ {HELD_ADDED_TTFC_P99_MS:.0f} ms over direct",
            "not measured"
            if added is None
            else f"{added:+.2f} ms ({_ttfc(full, 0.99):.2f} vs {_ttfc(direct, 0.99):.2f})",
            None if added is None else added <= HELD_ADDED_TTFC_P99_MS,
        )
    )


def _footprint(items: Sequence[Footprint], result: list[Verdict]) -> None:
    by_name = {i.contender: i for i in items}
    full, default = by_name.get(SUBJECT), by_name.get(DEFAULT)
    if full is not None or default is not None:
        target = f"non-streaming CPU/call ≤ {CALL_CPU_US:.0f} µs, full telemetry with span export"
        mine = full.closed.cpu_us_per_call if full else None
        if full is None or mine is None:
            result.append(Verdict(target, "not measured", None))
        else:
            measured = f"{mine:.1f} µs with export"
            without = default.closed.cpu_us_per_call if default else None
            if without is not None:
                measured += f" ({without:.1f} µs without, {DEFAULT})"
            measured += f"; {full.closed.load}; {_spans(full.closed)} spans"
            result.append(Verdict(target, measured, mine <= CALL_CPU_US))
    if default is not None:
        idle = default.idle_rss_bytes / MB
        result.append(
            Verdict(
                f"idle RSS ≤ {IDLE_RSS_MB:.0f} MB (default config)", f"{idle:.1f} MB",
                idle <= IDLE_RSS_MB,
            )
        )  # fmt: skip


def pod_verdicts(results: PodResults) -> list[Verdict]:
    """Every target of issue #23 that this run measured."""
    result: list[Verdict] = []
    _chunk_cpu(results.held, result)
    _footprint(results.footprints, result)
    _held(results.held, result)
    for item in results.startup:
        median = item.median
        runs = len(item.seconds)
        result.append(
            Verdict(
                f"exec to ready ≤ {READY_SECONDS} s ({item.variant}, median of {runs})",
                "not measured" if median is None else f"{median:.3f} s",
                None if median is None else median <= READY_SECONDS,
            )
        )
    return result


def warnings(results: PodResults) -> list[str]:
    """Runs whose load generator may have been the bottleneck."""
    return [
        f"WARN  generator saturated: c{i.concurrency:,} {i.contender}: the generator's core(s) "
        f"{i.generator_busy:.0%} busy (generators {i.generator_cpu_seconds:.1f} s + upstream "
        f"{i.upstream_cpu_seconds:.1f} s of CPU in {i.wall_seconds:.1f} s), its loop "
        f"{i.generator_lag_p99_ms:.1f} ms late p99 (limit {i.lag_limit_ms:.1f} ms)"
        for i in results.held
        if i.generator_saturated
    ]


def pod_report(results: PodResults, caption: str) -> str:
    """The section of the report for issue #23."""
    plan = results.plan
    if results.cpu_pressure is not None:
        caption += (
            f" CPU pressure during these scenarios: {results.cpu_pressure:.0%} of the time some "
            "task waited for a CPU (/proc/pressure/cpu; high on a shared machine)."
        )
    parts = ["### Where a sidecar lives (issue #23)", caption, ""]
    if results.startup:
        parts += [startup_table(results.startup), ""]
    if results.footprints:
        size = plan.footprint
        opened = f", then an open loop for {size.open_seconds} s" if size.open_rate else ""
        parts += [
            f"Footprint: idle RSS after ready and {size.settle_seconds} s without traffic; CPU "
            f"per non-streaming call over a closed loop of {size.closed_seconds} s{opened} "
            f"(with export: until the OTLP receiver has every span); RSS after "
            f"{size.burst_streams} concurrent streams.",
            "",
            footprint_table(results.footprints),
            "",
        ]
    if results.held:
        shape = plan.shape
        parts += [
            f"Held streams: {shape.chunks} chunks {shape.interval_ms} ms apart, {shape.rounds} "
            f"stream(s) per slot back to back, starts spread over one stream's length; "
            f"{max(i.generators for i in results.held)} generator process(es) on "
            f"{results.held[0].generator_cores} core(s) with the upstream; a stall is a pause "
            f"above {shape.stall_gap * 1e3:.0f} ms. TTFC: the streams started while all are held "
            "(each slot's second stream on); the first streams' (ramp-up, connect included) "
            "apart.",
            "",
            held_table(results.held),
            "",
        ]
    return "\n".join(parts)
