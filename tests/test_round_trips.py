"""One event costs a constant number of statements, whatever the table size."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from tests.helpers import SEED_EVENT


class StatementCounter:
    def __init__(self, app: FastAPI) -> None:
        self.count = 0
        event.listen(app.state.engine.sync_engine, "before_cursor_execute", self._on)

    def _on(self, *_: object) -> None:
        self.count += 1

    def reset(self) -> int:
        n, self.count = self.count, 0
        return n


async def test_event_and_conversion_cost_the_same_statements_at_any_size(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    counter = StatementCounter(app)

    async def cost_of_one(i: int) -> tuple[int, int]:
        counter.reset()
        await client.post(
            "/funnel/event",
            json={**SEED_EVENT, "email": f"p{i}@example.com", "external_id": f"x{i}"},
        )
        event_cost = counter.reset()
        await client.post("/funnel/conversion", json={"email": f"p{i}@example.com"})
        return event_cost, counter.reset()

    small = await cost_of_one(0)
    items = [
        {**SEED_EVENT, "email": f"bulk{i}@example.com", "external_id": f"b{i}"} for i in range(1000)
    ]
    for _ in range(3):
        await client.post("/funnel/events/batch", json={"events": items})
        items = [{**item, "external_id": item["external_id"] + "x"} for item in items]
    large = await cost_of_one(1)
    assert small == large
    # erasure check (key, then tombstones once someone was erased), duplicate lookup, lead
    # upsert, event insert (+ SQLite's lead pre-read)
    assert small[0] <= 5
