"""A fake Zoom (OAuth token endpoint + REST v2) speaking the shapes of source-apis.md §2.

Served over real HTTP on 127.0.0.1 by uvicorn in a background thread (``serve``). Tests
fill a ``FakeZoom`` with webinars, meetings, registrants, instances and participants, and
queue faults (429s, 5xx, expired tokens, malformed pages) with ``FakeZoom.fail``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.serving import serve_app

ACCOUNT_ID = "AbCdEfGhIjKlMnOpQrStUv"
CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret-do-not-log"


@dataclass
class Fault:
    path: str  # substring of the request path
    # 429 | 429-date | 429-daily | 500 | bad-json | bad-shape | expire-token | 401 | code300
    kind: str
    times: int = 1
    only_with_token: bool = False  # only requests carrying next_page_token
    retry_after: str | None = None


@dataclass
class FakeZoom:
    webinars: dict[str, dict[str, Any]] = field(default_factory=dict)
    meetings: dict[str, dict[str, Any]] = field(default_factory=dict)
    hosts: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # (kind, id) -> registrants; "_tracking_source_id" is the fake's own bookkeeping.
    registrants: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    tracking_sources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    instances: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    participants: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    tokens_issued: int = 0
    loop_tokens: bool = False
    # Host listings page by the deprecated page_number only (no next_page_token).
    numbered_listings: bool = False
    _page_tokens: dict[str, int] = field(default_factory=dict)
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def fail(self, path: str, kind: str, times: int = 1, **kwargs: Any) -> None:
        self.faults.append(Fault(path, kind, times, **kwargs))

    def requested(self, fragment: str) -> list[str]:
        return [r for r in self.requests if fragment in r]

    def add_webinar(self, host: str | None, webinar: dict[str, Any], kind: str = "webinar") -> None:
        store = self.webinars if kind == "webinar" else self.meetings
        store[str(webinar["id"])] = webinar
        if host is not None:
            self.hosts.setdefault(host, []).append((kind, str(webinar["id"])))

    # --- HTTP ---------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/token", self.token, methods=["POST"]),
                Route("/v2/{rest:path}", self.api, methods=["GET"]),
            ]
        )

    async def token(self, request: Request) -> Response:
        self.requests.append("POST /oauth/token")
        if (fault := self._fault(request, "/oauth/token")) is not None:
            return fault
        form = dict(await request.form())
        params = {**dict(request.query_params), **form}
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse(
                {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}, 400
            )
        if params.get("grant_type") != "account_credentials":
            return JSONResponse(
                {"reason": "Unsupported grant type", "error": "unsupported_grant_type"}, 400
            )
        if params.get("account_id") != ACCOUNT_ID:
            return JSONResponse(
                {"reason": "Invalid request : Bad account_id", "error": "invalid_request"}, 400
            )
        self.tokens_issued += 1
        token = f"fake-access-token-{self.tokens_issued}"
        self.tokens.add(token)
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": 3600,
                "scope": "webinar:read:admin meeting:read:admin user:read:admin",
                "api_url": "https://api.zoom.us",
            }
        )

    def _fault(self, request: Request, path: str) -> Response | None:
        for fault in self.faults:
            if fault.times <= 0 or fault.path not in path:
                continue
            if fault.only_with_token and not request.query_params.get("next_page_token"):
                continue
            fault.times -= 1
            return self._fault_response(fault)
        return None

    def _fault_response(self, fault: Fault) -> Response:
        limit = {
            "X-RateLimit-Category": "Medium",
            "X-RateLimit-Type": "QPS",
            "X-RateLimit-Limit": "20",
        }
        message = (
            "You have reached the maximum per-second rate limit for this API. Try again later."
        )
        if fault.kind == "429":
            return JSONResponse(
                {"code": 429, "message": message},
                429,
                headers={**limit, "Retry-After": fault.retry_after or "1"},
            )
        if fault.kind == "429-date":
            headers = {**limit, "Retry-After": fault.retry_after or "Wed, 21 Oct 2015 07:28:00 GMT"}
            return JSONResponse({"code": 429, "message": message}, 429, headers=headers)
        if fault.kind == "429-daily":
            headers = {**limit, "X-RateLimit-Type": "Daily-limit", "X-RateLimit-Remaining": "0"}
            if fault.retry_after:
                headers["Retry-After"] = fault.retry_after
            body = {
                "code": 429,
                "message": (
                    "You have reached the maximum daily rate limit for this API. "
                    "You may resume these requests at GMT 00:00:00."
                ),
            }
            return JSONResponse(body, 429, headers=headers)
        if fault.kind == "500":
            return JSONResponse({"code": 500, "message": "Internal error"}, 500)
        if fault.kind == "bad-json":
            return Response(b'{"registrants": [ {"id": "trunc', 200, media_type="application/json")
        if fault.kind == "bad-shape":
            return JSONResponse(
                {
                    "page_size": 30,
                    "next_page_token": "",
                    "registrants": "oops",
                    "participants": 7,
                    "webinars": None,
                    "meetings": None,
                }
            )
        if fault.kind in ("expire-token", "401"):
            self.tokens.clear()
            return JSONResponse({"code": 124, "message": "Access token is expired."}, 401)
        if fault.kind == "code300":
            return JSONResponse(
                {"code": 300, "message": "The next page token is invalid or expired."}, 400
            )
        raise AssertionError(fault.kind)

    async def api(self, request: Request) -> Response:
        path = "/" + request.path_params["rest"]
        query = str(request.query_params)
        self.requests.append(f"GET {path}" + (f"?{query}" if query else ""))
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.tokens:
            return JSONResponse({"code": 124, "message": "Invalid access token."}, 401)
        fault = self._fault(request, path)
        if fault is not None:
            return fault
        parts = path.strip("/").split("/")
        try:
            return self._route(request, parts)
        except KeyError as exc:
            return JSONResponse({"code": 3001, "message": f"Meeting does not exist: {exc}."}, 404)

    def _route(self, request: Request, parts: list[str]) -> Response:
        q = request.query_params
        head = parts[0]
        if head == "users" and len(parts) == 3 and parts[2] in ("webinars", "meetings"):
            kind = parts[2][:-1]
            store = self.webinars if kind == "webinar" else self.meetings
            rows = [store[i] for k, i in self.hosts.get(parts[1], []) if k == kind]
            if self.numbered_listings:
                return self._numbered(request, parts[2], rows)
            return self._page(request, parts[2], rows)
        if head in ("webinars", "meetings") and len(parts) == 2:
            store = self.webinars if head == "webinars" else self.meetings
            return JSONResponse(store[parts[1]])
        if head in ("webinars", "meetings") and parts[2:] == ["registrants"]:
            kind = head[:-1]
            status = q.get("status", "approved")  # Zoom's default: approved only
            rows = [r for r in self.registrants[(kind, parts[1])] if r["status"] == status]
            if source := q.get("tracking_source_id"):
                rows = [r for r in rows if r.get("_tracking_source_id") == source]
            rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
            return self._page(request, "registrants", rows)
        if head == "webinars" and parts[2:] == ["tracking_sources"]:
            sources = self.tracking_sources.get(parts[1], [])
            return JSONResponse({"total_records": len(sources), "tracking_sources": sources})
        if head in ("past_webinars", "past_meetings") and parts[-1] == "instances":
            kind = head.removeprefix("past_")
            store = self.webinars if kind == "webinars" else self.meetings
            if parts[1] not in store:
                raise KeyError(parts[1])
            return JSONResponse({kind: self.instances.get((kind[:-1], parts[1]), [])})
        if head in ("past_webinars", "past_meetings") and parts[-1] == "participants":
            raw = request.path_params["rest"].split("/", 1)[1].rsplit("/", 1)[0]
            uuid = unquote(raw) if "%" in raw else raw
            needs_double = uuid.startswith("/") or "//" in uuid
            if needs_double != ("%" in raw) or uuid not in self.participants:
                raise KeyError(uuid)
            return self._page(request, "participants", self.participants[uuid])
        return JSONResponse({"code": 300, "message": "Invalid path"}, 404)

    def _numbered(self, request: Request, key: str, rows: list[dict[str, Any]]) -> Response:
        size = max(1, min(int(request.query_params.get("page_size", "30")), 300))
        number = int(request.query_params.get("page_number", "1"))
        body = {
            "page_count": max(1, -(-len(rows) // size)),
            "page_number": number,
            "page_size": size,
            "total_records": len(rows),
            "next_page_token": "",
            key: rows[(number - 1) * size : number * size],
        }
        return JSONResponse(body)

    def _page(self, request: Request, key: str, rows: list[dict[str, Any]]) -> Response:
        q = request.query_params
        size = max(1, min(int(q.get("page_size", "30")), 300))
        token = q.get("next_page_token")
        start = 0
        if token:
            if token not in self._page_tokens:
                return JSONResponse(
                    {"code": 300, "message": "The next page token is invalid or expired."}, 400
                )
            start = self._page_tokens[token]
        end = start + size
        following = ""
        if end < len(rows):
            following = "LOOPTOKEN" if self.loop_tokens else f"tok{next(self._counter)}x{end}"
            self._page_tokens[following] = end
        return JSONResponse(
            {
                "page_count": max(1, -(-len(rows) // size)),
                "page_size": size,
                "total_records": len(rows),
                "next_page_token": following,
                key: rows[start:end],
            }
        )


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1 on a free port in a thread; yield its base URL."""
    with serve_app(app, "fake-zoom") as url:
        yield url


