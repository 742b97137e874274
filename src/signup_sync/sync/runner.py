"""The sync engine: runs one source's connector, one transaction per page.

Entry point (stable: connector tests call it)::

    result = await run_sync(
        session_factory, source_id, SyncOptions(force=True),
        transport=httpx.MockTransport(handler),   # or None for real HTTP
        retry=RetryPolicy(wait_scale=0),          # instant retries in tests
        upload=csv_bytes,                         # file-based connectors (SourceContext.upload)
    )

``start_sync`` (take the lease, open the log) and ``execute`` (read the pages) are the
two halves of ``run_sync``; the API uses them apart to answer 202 before the run ends.

Per page: every record is mapped (``SkipRecord`` or any other mapping error counts the
record as skipped with its reason, never ends the run); then ONE transaction renews the
lease, ingests the events, stores ``Page.cursor`` on the source, adds the new leads to the
source's total and updates the log's counters, and commits. A heartbeat also renews the lease
between pages (a page may wait out a long Retry-After). A crash resumes from the last
committed page; ingestion is idempotent, so overlap never duplicates. On PostgreSQL two
pages are in flight: the next page is looked up while the current one writes and commits
(``_commit_page`` says how the order of commits is kept). An exception out of
``pages()`` ends the run ``partial`` (some pages landed) or ``failed``, reason in the log.
A run stops ``partial`` once it has committed ``SYNC_MAX_PAGES_PER_RUN`` pages and the
connector offers another; the cursor of the committed pages is kept, so the next run
continues there.

Counters are per record read: ``leads_processed`` = records read; ``leads_created`` =
records that brought a lead new to the database; ``leads_updated`` = records that added
an event to (or changed an event status of) a known lead; ``leads_skipped`` = records
that could not be mapped or whose person was erased on request (reason ``erased``); the
rest changed nothing. ``errors_count`` = errors that ended
the run plus records whose mapping raised something other than ``SkipRecord``.

``dry_run`` takes no lease and writes nothing, not even a log row (``sync_log_id`` is
None): each page is ingested in a transaction that is rolled back, and the people earlier
pages would have created are remembered (up to 100,000), so the counts are the ones a
real run would report.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from signup_sync import sources
from signup_sync.bounds import OUT_OF_RANGE
from signup_sync.db.session import unit_of_work
from signup_sync.db.types import utcnow
from signup_sync.events.records import EventRecord
from signup_sync.events.service import ingest
from signup_sync.logs import get_logger
from signup_sync.metrics import observe_sync
from signup_sync.settings import Settings
from signup_sync.sources.access import SourceAccess
from signup_sync.sources.base import Connector, Page, RetryPolicy, SourceConfig, SourceContext
from signup_sync.sources.errors import FatalSourceError, SkipRecord
from signup_sync.sync import lease
from signup_sync.sync import repository as repo
from signup_sync.sync.clean import check_time, clean_event
from signup_sync.sync.schemas import SourceSyncResult, SyncOptions
from signup_sync.sync.start import (
    Factory,
    NotDue,
    StartedSync,
    SyncAlreadyRunning,
    abandon,
    limits,
    retry_policy,
    start_sync,
)
from signup_sync.sync.stored import PageBarrier, StoredLookup
from signup_sync.sync.tally import Secrets, Tally, clean_message, describe

log = get_logger("signup_sync.sync")

PAGE_ATTEMPTS = 3
# SYNC_MAX_PAGES_PER_RUN when the caller passes no settings.
DEFAULT_MAX_PAGES = 10_000
# A dry run remembers this many new people across pages (beyond, they may count twice).
DRY_RUN_MEMORY = 100_000


# How long a page that already holds its locks waits for the previous page to finish before
# it rolls back and waits holding nothing (see _commit_page); normally milliseconds.
PREVIOUS_PAGE_PATIENCE = 2.0


class _WaitedTooLong(Exception):
    """The previous page is slow to finish while this one holds locks: start over."""


class LeaseLost(Exception):
    """Another run took this source's lease (ours expired): stop without writing."""


@dataclass(slots=True)
class SyncProgress:
    source_id: int
    source_name: str
    pages: int
    records: int
    elapsed_seconds: float
    label: str
    # Records the run will read, as far as the source has said (Page.total); None: unknown.
    total: int | None = None

    @property
    def records_per_second(self) -> float:
        return self.records / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0


