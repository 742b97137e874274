"""A file server standing in for wherever an organiser keeps the Posh.VIP export.

Posh has no API (source-apis.md §4.1); a configured ``file_url`` is any HTTPS location that
serves the CSV. This is a real HTTP server on 127.0.0.1 (uvicorn in a thread, port 0) that
serves files, can fail a few times with 503 first, demand a Bearer token, or answer with an
HTML page (a login screen) instead of the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.serving import serve_app


@dataclass
class FileServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    failures_before_success: int = 0
    failure_status: int = 503  # what those failures answer (429 comes with Retry-After: 1)
    token: str | None = None
    html_instead: bool = False
    requests: list[str] = field(default_factory=list)
    auth_headers: list[str | None] = field(default_factory=list)


def build_app(state: FileServerState) -> Starlette:
    async def serve_file(request: Request) -> Response:
        name = request.path_params["name"]
        state.requests.append(name)
        state.auth_headers.append(request.headers.get("authorization"))
        if state.failures_before_success > 0:
            state.failures_before_success -= 1
            headers = {"Retry-After": "1"} if state.failure_status == 429 else None
            return PlainTextResponse("busy", status_code=state.failure_status, headers=headers)
        if state.token is not None and request.headers.get("authorization") != (
            f"Bearer {state.token}"
        ):
            return PlainTextResponse("unauthorised", status_code=401)
        if state.html_instead:
            return HTMLResponse("<html><body>Please sign in</body></html>")
        if name not in state.files:
            return PlainTextResponse("not found", status_code=404)
        return Response(state.files[name], media_type="text/csv; charset=utf-8")

    return Starlette(routes=[Route("/exports/{name}", serve_file)])


@contextmanager
def file_server(state: FileServerState) -> Iterator[str]:
    """Serve ``state`` on 127.0.0.1; yields the base URL."""
    with serve_app(build_app(state), "fake-posh-file") as url:
        yield url