def signed_webhook_headers(secret: str, timestamp: str, raw_body: bytes) -> dict[str, str]:
    """Headers Zoom sends with a webhook (source-apis.md §2.6), signed over the raw bytes."""
    message = b"v0:" + timestamp.encode() + b":" + raw_body
    signature = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return {
        "x-zm-signature": f"v0={signature}",
        "x-zm-request-timestamp": timestamp,
        "content-type": "application/json; charset=utf-8",
        "user-agent": "Zoom Marketplace/1.0a",
    }


# --- the standard scenario (numbers in tests/sources/test_zoom.py are computed from it) ---

HOST = "z8yBXksmTAyS5dRP0TUj1Q"
W1, W2, W3, M1 = "84512345678", "81122233344", "83300000001", "91234567890"
U1 = "Xy7q8JmXQ6KJ2y7f1c3kOw=="
I2A = "/AbCd//EfGh=="  # must be double-encoded in paths
I2B = "Qm9u+am91cg=="
M1_UUID = "mTgX9k2lQ3eZr6n8c1b0Aa=="


def registrant(
    rid: str, first: str, last: str, email: str, status: str, created: str, **extra: Any
) -> dict[str, Any]:
    """A registrant as the list returns it: optional fields are "" rather than absent."""
    row: dict[str, Any] = {
        "id": rid,
        "first_name": first,
        "last_name": last,
        "email": email,
        "address": "",
        "city": "",
        "country": "",
        "zip": "",
        "state": "",
        "phone": "",
        "industry": "",
        "org": "",
        "job_title": "",
        "purchasing_time_frame": "",
        "role_in_purchase_process": "",
        "no_of_employees": "",
        "comments": "",
        "custom_questions": [],
        "status": status,
        "create_time": created,
        "join_url": f"https://us06web.zoom.us/w/1?tk={rid}",
    }
    row.update(extra)
    return row