ProgressFn = Callable[[SyncProgress], None]


def _config(connector: type[Connector], raw: dict[str, Any], source_id: int) -> SourceConfig:
    try:
        return connector.config_model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "config"
        raise FatalSourceError(
            f"invalid source config: config.{where}: {first.get('msg', 'invalid')}; "
            f"fix it with PATCH /sources/{source_id}"
        ) from None


def _map_page(
    connector: Connector, page: Page, source_id: int, tally: Tally, page_no: int
) -> tuple[list[EventRecord], list[int]]:
    """Map a page's records; returns the events and, for each, the index of its record."""
    events: list[EventRecord] = []
    owners: list[int] = []
    for index, raw in enumerate(page.records):
        try:
            mapped = list(connector.map_record(raw))
            for event in mapped:
                event.source_id = source_id
                check_time(clean_event(event))
                # Fail here, per record, rather than in ingestion, per page.
                _ = event.lead_key, event.stage
        except SkipRecord as exc:
            tally.skip(exc.reason)
            continue
        except OverflowError:  # a connector's own time parsing met a year-1 or year-9999 value
            tally.skip(f"a time {OUT_OF_RANGE}")
            continue
        except Exception as exc:
            tally.skip(f"mapping error: {type(exc).__name__}")
            tally.error(f"page {page_no}, record {index + 1}: {describe(exc)}")
            continue
        events.extend(mapped)
        owners.extend([index] * len(mapped))
    return events, owners


async def _commit_page(
    factory: Factory,
    run: StartedSync,
    mapped: MappedPage,
    before: Tally | asyncio.Task[Tally],
    ttl: float,
) -> Tally:
    """Ingest and commit one page; returns the run's tally with it.

    ``before`` is the run's tally up to the previous page, or the task still committing
    that page (PostgreSQL). Then this page's lookups (erasure lock, key, duplicate lookup)
    run meanwhile, on another connection; its writes wait until that page is done, and it
    commits only if that page committed (``await before`` re-raises its error, and this
    page rolls back). So pages commit in order, a crash leaves a prefix of the pages
    committed, and no page ever waits on a row lock of the page after it. An event that
    the previous page stored meanwhile is not seen by this page's lookup: its insert fails
    with a unique violation once that page commits, and the page runs again, as it does
    when a webhook stored an event concurrently. A page that waits on the previous one for
    more than ``PREVIOUS_PAGE_PATIENCE`` rolls back (releasing its locks), waits, and runs
    again: it never holds locks indefinitely on a wait PostgreSQL cannot see.
    """
    assert run.log_id is not None
    page_tally = mapped.tally

    async def previous_done() -> None:
        # This page may hold the erasure lock (shared) while it waits here. An erasure
        # queued behind it would make the previous page wait for that erasure if it ever
        # (re)takes the lock (a retry): a cycle PostgreSQL cannot see, through Python.
        # So wait only so long, then roll back (releasing everything) and run again.
        if isinstance(before, asyncio.Task) and not before.done():
            done, _ = await asyncio.wait([before], timeout=PREVIOUS_PAGE_PATIENCE)
            if not done:
                raise _WaitedTooLong

    attempt = 0
    while True:
        counted = Tally(max_messages=page_tally.max_messages)
        try:
            async with unit_of_work(factory) as session:
                if mapped.events:
                    outcomes = await ingest(session, mapped.events, before_writes=previous_done)
                    counted.count_outcomes(outcomes, mapped.owners)
                await previous_done()
                run_tally = before if isinstance(before, Tally) else await before
                # Renewing the lease and storing the cursor is one statement; a lease lost
                # meanwhile rolls the whole page back (the update takes the source's row lock,
                # so a run taking over waits for this commit or sees the lease still ours).
                # The log's counters ride along (one statement on PostgreSQL), written only
                # while the lease is ours.
                totals = run_tally.merged(page_tally.merged(counted))
                if not await lease.store_page(
                    session,
                    run.source_id,
                    owner=run.owner,
                    ttl_seconds=ttl,
                    cursor=mapped.page.cursor,
                    leads_created=counted.created,
                    log_id=run.log_id,
                    log_values=totals.log_values(),
                ):
                    raise LeaseLost
        except _WaitedTooLong:
            assert isinstance(before, asyncio.Task)
            await asyncio.wait([before])  # holding nothing now
            continue
        except IntegrityError:
            # A webhook, a request or the previous page stored one of these events
            # concurrently: re-run the page.
            attempt += 1
            if attempt == PAGE_ATTEMPTS:
                raise
            continue
        page_tally.absorb(counted)
        return run_tally.merged(page_tally)


