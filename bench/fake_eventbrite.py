"""The Eventbrite fake (tests/fakes/eventbrite.py) as its own server process.

``python -m bench.fake_eventbrite PORT COUNT PAGE_SIZE``: attendees are generated lazily from
(seed, index), so a million costs no memory; uvicorn with uvloop and httptools.
"""

from __future__ import annotations

import sys

import uvicorn
from tests.fakes.eventbrite import FakeEventbrite

import bench  # noqa: F401 - puts this checkout (and tests/) on sys.path

ORGANIZATION_ID = "215487369012"
TOKEN = "eb-private-token-TEST-9f3a"  # noqa: S105 - the fake's fixed test token


def main(port: int, count: int, page_size: int) -> None:
    fake = FakeEventbrite(count=count, page_size=page_size)
    app = fake.app()

    async def health(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and scope["path"] == "/health":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await app(scope, receive, send)

    uvicorn.run(
        health, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
        log_level="warning", access_log=False, lifespan="off",
    )  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
