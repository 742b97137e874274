"""``python -m bench [--smoke] [--runs N] [--only ...]``: run the suite, print the table,
write it to BENCHMARKS.md (see that file for what each measure means)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import bench
from bench import analytics, dataset, db, ingest, report, sync
from bench.profiles import FULL, SMOKE, Profile

PARTS = ("ingest", "sync", "rss", "analytics")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _collect(results: dict[str, list[dict[str, float]]], run: dict[str, dict[str, float]]) -> None:
    for key, value in run.items():
        results.setdefault(key, []).append(value)


def _runs(n: int, what: str, fn: Callable[[], dict[str, dict[str, float]]], results: Any) -> None:
    for i in range(n):
        started = time.monotonic()
        run = fn()
        _collect(results, run)
        shown = ", ".join(f"{k} {v['ours']:.4g} vs {v['baseline']:.4g}" for k, v in run.items())
        _log(f"  {what} run {i + 1}/{n} ({time.monotonic() - started:.0f} s): {shown}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run (CI)")
    parser.add_argument("--runs", type=int, help="runs per measure (default 3; smoke 1)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma list of {PARTS}")
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server (benchmark databases are created on it)",
    )
    parser.add_argument("--output", type=Path, help="default BENCHMARKS.md (smoke: bench/.out)")
    args = parser.parse_args(argv)  # fmt: skip

    p: Profile = SMOKE if args.smoke else FULL
    if args.runs:
        p = replace(p, runs=args.runs)
    parts = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    server = args.pg.rstrip("/")
    name = f"signup_sync_bench_{p.name}"
    urls = {
        kind: "postgresql+asyncpg" + db.with_database(server, f"{name}_{kind}")[len("postgresql") :]
        for kind in ("ingest", "sync", "data")
    }
    if p is FULL or p.dataset == FULL.dataset:
        # The cached 1M-lead data set keeps one name across invocations.
        urls["data"] = urls["data"].replace(f"{name}_data", "signup_sync_bench_10m")
    output = args.output or (
        bench.ROOT / "bench" / ".out" / "BENCHMARKS-smoke.md" if args.smoke
        else bench.ROOT / "BENCHMARKS.md"
    )  # fmt: skip
    started = time.monotonic()
    results: dict[str, list[dict[str, float]]] = {}
    notes: list[str] = []

    if "ingest" in parts:
        _log("ingest: POST /funnel/event and /funnel/events/batch")
        asyncio.run(ingest.prepare(urls["ingest"]))
        with ingest.servers(urls["ingest"]) as s:
            ingest.warm_up(s, p)

            def ingest_run() -> dict[str, dict[str, float]]:
                asyncio.run(ingest.reset(urls["ingest"]))
                return {**ingest.event_run(s, p), **ingest.batch_run(s, urls["ingest"], p)}

            _runs(p.runs, "ingest", ingest_run, results)
    if "sync" in parts or "rss" in parts:
        asyncio.run(sync.prepare(urls["sync"]))
    if "sync" in parts:
        _log(f"sync: {p.sync_records:,} Eventbrite attendees, ours vs dlt")
        _runs(p.runs, "sync", lambda: sync.speed_run(urls["sync"], p), results)
    if "rss" in parts:
        _log(f"rss: sync of {p.sync_large:,} vs {p.sync_small:,} attendees")
        _runs(p.rss_runs, "rss", lambda: sync.rss_run(urls["sync"], p), results)
    if "analytics" in parts:
        _log("analytics: data set")
        info = asyncio.run(dataset.ensure(urls["data"], p.dataset, log=_log))
        notes.append(
            f"Data set: {info['leads']:,} leads, {info['events']:,} events, "
            f"{info['conversions']:,} conversions, {info['credits']:,} attribution credits "
            f"(seed {p.dataset.seed}; loaded in {info['load_seconds']:.0f} s, then cached)."
        )
        asyncio.run(analytics.prepare(urls["data"]))
        with analytics.servers(urls["data"]) as s:

            def analytics_run() -> dict[str, dict[str, float]]:
                try:
                    return {
                        **analytics.metrics_run(s, urls["data"], p),
                        **analytics.conversion_run(s, urls["data"], p),
                    }
                finally:
                    asyncio.run(analytics.cleanup(urls["data"], p.dataset))

            _runs(p.runs, "analytics", analytics_run, results)

    elapsed = time.monotonic() - started
    command = "python -m bench" + (" --smoke" if args.smoke else "")
    if argv:
        command = "python -m bench " + " ".join(argv)
    notes += [
        f"Wall time of this invocation: {elapsed / 60:.1f} min.",
        f"Load: wrk, {p.connections} connections (batches: {p.batch_connections}), "
        f"{p.seconds:g} s per measurement after a {p.warmup_seconds:g} s warm-up; servers: "
        f"uvicorn --workers 2 --loop uvloop --http httptools; Eventbrite page size "
        f"{p.page_size} (the API's own); the RSS pair at {p.rss_page_size} a page.",
    ]
    text = report.block(results, command, notes)
    print(text)
    output.parent.mkdir(parents=True, exist_ok=True)
    report.write(output, text)
    _log(f"written to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