async def _dry_page(
    factory: Factory,
    events: Sequence[EventRecord],
    owners: Sequence[int],
    page_tally: Tally,
    new_leads: set[tuple[str, str]],
) -> None:
    """Ingest and roll back; ``new_leads`` remembers who earlier pages would have created."""
    if not events:
        return
    async with factory() as session:
        try:
            outcomes = await ingest(session, events)
        finally:
            await session.rollback()
    adjusted = []
    for event, outcome in zip(events, outcomes, strict=True):
        if outcome.lead_created:
            if event.lead_key in new_leads:
                outcome = dataclasses.replace(outcome, lead_created=False)
            elif len(new_leads) < DRY_RUN_MEMORY:
                new_leads.add(event.lead_key)
        adjusted.append(outcome)
    page_tally.count_outcomes(adjusted, owners)


async def _heartbeat(factory: Factory, run: StartedSync, ttl: float) -> None:
    """Renew the lease between pages too: a page may wait out a long Retry-After."""
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            async with unit_of_work(factory) as session:
                if not await lease.renew(session, run.source_id, owner=run.owner, ttl_seconds=ttl):
                    return  # lost: the next page's renewal stops the run
        except Exception as exc:  # the database blinked; the page commit will tell
            log.warning("sync_heartbeat_failed", source_id=run.source_id, error=describe(exc))


@dataclass(slots=True)
class MappedPage:
    """A page read and mapped, not yet committed."""

    page: Page
    tally: Tally  # this page's own counts: pages=1, records read, skips
    events: list[EventRecord]
    owners: list[int]  # for each event, the index of its record in the page


class ReadAhead:
    """Reads and maps the next page while the current one is being committed: the source's
    wait, the next page's parsing and mapping (CPU) and the database's work on the current
    page overlap instead of adding up. One page ahead, so memory stays flat; a failure
    reading it surfaces after the current page is committed, as before."""

    def __init__(self, pages: AsyncIterator[Page], prepare: Callable[[Page], MappedPage]) -> None:
        self._pages = pages
        self._prepare = prepare
        self._next: asyncio.Future[MappedPage] | None = None

    def __aiter__(self) -> ReadAhead:
        return self

    async def _read(self) -> MappedPage:
        return self._prepare(await anext(self._pages))

    async def __anext__(self) -> MappedPage:
        pending = self._next or asyncio.ensure_future(self._read())
        self._next = None
        mapped = await pending  # StopAsyncIteration ends the loop
        self._next = asyncio.ensure_future(self._read())
        return mapped

    async def stop(self) -> None:
        """Cancel a read in flight, so that the connector's pages can be closed."""
        pending, self._next = self._next, None
        if pending is None:
            return
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending


async def _drain(committing: asyncio.Task[Tally] | None, tally: Tally) -> Tally:
    """Let a page still being committed finish: the run's tally with it, or without it
    when it failed (then it rolled back; the error that stopped the run is reported)."""
    if committing is None:
        return tally
    try:
        return await committing
    except Exception:
        return tally


async def _close(pages: AsyncIterator[Page] | None, connector: Connector | None) -> None:
    for closer in (getattr(pages, "aclose", None), getattr(connector, "aclose", None)):
        if closer is None:
            continue
        try:
            await closer()
        except Exception as exc:
            log.warning("connector_close_failed", error=describe(exc))