def participant(
    name: str, email: str, join: str, leave: str, *, registrant_id: str = "", **extra: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "",
        "name": name,
        "user_id": str(zlib.crc32(f"{name}{join}".encode())),
        "registrant_id": registrant_id,
        "user_email": email,
        "join_time": join,
        "leave_time": leave,
        "duration": 600,
        "failover": False,
        "status": "in_meeting",
        "internal_user": False,
    }
    row.update(extra)
    return row


def item(item_id: str, topic: str, kind_type: int, start: str, duration: int) -> dict[str, Any]:
    return {
        "uuid": f"uuid-{item_id}",
        "id": int(item_id),
        "host_id": HOST,
        "topic": topic,
        "type": kind_type,
        "start_time": start,
        "duration": duration,
        "timezone": "America/New_York",
        "created_at": "2024-05-20T09:12:33Z",
        "join_url": f"https://us06web.zoom.us/j/{item_id}",
        "agenda": "",
        "is_simulive": False,
    }


def standard_zoom() -> FakeZoom:
    """Three webinars of one host (one past, one recurring, one upcoming) and one meeting."""
    z = FakeZoom()
    z.add_webinar(HOST, item(W1, "Q3 Growth Webinar", 5, "2024-06-12T17:00:00Z", 60))
    z.add_webinar(HOST, item(W2, "Weekly Demo", 9, "2024-07-01T16:00:00Z", 30))
    z.add_webinar(HOST, item(W3, "Winter Launch", 5, "2027-01-15T18:00:00Z", 60))
    z.add_webinar(None, item(M1, "Onboarding Q&A", 2, "2024-06-20T15:00:00Z", 45), kind="meeting")
    z.tracking_sources[W1] = [
        {
            "id": "5516482804110",
            "source_name": "LinkedIn-Ad",
            "tracking_url": "https://us06web.zoom.us/webinar/register/5516482804110/WN_x",
            "visitor_count": 410,
            "registration_count": 1,
        },
        {
            "id": "5516482804111",
            "source_name": "newsletter",
            "tracking_url": "https://us06web.zoom.us/webinar/register/5516482804111/WN_x",
            "visitor_count": 95,
            "registration_count": 1,
        },
    ]
    z.registrants[("webinar", W1)] = [
        registrant(
            "8CeUCKjUQXaGdYbNpw0Z5A",
            "Ana",
            "Müller",
            "ana.muller@example.com",
            "approved",
            "2024-06-03T15:24:11Z",
            city="Madrid",
            country="ES",
            phone="+34 600 123 456",
            org="Acme Iberia",
            job_title="Growth Lead",
            custom_questions=[
                {"title": "How did you hear about us?", "value": "LinkedIn ad"},
                {"title": "utm_campaign", "value": "Q3-Growth"},
            ],
            _tracking_source_id="5516482804110",
        ),
        registrant(
            "qLm3Xo0bR8uH7s2dVbN9wQ",
            "Kenji",
            "",
            "KENJI.T@example.jp",
            "approved",
            "2024-06-04T08:02:47Z",
            _tracking_source_id="5516482804111",
        ),
        registrant(
            "Zk2dup0000000000000001",
            "Kenji",
            "Tanaka",
            " kenji.t@example.jp ",
            "approved",
            "2024-06-05T09:00:00Z",
        ),
        registrant(
            "NoMail00000000000000001", "Walk-in", "", "", "approved", "2024-06-06T10:00:00Z"
        ),
        registrant(
            "Lee0000000000000000001",
            "Lee",
            "Ørsted",
            "lee@example.org",
            "approved",
            "2024-06-07T10:00:00Z",
        ),
        registrant(
            "Pat0000000000000000001",
            "Pat",
            "Pending",
            "pat.pending@example.com",
            "pending",
            "2024-06-08T10:00:00Z",
        ),
        registrant(
            "Dee0000000000000000001",
            "Dee",
            "Nied",
            "dee.nied@example.com",
            "denied",
            "2024-06-09T10:00:00Z",
        ),
    ]
    z.registrants[("webinar", W2)] = [
        registrant(
            "Bob0000000000000000001",
            "Bob",
            "Ng",
            "bob@example.net",
            "approved",
            "2024-06-20T12:00:00Z",
        ),
    ]
    z.registrants[("webinar", W3)] = [
        registrant(
            "Zoe0000000000000000001",
            "Zoë",
            "Ames",
            "zoe@example.com",
            "approved",
            "2026-11-01T09:30:00Z",
        ),
    ]
    z.registrants[("meeting", M1)] = [
        registrant(
            "dQw4w9WgXcQ-1a2b3c4d5e",
            "Priya",
            "Raman",
            "priya.raman@example.in",
            "approved",
            "2024-06-05T11:15:00Z",
            city="Bengaluru",
            country="IN",
            participant_pin_code=482913,
        ),
    ]
    z.instances[("webinar", W1)] = [{"uuid": U1, "start_time": "2024-06-12T17:00:00Z"}]
    z.instances[("webinar", W2)] = [
        {"uuid": I2B, "start_time": "2024-07-08T16:00:00Z"},
        {"uuid": I2A, "start_time": "2024-07-01T16:00:00Z"},
    ]
    z.instances[("meeting", M1)] = [{"uuid": M1_UUID, "start_time": "2024-06-20T15:00:00Z"}]
    ana = "8CeUCKjUQXaGdYbNpw0Z5A"
    z.participants[U1] = [
        participant(
            "Ana Müller",
            "ana.muller@example.com",
            "2024-06-12T17:01:05Z",
            "2024-06-12T17:20:44Z",
            registrant_id=ana,
        ),
        participant("iPhone de Marta", "", "2024-06-12T17:05:31Z", "2024-06-12T17:09:12Z"),
        participant(
            "Ana Müller",
            "ana.muller@example.com",
            "2024-06-12T17:22:10Z",
            "2024-06-12T18:00:02Z",
            registrant_id=ana,
        ),
        participant(
            "Kenji",
            "KENJI.T@example.jp",
            "2024-06-12T17:03:00Z",
            "2024-06-12T17:50:00Z",
            registrant_id="qLm3Xo0bR8uH7s2dVbN9wQ",
        ),
        participant(
            "Host Person",
            "host@ourco.example",
            "2024-06-12T16:55:00Z",
            "2024-06-12T18:01:00Z",
            internal_user=True,
        ),
        participant(
            "Waiting Wendy",
            "wendy@example.com",
            "2024-06-12T17:00:30Z",
            "2024-06-12T17:02:00Z",
            status="in_waiting_room",
        ),
    ]
    z.participants[I2A] = [
        participant(
            "Bob Ng",
            "bob@example.net",
            "2024-07-01T16:02:00Z",
            "2024-07-01T16:30:00Z",
            registrant_id="Bob0000000000000000001",
        ),
        participant(
            "Ana", "ANA.MULLER@EXAMPLE.COM", "2024-07-01T16:05:00Z", "2024-07-01T16:25:00Z"
        ),
    ]
    z.participants[I2B] = [
        participant(
            "Bob Ng",
            "bob@example.net",
            "2024-07-08T16:01:00Z",
            "2024-07-08T16:05:00Z",
            registrant_id="Bob0000000000000000001",
        ),
        participant(
            "Bob Ng",
            "bob@example.net",
            "2024-07-08T16:10:00Z",
            "2024-07-08T16:15:00Z",
            registrant_id="Bob0000000000000000001",
        ),
        participant(
            "Bob Ng",
            "bob@example.net",
            "2024-07-08T16:20:00Z",
            "2024-07-08T16:30:00Z",
            registrant_id="Bob0000000000000000001",
        ),
    ]
    z.participants[M1_UUID] = [
        participant(
            "Priya Raman",
            "priya.raman@example.in",
            "2024-06-20T15:02:00Z",
            "2024-06-20T15:44:00Z",
            registrant_id="dQw4w9WgXcQ-1a2b3c4d5e",
        ),
    ]
    return z
