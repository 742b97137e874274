"""EasyAppointments read straight from its MySQL/MariaDB database (EA >= 1.5).

Changes come from a keyset cursor on ``(COALESCE(update_datetime, book_datetime), id)``,
re-read with a small overlap and capped at the run's start (both in the site's zone, the
zone EA writes those columns in). Time passing changes nothing in the table, so when
``infer_completed`` is on a run also re-reads appointments that started in the last
``rescan_days`` days. Customers are ``ea_users`` rows whose role has the slug ``customer``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from signup_sync.outbound import OutboundRefused
from signup_sync.sources.base import Page, SourceContext
from signup_sync.sources.easyappointments_config import (
    CUSTOMER_FIELDS,
    EasyAppointmentsConfig,
    secret,
    zone,
)
from signup_sync.sources.easyappointments_deletions import check_due, mysql_deletions
from signup_sync.sources.easyappointments_records import appointment_record
from signup_sync.sources.errors import FatalSourceError, RetriableSourceError

STAMP = "%Y-%m-%d %H:%M:%S"
EPOCH = datetime(1970, 1, 1)
_APPOINTMENT_COLUMNS = (
    "id", "hash", "book_datetime", "start_datetime", "end_datetime", "status", "create_datetime",
    "update_datetime", "is_unavailability", "id_users_provider", "id_users_customer",
    "id_services",
)  # fmt: skip
_USER_COLUMNS = ("id", "first_name", "last_name", "email", "phone_number", "mobile_number",
                 "timezone", "id_roles", *CUSTOMER_FIELDS)  # fmt: skip
_NOT_CUSTOMER_FIELDS = ("timezone", "create_datetime", "update_datetime")


class MysqlReader:
    """Pages of flat appointment records from EA's tables, with the cursor to store."""

    def __init__(self, ctx: SourceContext, config: EasyAppointmentsConfig) -> None:
        self.ctx, self.config = ctx, config
        password = None
        if config.mysql_password_env:
            password = secret(ctx, "mysql_password", config.mysql_password_env)
        self._url = URL.create(
            "mysql+aiomysql",
            username=config.mysql_user,
            password=password,
            host=config.mysql_host,
            port=config.mysql_port,
            database=config.mysql_database,
            query={"charset": "utf8mb4"},
        )
        self.engine: AsyncEngine | None = None
        prefix = config.table_prefix
        self.a = sa.table(f"{prefix}appointments", *map(sa.column, _APPOINTMENT_COLUMNS))
        users = sa.table(
            f"{prefix}users", *map(sa.column, (*_USER_COLUMNS, *_NOT_CUSTOMER_FIELDS[1:]))
        )
        self.c, self.p = users.alias("c"), users.alias("p")
        self.s = sa.table(f"{prefix}services", sa.column("id"), sa.column("name"))
        self.r = sa.table(f"{prefix}roles", sa.column("id"), sa.column("slug"))
        # CAST keeps COALESCE a DATETIME (a bare string literal would make it text).
        self.changed_at = sa.func.coalesce(
            self.a.c.update_datetime,
            self.a.c.book_datetime,
            self.a.c.create_datetime,
            sa.cast(sa.literal(EPOCH.strftime(STAMP)), sa.DateTime()),
        )
        # A customer's corrected email or name changes their row, not the appointment's.
        self.customer_changed_at = sa.func.coalesce(
            self.c.c.update_datetime,
            self.c.c.create_datetime,
            sa.cast(sa.literal(EPOCH.strftime(STAMP)), sa.DateTime()),
        )

    def _select(self) -> sa.Select[Any]:
        a, c, p, s, r = self.a, self.c, self.p, self.s, self.r
        customers = sa.select(r.c.id).where(r.c.slug == "customer").scalar_subquery()
        joined = (
            a.outerjoin(p, p.c.id == a.c.id_users_provider)
            .outerjoin(c, sa.and_(c.c.id == a.c.id_users_customer, c.c.id_roles.in_(customers)))
            .outerjoin(s, s.c.id == a.c.id_services)
        )
        customer_columns = [
            col.label(f"c_{col.name}") for col in c.c if col.name not in _NOT_CUSTOMER_FIELDS
        ]
        return (
            sa.select(
                *a.c,
                self.changed_at.label("changed_at"),
                s.c.name.label("service_name"),
                p.c.timezone.label("provider_timezone"),
                *customer_columns,
            )
            .select_from(joined)
            .where(a.c.is_unavailability == 0)
            .limit(self.config.mysql_batch)
        )

    async def _engine(self) -> AsyncEngine:
        """The engine, on an address the outbound policy allows (checked once per run)."""
        if self.engine is None:
            host, port = self.config.mysql_host, self.config.mysql_port
            try:
                addresses = await self.ctx.access.outbound.resolve(host, port)
            except OutboundRefused as exc:
                raise FatalSourceError(
                    f"EasyAppointments MySQL: config.mysql_host refused: {exc}"
                ) from None
            except OSError:
                raise RetriableSourceError(
                    "EasyAppointments MySQL: config.mysql_host does not resolve"
                ) from None
            # Connect to the address that was checked, not to the name (it may resolve anew).
            self.engine = create_async_engine(
                self._url.set(host=addresses[0]),
                poolclass=NullPool,
                connect_args={"connect_timeout": self.ctx.retry.timeout_seconds},
            )
        return self.engine

    async def _fetch(self, query: sa.Select[Any]) -> list[Any]:
        deadline = self.ctx.retry.request_deadline_seconds
        engine = await self._engine()
        try:
            async with asyncio.timeout(deadline), engine.connect() as conn:
                return list((await conn.execute(query)).mappings())
        except TimeoutError:
            raise RetriableSourceError(
                f"EasyAppointments MySQL: no answer within {deadline:g} s"
            ) from None
        except OperationalError as exc:
            code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
            if code in (1044, 1045, 1049):  # access denied / unknown database
                raise FatalSourceError(f"EasyAppointments MySQL: access refused ({code})") from None
            raise RetriableSourceError(f"EasyAppointments MySQL: {type(exc).__name__}") from None
        except DBAPIError as exc:
            # The server's own message is not repeated (it can quote data); its code says why.
            code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
            raise FatalSourceError(
                f"EasyAppointments MySQL: query failed ({type(exc.orig).__name__} {code})"
            ) from None

    def _record(self, row: Any) -> dict[str, Any]:
        customer = None
        if row["c_id"] is not None:
            customer = {name: row[f"c_{name}"] for name in _USER_COLUMNS if name != "timezone"}
        return appointment_record(
            row,
            customer=customer,
            service_name=row["service_name"],
            provider_timezone=row["provider_timezone"],
        )

    async def existing(self, ids: list[int]) -> set[int]:
        """Which of these appointment ids ``ea_appointments`` still holds."""
        query = sa.select(self.a.c.id).where(self.a.c.id.in_(ids))
        return {row["id"] for row in await self._fetch(query)}

    async def pages(self) -> AsyncIterator[Page]:
        state: dict[str, Any] = {}
        async for page in self._reads(state):
            yield page
        if not state:
            return  # a backfill leaves the cursor alone
        if check_due(self.ctx, self.config.deletion_check_hours, state):
            async for gone in mysql_deletions(self.ctx, self.existing, state):
                yield gone
        else:
            yield Page([], dict(state), "read complete")

    async def _customer_changes(
        self, state: dict[str, Any], cap: datetime, base: sa.Select[Any]
    ) -> AsyncIterator[Page]:
        """Appointments of customers changed since the last run (keyset on the customer's
        change time, customer id, appointment id)."""
        a, c, ts = self.a, self.c, self.customer_changed_at
        since = datetime.strptime(state["customers_changed_at"], STAMP)
        when = max(EPOCH, since - timedelta(seconds=self.config.mysql_overlap_seconds))
        mark: tuple[datetime, int, int] = (when, 0, 0)
        while True:
            at, cid, aid = mark
            query = base.where(
                c.c.id.is_not(None),
                ts <= cap,
                sa.or_(
                    ts > at,
                    sa.and_(ts == at, c.c.id > cid),
                    sa.and_(ts == at, c.c.id == cid, a.c.id > aid),
                ),
            ).order_by(ts, c.c.id, a.c.id)
            rows = await self._fetch(query.add_columns(ts.label("customer_changed_at")))
            if rows:
                last = rows[-1]
                mark = (last["customer_changed_at"], last["c_id"], last["id"])
            done = len(rows) < self.config.mysql_batch
            if done:
                state["customers_changed_at"] = cap.strftime(STAMP)
            label = f"customers changed after {mark[0].strftime(STAMP)} #{mark[1]}"
            yield Page([self._record(r) for r in rows], dict(state) if done else None, label)
            if done:
                return

    async def _reads(self, state: dict[str, Any]) -> AsyncIterator[Page]:
        """Changed appointments, then customers' changes, then the completion window;
        ``state`` ends as the cursor (left empty by a backfill)."""
        ctx, config, a = self.ctx, self.config, self.a
        site = zone(config.site_timezone)
        cap = ctx.run_started_at.astimezone(site).replace(tzinfo=None)
        base = self._select()
        if ctx.since is not None or ctx.until is not None:  # backfill: leave the cursor alone
            last_id = 0
            while True:
                query = base.where(a.c.id > last_id).order_by(a.c.id)
                if ctx.since is not None:
                    query = query.where(a.c.start_datetime >= ctx.since.date())
                if ctx.until is not None:
                    query = query.where(a.c.start_datetime < ctx.until.date() + timedelta(days=1))
                rows = await self._fetch(query)
                if rows:
                    last_id = rows[-1]["id"]
                yield Page([self._record(r) for r in rows], None, f"backfill after id {last_id}")
                if len(rows) < config.mysql_batch:
                    return
        stored = None if ctx.force else ctx.cursor
        state.update({"v": 1, "mode": "mysql", "phase": "changes",
                      "changed_at": EPOCH.strftime(STAMP), "id": 0})  # fmt: skip
        if stored and stored.get("mode") == "mysql":
            state.update(stored)
        # Rows committed late can carry an earlier update time: re-read a little overlap.
        since = datetime.strptime(state["changed_at"], STAMP)
        mark = (max(EPOCH, since - timedelta(seconds=config.mysql_overlap_seconds)), 0)
        if not stored:
            mark = (EPOCH - timedelta(seconds=1), 0)
        while True:
            when, last = mark
            ts = self.changed_at
            query = base.where(
                ts <= cap, sa.or_(ts > when, sa.and_(ts == when, a.c.id > last))
            ).order_by(ts, a.c.id)
            rows = await self._fetch(query)
            if rows:
                mark = (rows[-1]["changed_at"], rows[-1]["id"])
                state.update(changed_at=mark[0].strftime(STAMP), id=mark[1])
            label = f"changes after {state['changed_at']} #{state['id']}"
            yield Page([self._record(r) for r in rows], dict(state), label)
            if len(rows) < config.mysql_batch:
                break
        if not stored:
            # What was just read holds every customer as of now: follow changes from here,
            # and nothing stored before it can have been deleted.
            state["customers_changed_at"] = cap.strftime(STAMP)
            state["deletions_checked_at"] = ctx.run_started_at.isoformat()
        else:
            # A cursor from before customers were followed starts at its appointments' mark.
            state.setdefault("customers_changed_at", stored.get("changed_at", state["changed_at"]))
            async for page in self._customer_changes(state, cap, base):
                yield page
        if not stored or not config.infer_completed or config.rescan_days is None:
            return
        # Appointments that ended since the last run changed no row: re-read recent ones.
        if state["phase"] != "window":
            today = cap.date()
            start = today - timedelta(days=config.rescan_days)
            state.update(phase="window", window_from=start.isoformat(), window_last_id=0)
        window_from = datetime.fromisoformat(state["window_from"])
        while True:
            query = base.where(
                a.c.start_datetime >= window_from,
                a.c.start_datetime < datetime.combine(cap.date() + timedelta(days=1), EPOCH.time()),
                a.c.id > state["window_last_id"],
            ).order_by(a.c.id)
            rows = await self._fetch(query)
            if rows:
                state["window_last_id"] = rows[-1]["id"]
            done = len(rows) < config.mysql_batch
            if done:
                state["phase"] = "changes"
            label = f"window from {state['window_from']} after id {state['window_last_id']}"
            yield Page([self._record(r) for r in rows], dict(state), label)
            if done:
                return

    async def aclose(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