async def execute(
    factory: Factory,
    run: StartedSync,
    *,
    settings: Settings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
    upload: bytes | None = None,
    progress: ProgressFn | None = None,
) -> SourceSyncResult:
    """Read every page of a started run, commit each, close the log, release the lease."""
    ttl, max_messages = limits(settings)
    max_pages = settings.sync_max_pages_per_run if settings else DEFAULT_MAX_PAGES
    tally = Tally(max_messages=max_messages)
    clock = time.monotonic()
    secrets: Secrets | None = None
    connector: Connector | None = None
    pages: AsyncIterator[Page] | None = None
    ahead: ReadAhead | None = None
    status = "success"
    new_leads: set[tuple[str, str]] = set()
    in_flight: asyncio.Task[Tally] | None = None  # the page being committed
    previous_page: Page | None = None
    limit = ""
    total: int | None = None

    def _progressed(now: Tally, page: Page | None) -> None:
        nonlocal total
        if page is not None and page.total is not None:
            total = page.total
        if progress is not None:
            progress(
                SyncProgress(
                    source_id=run.source_id,
                    source_name=run.source_name,
                    pages=now.pages,
                    records=now.processed,
                    elapsed_seconds=time.monotonic() - clock,
                    label=page.label if page is not None else "",
                    total=total,
                )
            )

    heartbeat = (
        None
        if run.log_id is None
        else asyncio.get_running_loop().create_task(_heartbeat(factory, run, ttl))
    )
    try:
        connector_cls = sources.REGISTRY.get(run.source_type)
        if connector_cls is None:
            raise FatalSourceError(
                f"no connector is registered for source type {run.source_type!r}"
            )
        config = _config(connector_cls, run.config, run.source_id)
        access = SourceAccess.from_settings(settings)
        secrets = access.secrets(config, run.secret_values)
        barrier = PageBarrier()
        ctx = SourceContext(
            source_id=run.source_id,
            source_type=run.source_type,
            name=run.source_name,
            config=config,
            secrets=secrets,
            cursor=None if run.options.force else run.cursor,
            run_started_at=run.started_at,
            since=run.options.since,
            until=run.options.until,
            force=run.options.force,
            retry=retry or retry_policy(settings),
            access=access,
            transport=transport,
            upload=upload,
            stored=StoredLookup(
                factory, source_id=run.source_id, source_type=run.source_type, barrier=barrier
            ),
        )
        connector = connector_cls(ctx)
        pages = connector.pages()
        mapper = connector
        read = 0

        def prepare(page: Page) -> MappedPage:
            nonlocal read
            read += 1
            barrier.handed_over()
            page_tally = Tally(max_messages=max_messages, pages=1, processed=len(page.records))
            events, owners = _map_page(mapper, page, run.source_id, page_tally, read)
            return MappedPage(page, page_tally, events, owners)

        ahead = ReadAhead(pages, prepare)
        # PostgreSQL: the next page's lookups run while a page commits (two pages in
        # flight, see _commit_page). SQLite has one connection and one writer.
        bind = factory.kw.get("bind")
        overlap = bind is not None and bind.dialect.name == "postgresql"
        started = 0
        while True:
            try:
                mapped = await anext(ahead)
            except StopAsyncIteration:
                break
            except asyncio.CancelledError:
                raise
            except BaseException:
                # Reading the next page failed (or the process is being stopped) while a
                # page commits: that page finishes first, as when pages went one by one.
                if in_flight is not None:
                    tally, in_flight = await _drain(in_flight, tally), None
                    _progressed(tally, previous_page)
                raise
            if started >= max_pages:
                # The page just read is not committed: the stored cursor is the last
                # committed page's, so the next run reads this page again and goes on.
                status = "partial"
                limit = (
                    f"page limit reached: stopped after {max_pages} pages "
                    "(SYNC_MAX_PAGES_PER_RUN); the next run continues from the last "
                    "committed page"
                )
                break
            started += 1
            if run.options.dry_run:
                await _dry_page(factory, mapped.events, mapped.owners, mapped.tally, new_leads)
                barrier.page_settled()
                tally = tally.merged(mapped.tally)
                _progressed(tally, mapped.page)
                continue
            committing = asyncio.ensure_future(
                _commit_page(factory, run, mapped, in_flight or tally, ttl)
            )
            committing.add_done_callback(barrier.page_settled)
            previous, in_flight = in_flight, committing
            if previous is not None:
                tally = await previous  # its error stops the run; ``committing`` rolls back
                _progressed(tally, previous_page)
            previous_page = mapped.page
            if not overlap:
                in_flight = None
                tally = await committing
                _progressed(tally, mapped.page)
        if in_flight is not None:
            last, in_flight = in_flight, None
            tally = await last
            _progressed(tally, previous_page)
        if limit:
            tally.error(limit, stops=True)
    except LeaseLost:
        tally = await _drain(in_flight, tally)
        in_flight = None
        status = "partial" if tally.pages else "failed"
        tally.error("lease lost: another run took over this source; stopped", stops=True)
    except asyncio.CancelledError:
        if in_flight is not None:  # the page being committed rolls back
            in_flight.cancel()
            with contextlib.suppress(BaseException):
                await in_flight
            in_flight = None
        tally.error("interrupted: the sync was cancelled (the service is stopping)", stops=True)
        status = "partial" if tally.pages else "failed"
        await asyncio.shield(_finish(factory, run, tally, status, clock))
        raise
    except Exception as exc:
        # E.g. reading the next page failed while this one was committing: it finishes
        # first (as when pages were committed one by one), then the run stops.
        tally = await _drain(in_flight, tally)
        in_flight = None
        status = "partial" if tally.pages else "failed"
        tally.error(describe(exc, secrets), stops=True)
    finally:
        if in_flight is not None:
            # A page was still committing when the run stopped: it rolls back (the
            # stored cursor stays the last committed page's).
            in_flight.cancel()
            with contextlib.suppress(BaseException):
                await in_flight
        if ahead is not None:
            await ahead.stop()
        if heartbeat is not None:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        await _close(pages, connector)
    return await _finish(factory, run, tally, status, clock)


