"""The inbox worker: claim due deliveries, build their events, ingest, settle.

Runs inside the service (a lifespan task, ``WEBHOOK_WORKER_ENABLED``) or as its own
process (``signup-sync worker``); both run ``process_due`` in a loop, and any number of
them may share one database (claims are atomic, see ``repository.claim_due``).

Per delivery: claim (short transaction; counts the attempt) -> build the events (may call
the source's API; no transaction open) -> ONE transaction settles the claim and ingests
the events, so a delivery is marked done exactly when its events are stored. A failure
retries with exponential back-off (``next_attempt_at``); after ``WEBHOOK_MAX_ATTEMPTS``
attempts, or at once for a delivery that can never succeed as it is, it is parked with
its error. A worker that dies holding a claim loses nothing: the claim expires
(``WEBHOOK_CLAIM_TTL_SECONDS``) and the delivery is claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signup_sync import metrics, sources
from signup_sync.bounds import OUT_OF_RANGE
from signup_sync.db.session import run_in_transaction, unit_of_work
from signup_sync.db.types import utcnow
from signup_sync.events.service import ingest
from signup_sync.logs import get_logger
from signup_sync.settings import Settings
from signup_sync.sources.access import SourceAccess
from signup_sync.sources.base import RetryPolicy
from signup_sync.sources.errors import FatalSourceError, SkipRecord
from signup_sync.sync.clean import check_time
from signup_sync.sync.stored import StoredLookup
from signup_sync.sync.tally import Secrets, describe
from signup_sync.webhooks import repository as repo
from signup_sync.webhooks.process import Built, Refused, build, context

log = get_logger("signup_sync.webhooks")

Factory = async_sessionmaker[AsyncSession]
BATCH = 10
MAX_IDS_IN_RESULT = 20


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    max_attempts: int = 8
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    claim_ttl_seconds: float = 300.0
    poll_interval_seconds: float = 2.0
    # Addresses, secret variables and stored values the fetches of thin deliveries may use.
    access: SourceAccess = field(default_factory=SourceAccess)

    @classmethod
    def from_settings(cls, settings: Settings | None) -> WorkerOptions:
        if settings is None:
            return cls()
        return cls(
            max_attempts=settings.webhook_max_attempts,
            retry_base_seconds=settings.webhook_retry_base_seconds,
            retry_max_seconds=settings.webhook_retry_max_seconds,
            claim_ttl_seconds=settings.webhook_claim_ttl_seconds,
            poll_interval_seconds=settings.webhook_poll_interval_seconds,
            access=SourceAccess.from_settings(settings),
        )

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: doubling from the base, capped, jittered."""
        doubling = float(2 ** max(attempts - 1, 0))
        seconds = min(self.retry_max_seconds, self.retry_base_seconds * doubling)
        return seconds * random.uniform(1.0, 1.25)  # noqa: S311 - jitter, not security


class _ClaimLost(Exception):
    """Another worker took this delivery over (our claim expired): write nothing."""


async def _build(
    factory: Factory,
    claim: repo.Claimed,
    transport: httpx.AsyncBaseTransport | None,
    retry: RetryPolicy | None,
    access: SourceAccess,
) -> tuple[Built, Secrets | None]:
    if claim.source_id is None:
        raise Refused("its source was deleted")
    async with factory() as session:
        source = await repo.get_source(session, claim.source_id)
    connector = sources.REGISTRY.get(claim.source_type)
    if source is None or connector is None:
        raise Refused("its source was deleted")
    try:
        config = connector.config_model.model_validate(source.config or {})
    except ValidationError:
        raise Refused(f"source {source.id} has an invalid config; fix it, then replay") from None
    stored = StoredLookup(factory, source_id=source.id, source_type=source.source_type)
    ctx = context(source, config, transport=transport, retry=retry, access=access, stored=stored)
    secrets = ctx.secrets if isinstance(ctx.secrets, Secrets) else None
    try:
        built = await build(claim.body, ctx)
    except SkipRecord as exc:
        return Built(notes=[f"skipped: {exc.reason}"]), secrets
    except OverflowError:  # a time at year 1 or 9999: retrying cannot help
        return Built(notes=[f"skipped: a time {OUT_OF_RANGE}"]), secrets
    kept = []
    for event in built.events:
        try:
            kept.append(check_time(event))
        except SkipRecord as exc:
            built.notes.append(f"skipped: {exc.reason}")
    built.events = kept
    for event in built.events:
        event.source_id = source.id
    return built, secrets


def _result(built: Built, outcomes: list[Any]) -> dict[str, Any]:
    return {
        "events": len(built.events),
        "stored": sum(1 for o in outcomes if o.status == "accepted"),
        "duplicates": sum(1 for o in outcomes if o.status == "duplicate"),
        "status_changed": sum(1 for o in outcomes if o.changed),
        "external_ids": sorted({e.external_id for e in built.events if e.external_id})[
            :MAX_IDS_IN_RESULT
        ],
        "notes": built.notes[:MAX_IDS_IN_RESULT],
    }


