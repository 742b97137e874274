"""A fake EasyAppointments REST API v1 (source-apis.md §1.12), served over real HTTP.

State is kept as raw database rows (snake_case, like ``ea_appointments`` / ``ea_users``);
the API encodes them as EA 1.6 does. Failures are scripted per request: ``fail(...)``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PREFIX = "/index.php/api/v1"
TOKEN = "ea-api-token-0123456789"
ADMIN = ("admin", "pässword-1")
UNAUTHORISED = "You are not authorized to use the API."


def php_json(data: Any) -> bytes:
    """PHP json_encode's default flags: non-ASCII as \\uXXXX and ``/`` escaped."""
    return json.dumps(data, ensure_ascii=True).replace("/", "\\/").encode()


def appointment_api(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "book": row["book_datetime"],
        "start": row["start_datetime"],
        "end": row["end_datetime"],
        "hash": row["hash"],
        "color": "#7cbae8",
        "status": row["status"],
        "location": row.get("location"),
        "notes": row.get("notes", ""),
        "customerId": row["id_users_customer"],
        "providerId": row["id_users_provider"],
        "serviceId": row["id_services"],
        "meetingLink": None,
        "googleCalendarId": None,
        "caldavCalendarId": None,
    }


def user_api(row: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "firstName": row.get("first_name"),
        "lastName": row.get("last_name"),
        "email": row.get("email"),
        "phone": row.get("phone_number"),
        "address": None,
        "city": None,
        "zip": None,
        "notes": row.get("notes"),
        "timezone": row.get("timezone", "UTC"),
        "language": "english",
    }
    for n in range(1, 6):
        out[f"customField{n}"] = row.get(f"custom_field_{n}")
    out["ldapDn"] = None
    return out


def service_api(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "duration": 30, "price": "0.00"}