async def _finish(
    factory: Factory, run: StartedSync, tally: Tally, status: str, clock: float
) -> SourceSyncResult:
    completed = utcnow()
    duration = round(time.monotonic() - clock, 3)
    message = tally.summary(status, dry_run=run.options.dry_run)
    if run.log_id is not None:
        async with unit_of_work(factory) as session:
            await repo.update_running_log(
                session,
                run.log_id,
                {
                    **tally.log_values(),
                    "status": status,
                    "completed_at": completed,
                    "duration_seconds": duration,
                    "summary": message,
                },
            )
            # Only the lease holder may touch the source: a run that lost it leaves it alone.
            if await lease.release(session, run.source_id, owner=run.owner):
                await repo.finish_source(session, run.source_id, at=completed, status=status)
    if not run.options.dry_run:
        observe_sync(run.source_type, status, duration, tally.processed)
    log.info(
        "sync_finished",
        source_id=run.source_id,
        sync_log_id=run.log_id,
        status=status,
        records=tally.processed,
        created=tally.created,
        updated=tally.updated,
        skipped=tally.skipped,
        errors=tally.errors,
        dry_run=run.options.dry_run,
    )
    return SourceSyncResult(
        status=status,
        source_type=run.source_type,
        source_id=run.source_id,
        source_name=run.source_name,
        leads_processed=tally.processed,
        leads_created=tally.created,
        leads_updated=tally.updated,
        leads_skipped=tally.skipped,
        errors_count=tally.errors,
        error_messages=list(tally.messages),
        started_at=run.started_at,
        completed_at=completed,
        duration_seconds=duration,
        sync_log_id=run.log_id,
        dry_run=run.options.dry_run,
        pages=tally.pages,
        recovered_by_poll=tally.recovered,
        message=message,
        details=tally.details(),
    )


async def run_sync(
    factory: Factory,
    source_id: int,
    options: SyncOptions | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
    upload: bytes | None = None,
    settings: Settings | None = None,
    trigger: str = "api",
    progress: ProgressFn | None = None,
) -> SourceSyncResult:
    """Run one sync of one source to its end; see the module docstring."""
    run = await start_sync(factory, source_id, options, settings=settings, trigger=trigger)
    return await execute(
        factory,
        run,
        settings=settings,
        transport=transport,
        retry=retry,
        upload=upload,
        progress=progress,
    )


__all__ = [
    "Factory",
    "LeaseLost",
    "NotDue",
    "ProgressFn",
    "StartedSync",
    "SyncAlreadyRunning",
    "SyncOptions",
    "SyncProgress",
    "abandon",
    "clean_message",
    "execute",
    "run_sync",
    "start_sync",
]
