"""A hostile listener on 127.0.0.1: records every request and answers what the test says.

Stands for "a host the attacker controls, or an internal service": tests check that the
service sends it nothing (no request, no token) and echoes nothing it answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.serving import serve_app

# What an internal file or service might hand back; must never reach an error message.
PASSWD = b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"


@dataclass
class Listener:
    body: bytes = PASSWD
    content_type: str = "text/csv"
    status: int = 200
    redirect_to: str | None = None
    seen: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        self.seen.append({"path": request.url.path, **dict(request.headers)})
        if self.redirect_to is not None:
            return Response(status_code=302, headers={"Location": self.redirect_to})
        return Response(self.body, status_code=self.status, media_type=self.content_type)


@contextmanager
def listening(listener: Listener) -> Iterator[str]:
    """Serve ``listener`` on 127.0.0.1; yields its base URL."""
    app = Starlette(routes=[Route("/{path:path}", listener.handle, methods=["GET", "POST"])])
    with serve_app(app, "listener") as base_url:
        yield base_url