def raw_strings(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """``with=`` attaches raw rows whose values come back as strings (mysqli)."""
    if row is None:
        return None
    return {k: (None if v is None else str(v)) for k, v in row.items()}


@dataclass
class Failure:
    resource: str
    page: int | None
    kind: str  # "429" | "500" | "truncated" | "object" | "401"
    times: int = 1


@dataclass
class FakeEasyAppointments:
    base_url: str = ""
    token: str = TOKEN
    admin: tuple[str, str] = ADMIN
    honour_with: bool = True
    ignore_page: bool = False
    # Only id-only scans (``fields=...``) get the first page whatever ``page`` says.
    ignore_page_with_fields: bool = False
    appointments: dict[int, dict[str, Any]] = field(default_factory=dict)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    services: dict[int, dict[str, Any]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def reset(self) -> None:
        self.token, self.admin, self.honour_with, self.ignore_page = TOKEN, ADMIN, True, False
        self.ignore_page_with_fields = False
        for store in (self.appointments, self.users, self.services, self.failures, self.requests):
            store.clear()

    def fail(self, resource: str, kind: str, *, page: int | None = None, times: int = 1) -> None:
        self.failures.append(Failure(resource, page, kind, times))

    def delete_appointment(self, key: int) -> None:
        """EA's cancellation: the row is gone (no soft delete since migration 045)."""
        del self.appointments[key]

    def delete_user(self, key: int) -> None:
        """A customer or provider deleted: their appointments cascade (ON DELETE CASCADE)."""
        del self.users[key]
        for row in list(self.appointments.values()):
            if key in (row["id_users_customer"], row["id_users_provider"]):
                del self.appointments[row["id"]]

    def delete_service(self, key: int) -> None:
        del self.services[key]
        for row in list(self.appointments.values()):
            if row["id_services"] == key:
                del self.appointments[row["id"]]

    def pages_requested(self, resource: str = "appointments") -> list[dict[str, str]]:
        return [q for path, q in self.requests if path == resource]

    # ---- HTTP ------------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            return header[7:] == self.token
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return (user, password) == self.admin
        return False

    def _scripted(self, resource: str, page: int) -> Response | None:
        for failure in self.failures:
            if failure.resource == resource and failure.page in (None, page) and failure.times:
                failure.times -= 1
                if failure.kind == "429":  # bare: no body, no Retry-After
                    return Response(b"", status_code=429)
                if failure.kind == "500":
                    body = {"success": False, "message": "Something went wrong."}
                    return Response(php_json(body), 500, media_type="application/json")
                if failure.kind == "truncated":
                    return Response(b'[{"id": 1001, "bo', media_type="application/json")
                if failure.kind == "object":
                    return Response(php_json({"data": []}), media_type="application/json")
        return None

    async def handle(self, request: Request) -> Response:
        parts = request.path_params["path"].strip("/").split("/")
        query = dict(request.query_params)
        self.requests.append(("/".join(parts), query))
        if not self._authorised(request):
            return Response(
                UNAUTHORISED,
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="Easy!Appointments"'},
                media_type="text/html",
            )
        resource = parts[0]
        page = int(query.get("page", "1") or 1)
        scripted = self._scripted("/".join(parts), page)
        if scripted is not None:
            return scripted
        if len(parts) == 2:
            found = self._one(resource, parts[1])
            if found is None:
                return Response(b"", status_code=404)  # EA: 404 with an empty body
            return Response(php_json(found), media_type="application/json")
        rows = self._list(resource, query)
        if rows is None:
            return Response(b"", status_code=404)
        length = int(query.get("length", "20") or 20)
        fields = [f for f in query.get("fields", "").split(",") if f]
        ignore = self.ignore_page or (self.ignore_page_with_fields and bool(fields))
        start = 0 if ignore else (page - 1) * length
        rows = rows[start : start + length]
        if fields:  # applied per record after encoding
            rows = [{k: v for k, v in row.items() if k in fields} for row in rows]
        return Response(php_json(rows), media_type="application/json")

    def _one(self, resource: str, raw_id: str) -> dict[str, Any] | None:
        if not raw_id.isdigit():
            return None
        key = int(raw_id)
        if resource == "appointments" and key in self.appointments:
            return appointment_api(self.appointments[key])
        if resource == "customers" and self.users.get(key, {}).get("role") == "customer":
            return user_api(self.users[key])
        if resource == "providers" and self.users.get(key, {}).get("role") == "provider":
            return user_api(self.users[key])
        if resource == "services" and key in self.services:
            return service_api(self.services[key])
        return None

    def _list(self, resource: str, query: dict[str, str]) -> list[dict[str, Any]] | None:
        if resource == "appointments":
            rows = [r for r in self.appointments.values() if not r.get("is_unavailability")]
            if "q" not in query:  # EA drops the date filters when q is given
                if "from" in query:
                    rows = [r for r in rows if r["start_datetime"][:10] >= query["from"]]
                if "till" in query:
                    rows = [r for r in rows if r["end_datetime"][:10] <= query["till"]]
            encoded = []
            wanted = set(filter(None, query.get("with", "").split(",")))
            for row in rows:
                item = appointment_api(row)
                if self.honour_with:
                    if "customer" in wanted:
                        item["customer"] = raw_strings(self._user(row["id_users_customer"]))
                    if "service" in wanted:
                        item["service"] = raw_strings(self.services.get(row["id_services"]))
                    if "provider" in wanted:
                        item["provider"] = raw_strings(self._user(row["id_users_provider"]))
                encoded.append(item)
        elif resource in ("customers", "providers"):
            role = resource.removesuffix("s")
            encoded = [user_api(u) for u in self.users.values() if u["role"] == role]
        elif resource == "services":
            encoded = [service_api(s) for s in self.services.values()]
        else:
            return None
        return sort(encoded, query.get("sort"))

    def _user(self, key: int | None) -> dict[str, Any] | None:
        row = self.users.get(key) if key is not None else None
        return {k: v for k, v in row.items() if k != "role"} if row else None


def sort(rows: list[dict[str, Any]], spec: str | None) -> list[dict[str, Any]]:
    """EA's ``sort``: comma list, ``-`` descending; no sort = unspecified (we reverse)."""
    if not spec:
        return list(reversed(rows))
    for name in reversed([s.strip() for s in spec.split(",") if s.strip()]):
        desc = name.startswith("-")
        name = name.lstrip("+-")
        if rows and name in rows[0]:  # unknown fields are skipped (1.6)
            rows = sorted(rows, key=lambda r: (r[name] is None, r[name]), reverse=desc)
    return rows


class ServerThread:
    """uvicorn serving an app on a free port of 127.0.0.1, in a daemon thread."""

    def __init__(self, app: Starlette) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("fake server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve() -> Iterator[FakeEasyAppointments]:
    """Generator for a session fixture: one fake server, reset by each test."""
    fake = FakeEasyAppointments()
    app = Starlette(routes=[Route(PREFIX + "/{path:path}", fake.handle)])
    with ServerThread(app) as url:
        fake.base_url = f"{url}{PREFIX}/"
        yield fake


# ---- the default data set -------------------------------------------------------------------

PROVIDERS = {2: ("Marta", "Ruiz", "Europe/Madrid"), 5: ("Sam", "Lee", "America/New_York")}
SERVICES = {1: "Discovery call", 2: "Premium demo"}
CUSTOMERS: dict[int, tuple[str | None, str | None, str | None, str | None, str | None]] = {
    # id: first, last, email, phone, custom_field_1
    342: ("José", "Álvarez-Núñez", "jose.alvarez@example.com", "+34 611 222 333",
          "utm_source=Instagram&utm_campaign=Summer24"),
    343: ("Li", "Wei", "", "+34 611 222 444", None),  # phone only
    344: ("Ana", "García", "Ana.Garcia@Example.com", None, None),
    345: ("ana", "garcia", " ana.garcia@example.com ", None, None),  # case-variant duplicate
    346: ("No", "Contact", None, None, None),  # neither email nor phone
    347: ("芳", "王", "wang.fang@example.com", None, None),
    348: ("Seán", "O'Brien", "sean.obrien@example.com", None, None),
}  # fmt: skip
# id: customer, provider, service, book, start, minutes, status
APPOINTMENTS: list[tuple[int, int | None, int, int | None, str, str, int, str]] = [
    (1001, 342, 2, 1, "2024-06-03 17:41:09", "2024-06-12 10:30:00", 30, "Booked"),
    (1002, 343, 2, 1, "2024-06-03 18:02:55", "2024-06-13 16:00:00", 30, ""),
    (1003, 344, 5, 2, "2024-06-04 09:00:00", "2024-06-14 09:00:00", 60, "Confirmed"),
    (1004, 345, 5, 2, "2024-06-05 10:00:00", "2024-06-25 09:00:00", 60, "Booked"),
    (1005, 346, 2, 1, "2024-06-05 11:00:00", "2024-06-15 11:00:00", 30, "Booked"),
    (1006, 347, 2, 1, "2024-06-06 12:00:00", "2024-06-18 12:00:00", 30, "Cancelled"),
    (1008, 348, 2, 2, "2024-06-07 08:00:00", "2024-06-19 10:00:00", 30, "Draft"),
    (1009, 342, 2, 2, "2024-06-08 08:00:00", "2024-06-21 10:00:00", 30, "Rescheduled"),
    (1010, None, 2, None, "2024-06-08 09:00:00", "2024-06-22 09:00:00", 480, ""),  # unavailable
    (1011, 344, 2, 1, "2024-06-09 08:00:00", "2024-06-20 13:00:00", 30, "booked"),
    (1012, 347, 5, 1, "2024-06-10 08:00:00", "2024-06-20 08:00:00", 30, "Booked"),
    (1013, 348, 2, 1, "2024-05-20 08:00:00", "2024-06-01 10:00:00", 30, "CANCELLED"),
    (1014, 342, 2, 1, "2024-05-01 10:00:00", "2024-05-10 10:00:00", 30, "Booked"),
    (1015, 343, 2, 2, "2024-05-02 10:00:00", "2024-05-11 10:00:00", 30, "Booked"),
    (1016, 344, 5, 1, "2024-05-03 10:00:00", "2024-05-12 10:00:00", 30, "Booked"),
    (1017, 347, 2, 1, "2024-05-04 10:00:00", "2024-05-13 10:00:00", 30, "Booked"),
    (1018, 348, 5, 2, "2024-05-05 10:00:00", "2024-05-14 10:00:00", 30, "Booked"),
]


def end_of(start: str, minutes: int) -> str:
    from datetime import datetime, timedelta

    value = datetime.strptime(start, "%Y-%m-%d %H:%M:%S") + timedelta(minutes=minutes)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def appointment_row(
    key: int, customer: int | None, provider: int, service: int | None, book: str, start: str,
    minutes: int, status: str,
) -> dict[str, Any]:  # fmt: skip
    return {
        "id": key,
        "create_datetime": book,
        "update_datetime": book,
        "book_datetime": book,
        "start_datetime": start,
        "end_datetime": end_of(start, minutes),
        "location": None,
        "notes": "",
        "hash": f"h{key:011d}",
        "status": status,
        "is_unavailability": customer is None,
        "id_users_provider": provider,
        "id_users_customer": customer,
        "id_services": service,
    }


def seed(fake: FakeEasyAppointments) -> None:
    for key, (first, last, tz) in PROVIDERS.items():
        fake.users[key] = {
            "id": key, "first_name": first, "last_name": last, "email": f"{first.lower()}@ea.test",
            "phone_number": None, "timezone": tz, "id_roles": 2, "role": "provider",
        }  # fmt: skip
    for key, (first, last, email, phone, field_1) in CUSTOMERS.items():
        fake.users[key] = {
            "id": key, "first_name": first, "last_name": last, "email": email,
            "phone_number": phone, "mobile_number": None, "notes": "", "timezone": "UTC",
            "custom_field_1": field_1, "custom_field_2": None, "custom_field_3": None,
            "custom_field_4": None, "custom_field_5": None, "id_roles": 3, "role": "customer",
        }  # fmt: skip
    for key, name in SERVICES.items():
        fake.services[key] = {"id": key, "name": name, "duration": 30}
    for spec in APPOINTMENTS:
        fake.appointments[spec[0]] = appointment_row(*spec)
