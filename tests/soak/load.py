"""The soak's load generator: a fixed number of connections posting events for a fixed time.

Run as its own process (``python -m tests.soak.load --url ... --out result.json``) so the
client's CPU is not the server's. Every worker loops until the deadline, choosing by a
seeded RNG: 5% invalid bodies (expect a 4xx), 5% re-sends of an acknowledged request
(expect 200 "duplicate"), the rest new single events (70%) and batches of 10 (20%).
Each event has a unique ``external_id``, so the database can be checked event by event.
Only 127.0.0.1 is ever addressed; the run is bounded in time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

BATCH = 10
EMAILS = 5_000  # leads are shared between requests: concurrent writers meet on the same rows
INVALID = (
    ("not_json", b'{"email": "a@example.com", "source_type": '),
    ("no_email", {"source_type": "manual", "event_type": "lead_captured"}),
    (
        "bad_email",
        {"email": "not-an-email", "source_type": "manual", "event_type": "lead_captured"},
    ),
    (
        "bad_type",
        {"email": "x@example.com", "source_type": "myspace", "event_type": "lead_captured"},
    ),
    ("batch_not_list", {"events": {"email": "x@example.com"}}),
)


@dataclass
class Sent:
    path: str
    body: dict[str, Any]
    ids: list[str]


@dataclass
class Stats:
    statuses: Counter[str] = field(default_factory=Counter)
    acked: set[str] = field(default_factory=set)
    acked_requests: list[Sent] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    duplicates_sent: int = 0
    invalid_sent: int = 0
    events_sent: int = 0

    def bad(self, what: str) -> None:
        self.statuses["unexpected"] += 1
        if len(self.unexpected) < 20:
            self.unexpected.append(what)


def event(prefix: str, n: int, rng: random.Random) -> dict[str, Any]:
    return {
        "email": f"soak{rng.randrange(EMAILS)}@example.com",
        "source_type": rng.choice(("manual", "referral", "direct_signup")),
        "event_type": "lead_captured",
        "external_id": f"{prefix}-{n}",
        "utm_source": rng.choice(("newsletter", "google", None)),
    }


async def worker(
    http: httpx.AsyncClient, index: int, prefix: str, deadline: float, seed: int, stats: Stats
) -> None:
    rng = random.Random(f"{seed}:{index}")
    n = 0
    while time.monotonic() < deadline:
        roll = rng.random()
        started = time.monotonic()
        stats.requests += 1
        try:
            if roll < 0.05:
                await send_invalid(http, rng, stats)
            elif roll < 0.10 and stats.acked_requests:
                await send_duplicate(http, rng.choice(stats.acked_requests), stats)
            elif roll < 0.80:
                n += 1
                body = event(f"{prefix}-{index}", n, rng)
                await send_new(http, Sent("/funnel/event", body, [body["external_id"]]), stats)
            else:
                events = []
                for _ in range(BATCH):
                    n += 1
                    events.append(event(f"{prefix}-{index}", n, rng))
                ids = [e["external_id"] for e in events]
                await send_new(http, Sent("/funnel/events/batch", {"events": events}, ids), stats)
        except httpx.HTTPError as exc:
            stats.statuses["transport_error"] += 1
            stats.bad(f"transport error: {type(exc).__name__}")
        stats.latencies.append(time.monotonic() - started)


def count_status(stats: Stats, status: int) -> None:
    stats.statuses[f"{status // 100}xx"] += 1


async def send_new(http: httpx.AsyncClient, sent: Sent, stats: Stats) -> None:
    stats.events_sent += len(sent.ids)
    r = await http.post(sent.path, json=sent.body)
    count_status(stats, r.status_code)
    if sent.path == "/funnel/event":
        acked = r.status_code == 201
    else:
        acked = r.status_code == 200 and r.json()["accepted"] == len(sent.ids)
    if not acked:
        stats.bad(f"new {sent.path}: {r.status_code} {r.text[:200]}")
        return
    stats.acked.update(sent.ids)
    if len(stats.acked_requests) < 10_000:
        stats.acked_requests.append(sent)


async def send_duplicate(http: httpx.AsyncClient, sent: Sent, stats: Stats) -> None:
    stats.duplicates_sent += 1
    r = await http.post(sent.path, json=sent.body)
    count_status(stats, r.status_code)
    if sent.path == "/funnel/event":
        ok = r.status_code == 200 and r.json()["duplicate"] is True
    else:
        ok = r.status_code == 200 and r.json()["duplicates"] == len(sent.ids)
    if not ok:
        stats.bad(f"duplicate {sent.path}: {r.status_code} {r.text[:200]}")


async def send_invalid(http: httpx.AsyncClient, rng: random.Random, stats: Stats) -> None:
    stats.invalid_sent += 1
    name, body = rng.choice(INVALID)
    path = "/funnel/events/batch" if name.startswith("batch") else "/funnel/event"
    if isinstance(body, bytes):
        headers = {"Content-Type": "application/json"}
        r = await http.post(path, content=body, headers=headers)
    else:
        r = await http.post(path, json=body)
    count_status(stats, r.status_code)
    if not 400 <= r.status_code < 500:
        stats.bad(f"invalid {name}: {r.status_code} {r.text[:200]}")


async def run(url: str, token: str, duration: float, connections: int, prefix: str) -> Stats:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"the load generator only addresses loopback, not {host}")
    stats = Stats()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + duration
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=httpx.Timeout(30)
    ) as http:
        await asyncio.gather(
            *(worker(http, i, prefix, deadline, 7, stats) for i in range(connections))
        )
    return stats


def summary(stats: Stats, duration: float) -> dict[str, Any]:
    latencies = sorted(stats.latencies) or [0.0]

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1)

    return {
        "requests": stats.requests,
        "requests_per_second": round(stats.requests / duration, 1),
        "statuses": dict(stats.statuses),
        "events_sent": stats.events_sent,
        "events_acked": len(stats.acked),
        "duplicates_sent": stats.duplicates_sent,
        "invalid_sent": stats.invalid_sent,
        "latency_ms": {"p50": pct(0.50), "p99": pct(0.99), "max": pct(1.0)},
        "unexpected": stats.unexpected,
        "acked_ids": sorted(stats.acked),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--prefix", default="soak")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    stats = asyncio.run(run(args.url, args.token, args.duration, args.connections, args.prefix))
    with open(args.out, "w") as fh:
        json.dump(summary(stats, args.duration), fh)


if __name__ == "__main__":
    main()