async def _settle_done(factory: Factory, claim: repo.Claimed, built: Built) -> dict[str, Any]:
    async def work(session: AsyncSession) -> dict[str, Any]:
        # The claim first: if it was lost, the ingestion below is rolled back with it.
        done = {"status": "done", "processed_at": utcnow(), "last_error": None}
        if not await repo.settle(session, claim, done):
            raise _ClaimLost
        outcomes = await ingest(session, built.events) if built.events else []
        result = _result(built, outcomes)
        if outcomes and all(o.status == "erased" for o in outcomes):
            # Every record is of a person erased on request: keep nothing of theirs, not
            # even the raw body (a redelivery is refused the same way).
            await repo.delete_delivery(session, claim.id)
            return {**result, "erased": len(outcomes)}
        await repo.set_result(session, claim.id, result)
        return result

    return await run_in_transaction(factory, work)


async def _settle_failed(
    factory: Factory, claim: repo.Claimed, error: str, *, park: bool, options: WorkerOptions
) -> str:
    now = utcnow()
    parked = park or claim.attempts >= options.max_attempts
    values: dict[str, Any] = {"status": "parked" if parked else "failed", "last_error": error}
    if not parked:
        values["next_attempt_at"] = now + timedelta(seconds=options.backoff(claim.attempts))
    async with unit_of_work(factory) as session:
        await repo.settle(session, claim, values)
    return str(values["status"])


async def _process_claim_inner(
    factory: Factory,
    claim: repo.Claimed,
    options: WorkerOptions,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> str:
    """Process one claimed delivery to its next status (done, failed or parked)."""
    secrets: Secrets | None = None
    try:
        built, secrets = await _build(factory, claim, transport, retry, options.access)
        result = await _settle_done(factory, claim, built)
    except _ClaimLost:
        log.warning("webhook_claim_lost", delivery_id=claim.id)
        return "lost"
    except asyncio.CancelledError:
        raise  # the claim expires and another worker (or the next start) takes it
    except (Refused, FatalSourceError) as exc:
        # Retrying cannot help (a refused URL, missing credentials): park, replay once fixed.
        status = await _settle_failed(
            factory, claim, describe(exc, secrets), park=True, options=options
        )
        log.warning("webhook_parked", delivery_id=claim.id, error=describe(exc, secrets))
        return status
    except Exception as exc:
        status = await _settle_failed(
            factory, claim, describe(exc, secrets), park=False, options=options
        )
        log.warning("webhook_failed", delivery_id=claim.id, status=status, attempt=claim.attempts)
        return status
    log.info("webhook_processed", delivery_id=claim.id, stored=result.get("stored"))
    return "done"


async def process_claim(
    factory: Factory,
    claim: repo.Claimed,
    options: WorkerOptions,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> str:
    """Process one claimed delivery; count its outcome for /metrics."""
    status = await _process_claim_inner(factory, claim, options, transport=transport, retry=retry)
    metrics.WEBHOOK_DELIVERIES.labels(claim.source_type, f"processed_{status}").inc()
    return status


async def process_due(
    factory: Factory,
    options: WorkerOptions | None = None,
    *,
    now: datetime | None = None,
    limit: int = BATCH,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> list[tuple[int, str]]:
    """One pass: claim up to ``limit`` due deliveries and process them; (id, status) each."""
    options = options or WorkerOptions()
    async with unit_of_work(factory) as session:
        claims = await repo.claim_due(
            session, now=now or utcnow(), ttl_seconds=options.claim_ttl_seconds, limit=limit
        )
    done: list[tuple[int, str]] = []
    try:
        for claim in claims:
            status = await process_claim(factory, claim, options, transport=transport, retry=retry)
            done.append((claim.id, status))
    except asyncio.CancelledError:
        # The service is stopping: hand back what this pass has not settled (no waiting
        # for the claims to expire). Whatever was half-done was rolled back.
        await asyncio.shield(_release(factory, claims[len(done) :]))
        raise
    return done


async def _release(factory: Factory, claims: list[repo.Claimed]) -> None:
    try:
        async with unit_of_work(factory) as session:
            for claim in claims:
                await repo.settle(session, claim, {"status": "pending"})
    except Exception as exc:  # the claims expire anyway
        log.warning("webhook_release_failed", error=describe(exc))


class WebhookWorker:
    """The loop: a pass, then sleep until the poll interval passes or a delivery arrives."""

    def __init__(
        self,
        factory: Factory,
        options: WorkerOptions,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.factory, self.options = factory, options
        self.transport, self.retry = transport, retry
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """A receiver stored a delivery: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                worked = await process_due(
                    self.factory, self.options, transport=self.transport, retry=self.retry
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database blinked: try again at the next poll
                log.error("webhook_worker_pass_failed", error=describe(exc))
                worked = []
            if len(worked) >= BATCH:
                continue  # more may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.options.poll_interval_seconds)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
