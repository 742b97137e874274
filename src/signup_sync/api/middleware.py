"""Pure-ASGI middleware: request id, body-size limit, the access log line and HTTP metrics."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signup_sync.logs import get_logger
from signup_sync.metrics import UNMATCHED_ROUTE, observe_request

log = get_logger("signup_sync.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


def _nul_parameter(scope: Scope) -> str | None:
    """The name of the first query parameter (or path) holding a NUL character, if any."""
    if "\x00" in scope.get("path", ""):
        return "path"
    raw = scope.get("query_string", b"")
    if b"%00" not in raw and b"\x00" not in raw:
        return None
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "") or "query"
    return None


def _json(status: int, body: dict[str, Any], request_id: str) -> list[Message]:
    payload = orjson.dumps(body)
    return [
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        },
        {"type": "http.response.body", "body": payload},
    ]


class RequestContextMiddleware:
    """Gives every request an id (echoed as X-Request-ID), caps its body, logs one line."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        nul = _nul_parameter(scope)
        if nul is not None:
            # PostgreSQL text cannot hold NUL: refuse it here for every route, naming the
            # parameter, rather than fail at a query (a 500, or a CSV cut mid-stream).
            body = {
                "error": "validation_error",
                "detail": f"{nul}: must not contain NUL (%00) characters",
                "errors": [{"field": nul, "message": "must not contain NUL (%00) characters"}],
            }
            for message in _json(422, body, request_id):
                await send(message)
            self._log(scope, 422, started)
            return

        too_large = {
            "error": "payload_too_large",
            "detail": f"Request body exceeds {self.max_body_bytes} bytes",
        }
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            for message in _json(413, too_large, request_id):
                await send(message)
            self._log(scope, 413, started)
            return

        if declared is None:
            # A streamed body with no length: read it (at most the limit) before the app runs,
            # since an error raised mid-read would reach the client as a 400, not a 413.
            buffered = await self._read_limited(receive)
            if buffered is None:
                for message in _json(413, too_large, request_id):
                    await send(message)
                self._log(scope, 413, started)
                return
            receive = _replay(buffered, receive)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = (b"x-request-id", request_id.encode())
                message["headers"] = [*message.get("headers", []), extra]
            await send(message)

        started_response = False

        async def send_tracked(message: Message) -> None:
            nonlocal started_response
            if message["type"] == "http.response.start":
                started_response = True
            await send_with_id(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            if started_response:
                raise  # half a response: only closing the connection tells the client
            # Answered here, not re-raised: Starlette's fallback would send text/plain without
            # the request id and re-raise, and uvicorn then drops the keep-alive connection.
            log.exception("unhandled_error", method=scope.get("method"), path=scope.get("path"))
            status = 500
            body = {
                "error": "internal_error",
                "detail": "An unexpected error occurred; it is logged under this request id",
                "request_id": request_id,
            }
            for message in _json(500, body, request_id):
                await send(message)
        finally:
            self._log(scope, status, started)
            structlog.contextvars.clear_contextvars()

    async def _read_limited(self, receive: Receive) -> bytes | None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return bytes(body)
            body.extend(message.get("body", b""))
            if len(body) > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                return bytes(body)

    @staticmethod
    def _log(scope: Scope, status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        method = str(scope.get("method", ""))
        log.info(
            "request",
            method=method,
            path=scope.get("path"),
            status=status,
            duration_ms=round(seconds * 1000, 2),
        )
        observe_request(method, route_template(scope), status, seconds)


def route_template(scope: Scope) -> str:
    """The matched route's template (``/leads/{lead_id}``), never the raw path: a label per
    id or per probed URL would grow without bound."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
