"""The results table: medians and min–max over runs, printed and written to BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    unit: str
    baseline: str
    target: float
    at_least: bool  # the ratio must be >= target (else <=)
    speedup: bool = False  # ratio = baseline / ours (for durations)

    def ratio(self, ours: float, baseline: float) -> float:
        if self.speedup:
            return baseline / ours if ours else 0.0
        return ours / baseline if baseline else 0.0

    def met(self, ratio: float) -> bool:
        return ratio >= self.target if self.at_least else ratio <= self.target

    @property
    def target_text(self) -> str:
        sign = "≥" if self.at_least else "≤"
        return f"{sign} {self.target:g}{'×' if self.speedup else ''}"


MEASURES = (
    Measure("event_rps", "`POST /funnel/event` throughput, 64 conns, unique events", "req/s",
            "one-INSERT endpoint", 0.6, True),
    Measure("event_p99", "`POST /funnel/event` p99 latency, same load", "ms",
            "one-INSERT endpoint", 2.0, False),
    Measure("batch_rows", "`POST /funnel/events/batch` rows/s, 1,000-event batches", "rows/s",
            "asyncpg COPY, bare table", 0.3, True),
    Measure("sync_speed", "Eventbrite sync, 100,000 attendees (time; ratio = speed-up)", "s",
            "dlt rest_api → same PG", 3.0, True, speedup=True),
    Measure("sync_rss", "sync peak RSS, 1,000,000 vs 10,000 records", "MB",
            "the 10,000-record run", 1.3, False),
    Measure("metrics_all", "`GET /analytics/funnel-metrics`, no filter, 1M leads/10M events",
            "ms", "`SELECT count(*) FROM funnel_events`", 0.25, False),
    Measure("metrics_30d", "`GET /analytics/funnel-metrics`, 30-day window", "ms",
            "`SELECT count(*) FROM funnel_events`", 0.25, False),
    Measure("conversion_rps", "`POST /funnel/conversion` throughput, 50 touchpoints/lead",
            "req/s", "one-INSERT endpoint", 0.4, True),
)  # fmt: skip


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _spread(values: Sequence[float]) -> str:
    return f"{_fmt(statistics.median(values))} ({_fmt(min(values))}–{_fmt(max(values))})"


def table(results: dict[str, list[dict[str, float]]]) -> list[str]:
    """Markdown rows; ``results[key]`` holds one {ours, baseline} per run."""
    lines = [
        "| measure | baseline | target | runs | ours: median (min–max) | "
        "baseline: median (min–max) | ratio: median (min–max) | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in MEASURES:
        runs = results.get(m.key)
        if not runs:
            continue
        ours = [r["ours"] for r in runs]
        base = [r["baseline"] for r in runs]
        ratios = [m.ratio(r["ours"], r["baseline"]) for r in runs]
        met = "yes" if m.met(statistics.median(ratios)) else "**no**"
        lines.append(
            f"| {m.label} | {m.baseline} | {m.target_text} | {len(runs)} | "
            f"{_spread(ours)} {m.unit} | {_spread(base)} {m.unit} | {_spread(ratios)} | {met} |"
        )
    return lines


def machine() -> str:
    cpu = "unknown CPU"
    with Path("/proc/cpuinfo").open() as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with Path("/proc/meminfo").open() as info:
        kb = int(info.readline().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB RAM"
    try:
        pg = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "show server_version"],
            capture_output=True, text=True, check=False, timeout=10,
        ).stdout.strip()  # fmt: skip
    except OSError:
        pg = "?"
    load = os.getloadavg()
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem}; {platform.platform()}; "
        f"Python {platform.python_version()}; PostgreSQL {pg}; "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )


def block(results: dict[str, list[dict[str, float]]], command: str, notes: list[str]) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        f"Command: `{command}`  ",
        f"Date: {now}  ",
        f"Machine: {machine()}",
        "",
        *table(results),
        "",
        *[f"- {n}" for n in notes],
        END,
    ]
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    """Replace the results block of ``path`` (keeping the analysis around it)."""
    if path.exists():
        current = path.read_text()
        if START in current and END in current:
            head, rest = current.split(START, 1)
            tail = rest.split(END, 1)[1]
            path.write_text(head + text + tail)
            return
    path.write_text("# Benchmarks\n\n" + text + "\n")
