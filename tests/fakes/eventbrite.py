"""A fake Eventbrite v3 API (shared/source-apis.md §3) for connector tests and benchmarks.

Attendees are generated on demand from ``(seed, index)``: nothing is held per attendee except
explicit ``update()`` overrides, so a fake with 100,000 attendees costs no memory. Attendee
``i`` (0-based) follows fixed rules so tests can compute expectations by hand:

* created ``epoch + i minutes``, changed ``created + 30 s``; event ``events[i % len(events)]``;
* ``i % 29 == 5``: no email (the key is absent on even blocks, an empty string on odd ones);
* ``i % 31 == 7``: same person as attendee ``i - 1``, email in UPPER case (a case-variant
  duplicate); ``i % 7 == 3``: non-ASCII names (person-based);
* ``i % 19 == 6``: refunded (and cancelled); else ``i % 17 == 4``: cancelled;
* ``i % 5 == 0`` and not cancelled/refunded: checked in (barcode ``used``);
* affiliate ``"IG_Story_June"`` when ``i % 4 == 1``, ``"ebdssbdestsearch"`` when ``i % 4 == 2``.
* with ``phones=True`` (off by default), each person has a cell phone: ``phone_of(person)``.

Faults are queued with ``inject(kind, page=n)``: ``429`` (HIT_RATE_LIMIT + Retry-After),
``429_bare`` (no header), ``500``, ``bad_json``, ``malformed`` (valid JSON, wrong shape),
``loop`` (hands back the continuation it was given), and for fault-injection tests
``hang`` (never answers; returns only when the client gives up), ``redirect_loop`` (302 to
itself), ``huge`` (a 10 MB page), ``bad_utf8`` (a page whose bytes are not UTF-8).
``page_delay_seconds`` slows every attendee page, so a test can kill a sync mid-run.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.serving import serve_app

TOKEN = "eb-private-token-TEST-9f3a"
ORGANIZATION_ID = "215487369012"
EVENTS = (
    ("812345678901", "Summer Rooftop Sessions"),
    ("812345678902", "Café Tasting Nights — Sevilla"),
)
EPOCH = datetime(2024, 6, 1, tzinfo=UTC)
FIRST_NAMES = ("Ana", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo")
LAST_NAMES = ("Smith", "Jones", "Garcia", "Brown", "Taylor", "Wilson", "Martin", "Lee")
FIRST_NAMES_INTL = ("Zoë", "José", "Łukasz", "Søren", "Anaïs", "美咲")
LAST_NAMES_INTL = ("Müller", "Núñez", "Öztürk", "Dvořák", "O'Brien-Ñandú", "山田")
FAULT_KINDS = {
    "429",
    "429_bare",
    "500",
    "bad_json",
    "malformed",
    "loop",
    "hang",
    "redirect_loop",
    "huge",
    "bad_utf8",
}
HUGE_PAGE_BYTES = 10 * 1024 * 1024


def fmt(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error(status: int, code: str, description: str, **headers: str) -> Response:
    body = {"status_code": status, "error": code, "error_description": description}
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def ok(body: Any) -> Response:
    return Response(orjson.dumps(body), 200, media_type="application/json")


@dataclass
class Flags:
    email: str | None
    email_absent: bool
    first_name: str
    last_name: str
    cancelled: bool
    refunded: bool
    checked_in: bool
    affiliate: str | None


@dataclass
class Fault:
    kind: str
    page: int | None
    path: str | None
    times: int


@dataclass
class FakeEventbrite:
    count: int = 120
    seed: int = 7
    token: str = TOKEN
    organization_id: str = ORGANIZATION_ID
    events: tuple[tuple[str, str], ...] = EVENTS
    page_size: int = 50
    epoch: datetime = EPOCH
    rate_limit_per_hour: int | None = None
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    # (path, query params without the token); bounded so a long benchmark stays flat.
    requests: deque[tuple[str, dict[str, str]]] = field(
        default_factory=lambda: deque(maxlen=10_000)
    )
    token_generation: int = 0
    phones: bool = False
    # Seconds every attendee page waits before answering (0: none).
    page_delay_seconds: float = 0.0
    _calls: deque[float] = field(default_factory=deque)

    # --- data -------------------------------------------------------------------------------

    def attendee_id(self, i: int) -> str:
        return str(7_800_000_000 + i)

    def index_of(self, attendee_id: str) -> int | None:
        i = int(attendee_id) - 7_800_000_000 if attendee_id.isdigit() else -1
        return i if 0 <= i < self.count else None

    def event_of(self, i: int) -> tuple[str, str]:
        return self.events[i % len(self.events)]

    def flags(self, i: int) -> Flags:
        person = i - 1 if i % 31 == 7 else i
        rng = random.Random(f"{self.seed}:{person}")
        intl = person % 7 == 3
        first = rng.choice(FIRST_NAMES_INTL if intl else FIRST_NAMES)
        last = rng.choice(LAST_NAMES_INTL if intl else LAST_NAMES)
        email: str | None = f"Person{person:05d}@Example.com"
        if i % 31 == 7:
            email = f"PERSON{person:05d}@EXAMPLE.COM"
        if i % 29 == 5:
            email = None
        refunded = i % 19 == 6
        cancelled = refunded or i % 17 == 4
        affiliate = {1: "IG_Story_June", 2: "ebdssbdestsearch"}.get(i % 4)
        flags = Flags(
            email=email,
            email_absent=email is None and (i // 29) % 2 == 0,
            first_name=first,
            last_name=last,
            cancelled=cancelled,
            refunded=refunded,
            checked_in=i % 5 == 0 and not cancelled,
            affiliate=affiliate,
        )
        for name, value in self.overrides.get(i, {}).items():
            if hasattr(flags, name):
                setattr(flags, name, value)
        return flags

    @staticmethod
    def phone_of(person: int) -> str:
        """The person's cell phone as Eventbrite shows what buyers typed (two styles)."""
        if person % 2:
            return f"+44 20 7946 {person % 10_000:04d}"
        return f"+1 (305) 555-{person % 10_000:04d}"

    def person_of(self, i: int) -> int:
        return i - 1 if i % 31 == 7 else i

    def created(self, i: int) -> datetime:
        return self.epoch + timedelta(minutes=i)

    def changed(self, i: int) -> datetime:
        override = self.overrides.get(i, {}).get("changed")
        return override if override is not None else self.created(i) + timedelta(seconds=30)

    def update(self, i: int, **fields: Any) -> None:
        """Change attendee ``i`` (flags such as refunded=True, and its ``changed`` time)."""
        self.overrides.setdefault(i, {}).update(fields)

    def event_object(self, event_id: str, name: str) -> dict[str, Any]:
        return {
            "id": event_id,
            "name": {"text": name, "html": name},
            "start": {
                "timezone": "Europe/Madrid",
                "local": "2024-09-14T21:00:00",
                "utc": "2024-09-14T19:00:00Z",
            },
            "status": "live",
            "currency": "EUR",
            "organization_id": self.organization_id,
        }

    def attendee(self, i: int, *, expand_event: bool = False) -> dict[str, Any]:
        f = self.flags(i)
        aid = self.attendee_id(i)
        event_id, event_name = self.event_of(i)
        created, changed = fmt(self.created(i)), fmt(self.changed(i))
        profile: dict[str, Any] = {
            "first_name": f.first_name,
            "last_name": f.last_name,
            "name": f"{f.first_name} {f.last_name}",
            "addresses": {"home": {}, "ship": {}, "work": {}, "bill": {}, "fulfillment": {}},
        }
        if f.email is not None or not f.email_absent:
            profile["email"] = f.email or ""
        if self.phones:
            profile["cell_phone"] = self.phone_of(self.person_of(i))
        vip = i % 10 == 9
        minor = 6000 if vip else 2500
        barcode: dict[str, Any] = {
            "status": "used" if f.checked_in else "refunded" if f.refunded else "unused",
            "barcode": f"{aid}1234567001",
            "created": created,
            "changed": changed,
            "checkin_type": 0,
            "is_printed": False,
        }
        if f.checked_in:
            barcode["checkin_method"] = "scan"
        record: dict[str, Any] = {
            "team": None,
            "costs": {
                "gross": {
                    "display": f"€{minor / 100:.2f}",
                    "currency": "EUR",
                    "value": minor,
                    "major_value": f"{minor / 100:.2f}",
                }
            },
            "resource_uri": f"https://www.eventbriteapi.com/v3/events/{event_id}/attendees/{aid}/",
            "id": aid,
            "changed": changed,
            "created": created,
            "quantity": 1,
            "variant_id": None,
            "profile": profile,
            "barcodes": [barcode],
            "answers": [],
            "checked_in": f.checked_in,
            "cancelled": f.cancelled,
            "refunded": f.refunded,
            "affiliate": f.affiliate,
            "guestlist_id": None,
            "invited_by": None,
            "status": "Checked In"
            if f.checked_in
            else "Not Attending"
            if f.cancelled
            else "Attending",
            "ticket_class_name": "VIP" if vip else "General Admission",
            "delivery_method": "electronic",
            "event_id": event_id,
            "order_id": str(4_512_000_000 + i // 2),
            "ticket_class_id": "1987234412" if vip else "1987234411",
        }
        if expand_event:
            record["event"] = self.event_object(event_id, event_name)
        return record

    def matches(self, i: int, event_id: str | None, since: datetime | None, status: str) -> bool:
        if event_id is not None and self.event_of(i)[0] != event_id:
            return False
        if since is not None and self.changed(i) < since:
            return False
        if status:
            cancelled = self.flags(i).cancelled
            return cancelled if status == "not_attending" else not cancelled
        return True

    # --- faults and tokens --------------------------------------------------------------------

    def inject(
        self, kind: str, *, page: int | None = None, path: str | None = None, times: int = 1
    ) -> None:
        assert kind in FAULT_KINDS, kind
        self.faults.append(Fault(kind, page, path, times))

    def expire_tokens(self) -> None:
        """Continuation tokens handed out so far become invalid (400 BAD_CONTINUATION_TOKEN)."""
        self.token_generation += 1

    def _take_fault(self, page: int, path: str) -> str | None:
        for fault in self.faults:
            if fault.times > 0 and fault.page in (None, page) and (fault.path or "") in path:
                fault.times -= 1
                return fault.kind
        return None

    def _encode(self, state: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")

    def _decode(self, token: str) -> dict[str, Any] | None:
        try:
            state = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return None
        return state if isinstance(state, dict) else None

    # --- HTTP -----------------------------------------------------------------------------------

    def _gate(self, request: Request) -> Response | None:
        params = {k: v for k, v in request.query_params.items() if k != "token"}
        self.requests.append((request.url.path, params))
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else None
        given = given or request.query_params.get("token")
        if not given:
            return error(401, "NO_AUTH", "An OAuth token is required for this request.")
        if given != self.token:
            return error(401, "INVALID_AUTH", "The OAuth token you provided was invalid.")
        if self.rate_limit_per_hour is not None:
            now = time.monotonic()
            while self._calls and self._calls[0] < now - 3600:
                self._calls.popleft()
            if len(self._calls) >= self.rate_limit_per_hour:
                return error(
                    429,
                    "HIT_RATE_LIMIT",
                    "Hourly rate limit has been reached for this token. "
                    "Default rate limits are 2,000 calls per hour.",
                )
            self._calls.append(now)
        return None

    async def list_attendees(self, request: Request) -> Response:
        if (denied := self._gate(request)) is not None:
            return denied
        event_id = request.path_params.get("event_id")
        org = request.path_params.get("organization_id")
        if org is not None and org != self.organization_id:
            return error(404, "NOT_FOUND", "The organization you requested does not exist.")
        if event_id is not None and event_id not in {e for e, _ in self.events}:
            return error(404, "NOT_FOUND", "The event you requested does not exist.")
        q = request.query_params
        raw_since = q.get("changed_since", "")
        since = None
        if raw_since:
            try:
                since = datetime.strptime(raw_since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            except ValueError:
                return error(400, "ARGUMENTS_ERROR", "changed_since: not a valid datetime")
        status = q.get("status", "")
        expand = "event" in q.get("expand", "").split(",")
        scope = f"{org or ''}/{event_id or ''}/{raw_since}/{status}"
        start, page = 0, 1
        if q.get("continuation"):
            state = self._decode(q["continuation"])
            if (
                state is None
                or state.get("scope") != scope
                or state.get("gen") != self.token_generation
            ):
                return error(400, "BAD_CONTINUATION_TOKEN", "The continuation token is invalid.")
            start, page = int(state["i"]), int(state["p"])
            object_count = state.get("n")
        else:
            # Counted once per listing and carried in the continuation, like Eventbrite's own.
            object_count = sum(
                1 for i in range(self.count) if self.matches(i, event_id, since, status)
            )

        if self.page_delay_seconds > 0:
            await asyncio.sleep(self.page_delay_seconds)
        fault = self._take_fault(page, request.url.path)
        if fault in ("hang", "redirect_loop", "huge", "bad_utf8"):
            return await self._hostile(fault, request)
        if fault == "429":
            return error(
                429, "HIT_RATE_LIMIT", "Hourly rate limit reached.", **{"Retry-After": "2"}
            )
        if fault == "429_bare":
            return error(429, "HIT_RATE_LIMIT", "Hourly rate limit reached.")
        if fault == "500":
            return error(500, "INTERNAL_ERROR", "An internal error occurred.")
        if fault == "bad_json":
            return Response(b'{"pagination": {"has_more_items": tr', 200)
        if fault == "malformed":
            return ok({"attendees": "unavailable", "pagination": {"has_more_items": "maybe"}})

        found: list[dict[str, Any]] = []
        i = start
        while i < self.count and len(found) < self.page_size:
            if self.matches(i, event_id, since, status):
                found.append(self.attendee(i, expand_event=expand))
            i += 1
        while i < self.count and not self.matches(i, event_id, since, status):
            i += 1
        has_more = i < self.count
        pagination: dict[str, Any] = {
            "object_count": object_count,
            "page_number": page,
            "page_size": self.page_size,
            "has_more_items": has_more,
        }
        if has_more:
            pagination["continuation"] = self._encode(
                {
                    "scope": scope,
                    "i": i,
                    "p": page + 1,
                    "gen": self.token_generation,
                    "n": object_count,
                }
            )
            if fault == "loop" and q.get("continuation"):
                pagination["continuation"] = q["continuation"]
        return ok({"pagination": pagination, "attendees": found})

    async def _hostile(self, fault: str, request: Request) -> Response:
        if fault == "hang":
            # Accept the request and never answer; end only once the client has gone.
            while (await request.receive())["type"] != "http.disconnect":
                pass
            return Response(b"", 504)
        if fault == "redirect_loop":
            return Response(b"", 302, {"Location": str(request.url)})
        if fault == "huge":
            padding = "x" * HUGE_PAGE_BYTES
            body = {"pagination": {"has_more_items": False}, "attendees": [], "padding": padding}
            return ok(body)
        # Structurally a page, but one name holds bytes that are not UTF-8.
        raw = orjson.dumps({"pagination": {"has_more_items": False}, "attendees": [{"id": "@"}]})
        return Response(raw.replace(b'"@"', b'"\xff\xfe\xfd"'), 200, media_type="application/json")

    async def get_attendee(self, request: Request) -> Response:
        if (denied := self._gate(request)) is not None:
            return denied
        i = self.index_of(request.path_params["attendee_id"])
        if i is None or self.event_of(i)[0] != request.path_params["event_id"]:
            return error(404, "NOT_FOUND", "The attendee you requested does not exist.")
        expand = "event" in request.query_params.get("expand", "").split(",")
        return ok(self.attendee(i, expand_event=expand))

    def order_id(self, i: int) -> str:
        return str(4_512_000_000 + i // 2)

    async def get_order(self, request: Request) -> Response:
        """``GET /v3/orders/{id}/``: attendees ``2k`` and ``2k+1`` form order ``k``.

        ``expand`` understands ``attendees``, ``attendees.event`` and ``event`` (the order's
        event: its first attendee's).
        """
        if (denied := self._gate(request)) is not None:
            return denied
        raw = request.path_params["order_id"]
        k = int(raw) - 4_512_000_000 if raw.isdigit() else -1
        members = [i for i in (2 * k, 2 * k + 1) if k >= 0 and 0 <= i < self.count]
        if not members:
            return error(404, "NOT_FOUND", "The order you requested does not exist.")
        expand = set(request.query_params.get("expand", "").split(","))
        first = members[0]
        f = self.flags(first)
        event_id, event_name = self.event_of(first)
        order: dict[str, Any] = {
            "id": raw,
            "created": fmt(self.created(first)),
            "changed": fmt(self.changed(first)),
            "name": f"{f.first_name} {f.last_name}",
            "first_name": f.first_name,
            "last_name": f.last_name,
            "email": f.email or "",
            "status": "refunded" if f.refunded else "placed",
            "event_id": event_id,
            "resource_uri": f"https://www.eventbriteapi.com/v3/orders/{raw}/",
        }
        if "attendees" in expand:
            nested = "attendees.event" in expand
            order["attendees"] = [self.attendee(i, expand_event=nested) for i in members]
        if "event" in expand:
            order["event"] = self.event_object(event_id, event_name)
        return ok(order)

    async def list_events(self, request: Request) -> Response:
        if (denied := self._gate(request)) is not None:
            return denied
        if request.path_params["organization_id"] != self.organization_id:
            return error(404, "NOT_FOUND", "The organization you requested does not exist.")
        events = [self.event_object(e, name) for e, name in self.events]
        pagination = {"object_count": len(events), "page_number": 1, "page_size": 50}
        return ok({"pagination": {**pagination, "has_more_items": False}, "events": events})

    async def my_organizations(self, request: Request) -> Response:
        if (denied := self._gate(request)) is not None:
            return denied
        org = {"id": self.organization_id, "name": "Rooftop Collective", "vertical": "default"}
        pagination = {"page_number": 1, "page_size": 50, "has_more_items": False}
        return ok({"pagination": pagination, "organizations": [org]})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v3/users/me/organizations/", self.my_organizations),
                Route("/v3/organizations/{organization_id}/events/", self.list_events),
                Route("/v3/organizations/{organization_id}/attendees/", self.list_attendees),
                Route("/v3/events/{event_id}/attendees/", self.list_attendees),
                Route("/v3/events/{event_id}/attendees/{attendee_id}/", self.get_attendee),
                Route("/v3/orders/{order_id}/", self.get_order),
            ]
        )

    def transport(self) -> httpx.ASGITransport:
        """The same app in-process, for ``SourceContext.transport``."""
        return httpx.ASGITransport(app=self.app())


class Switch:
    """An ASGI app that serves whichever fake is current: one server, a fresh fake per test."""

    def __init__(self, fake: FakeEventbrite | None = None) -> None:
        self.fake = fake or FakeEventbrite()
        self._app = self.fake.app()

    def use(self, fake: FakeEventbrite) -> FakeEventbrite:
        self.fake, self._app = fake, fake.app()
        return fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app over real HTTP on 127.0.0.1 (a free port); yields the v3 base URL."""
    with serve_app(app, "fake-eventbrite") as url:
        yield f"{url}/v3/"
