"""Load soak: 64 connections of events against a real server on PostgreSQL while a sync runs.

    python -m tests.soak.soak --duration 60            # the full soak (about 90 s in all)
    python -m tests.soak.soak --duration 60 --report soak.json

Steps: a fresh PostgreSQL database (dropped at the end) from SIGNUP_SYNC_TEST_PG_URL; the
service as a subprocess (``signup-sync serve``); a fake Eventbrite on 127.0.0.1 whose pages
are slowed so that syncs run the whole time; a warm-up (load + a sync), RSS measured at rest;
the soak (load for ``--duration`` seconds from a separate process, syncs back to back), RSS
measured at rest again. Then every acknowledged event is looked up in the database.

A soak passes when: every 2xx-acknowledged event is stored exactly once, every invalid body
got a 4xx, nothing got a 5xx or a transport error, every sync succeeded, and the server's
RSS after the run is within ``--rss-tolerance`` (10%) of its RSS after the warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import PG_URL, TOKEN, _create_database, _drop_database, _migrate, _with_database
from tests.fakes.eventbrite import TOKEN as EB_TOKEN
from tests.fakes.eventbrite import FakeEventbrite, Switch, serve
from tests.faults.support import TOKEN_ENV, eventbrite_config
from tests.server import run_server

ROOT = Path(__file__).resolve().parents[2]
ATTENDEES = 2_000  # 40 pages a sync
PAGE_DELAY = 0.05  # seconds: a sync lasts at least 2 s, so syncs overlap the load throughout


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SyncLoop:
    """Runs ``POST /sync/eventbrite`` (force, wait) back to back in a thread until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.results: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sync-loop", daemon=True)

    def __enter__(self) -> SyncLoop:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=300)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=300) as http:
            while not self._stop.is_set():
                r = http.post("/sync/eventbrite", json={"force_sync": True})
                body = r.json()
                self.results.append(
                    {
                        "http": r.status_code,
                        "status": body.get("status"),
                        "records": body.get("leads_processed"),
                        "seconds": body.get("duration_seconds"),
                    }
                )


def run_load(url: str, duration: float, connections: int, prefix: str, out: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    command = [sys.executable, "-m", "tests.soak.load", "--url", url, "--token", TOKEN]
    command += ["--duration", str(duration), "--connections", str(connections)]
    command += ["--prefix", prefix, "--out", str(out)]
    subprocess.run(command, env=env, cwd=ROOT, check=True, timeout=duration + 120)
    return dict(json.loads(out.read_text()))


async def stored_counts(database_url: str, prefix: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT external_id, count(*) AS n FROM funnel_events "
            "WHERE external_id LIKE $1 GROUP BY external_id",
            f"{prefix}%",
        )
    finally:
        await conn.close()
    return {row["external_id"]: int(row["n"]) for row in rows}


def soak(
    database_url: str,
    workdir: Path,
    *,
    duration: float,
    warmup: float,
    connections: int,
    attendees: int = ATTENDEES,
) -> dict[str, Any]:
    """Run one soak against a migrated, empty PostgreSQL database; return the report."""
    fake = FakeEventbrite(count=attendees, page_delay_seconds=PAGE_DELAY)
    env = {TOKEN_ENV: EB_TOKEN, "LOG_LEVEL": "warning"}
    with serve(Switch(fake)) as eb_url, run_server(database_url, workdir, extra_env=env) as server:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        added = httpx.post(
            f"{server.url}/sources",
            json={"source_type": "eventbrite", "name": "Soak", "config": eventbrite_config(eb_url)},
            headers=headers,
            timeout=30,
        )
        added.raise_for_status()
        pid = server.process.pid

        with SyncLoop(server.url) as warm_syncs:
            warm = run_load(server.url, warmup, connections, "warm", workdir / "warm.json")
        time.sleep(1)
        rss_warm = rss_kib(pid)

        cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
        with SyncLoop(server.url) as syncs:
            main = run_load(server.url, duration, connections, "soak", workdir / "soak.json")
        cpu = cpu_seconds(pid) - cpu_before
        wall = time.monotonic() - wall_before
        time.sleep(1)
        rss_after = rss_kib(pid)
        logs = server.logs()

    acked = set(warm.pop("acked_ids")) | set(main.pop("acked_ids"))
    counts = {
        **asyncio.run(stored_counts(database_url, "warm-")),
        **asyncio.run(stored_counts(database_url, "soak-")),
    }
    missing = sorted(i for i in acked if counts.get(i, 0) == 0)
    doubled = sorted(i for i, n in counts.items() if n != 1)
    return {
        "duration_seconds": duration,
        "connections": connections,
        "warmup": warm,
        "soak": main,
        "syncs": {"warmup": warm_syncs.results, "soak": syncs.results},
        "events_acked": len(acked),
        "events_stored": len(counts),
        "acked_missing": len(missing),
        "stored_more_than_once": len(doubled),
        "examples_missing": missing[:5],
        "server_cpu_seconds": round(cpu, 1),
        "server_cpu_share": round(cpu / wall, 2),  # of one core, over the soak
        "server_cpu_ms_per_request": round(1000 * cpu / max(1, main["requests"]), 1),
        "machine_load_average": os.getloadavg()[0],
        "rss_kib_after_warmup": rss_warm,
        "rss_kib_after_run": rss_after,
        "rss_change": round(rss_after / rss_warm - 1, 4),
        "server_tracebacks": logs.count("Traceback"),
    }


def failures(report: dict[str, Any], *, rss_tolerance: float) -> list[str]:
    """What the report says went wrong (empty: the soak passed)."""
    found = []
    for phase in ("warmup", "soak"):
        stats = report[phase]
        if stats["statuses"].get("5xx"):
            found.append(f"{phase}: {stats['statuses']['5xx']} responses were 5xx")
        if stats["unexpected"]:
            found.append(f"{phase}: unexpected answers, e.g. {stats['unexpected'][:3]}")
    if report["acked_missing"]:
        found.append(f"{report['acked_missing']} acknowledged events are not stored")
    if report["stored_more_than_once"]:
        found.append(f"{report['stored_more_than_once']} events are stored more than once")
    syncs = report["syncs"]["warmup"] + report["syncs"]["soak"]
    if not report["syncs"]["soak"] or any(s["status"] != "success" for s in syncs):
        found.append(f"syncs did not all succeed: {syncs}")
    if report["rss_change"] > rss_tolerance:
        found.append(f"RSS grew {report['rss_change']:.1%} (more than {rss_tolerance:.0%})")
    if report["server_tracebacks"]:
        found.append("the server logged tracebacks")
    return found


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"signup_sync_soak_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(name))
    try:
        url = _with_database(PG_URL, name)
        asyncio.run(_migrate(url))
        yield url
    finally:
        asyncio.run(_drop_database(name))


def main() -> None:
    parser = argparse.ArgumentParser(description="Load soak against PostgreSQL.")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of warm-up load")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rss-tolerance", type=float, default=0.10)
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    args = parser.parse_args()
    with fresh_database() as url, tempfile.TemporaryDirectory() as tmp:
        report = soak(
            url,
            Path(tmp),
            duration=args.duration,
            warmup=args.warmup,
            connections=args.connections,
        )
    text = json.dumps(report, indent=2)
    if args.report:
        args.report.write_text(text)
    print(text)
    problems = failures(report, rss_tolerance=args.rss_tolerance)
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    print("soak: " + ("FAILED" if problems else "passed"), file=sys.stderr)
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
