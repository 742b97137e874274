"""A run's counters, and the helpers that keep secrets and emails out of its messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from signup_sync.events.service import IngestOutcome
from signup_sync.logs import mask_personal
from signup_sync.sources.secrets import MissingSecret, Secrets

MAX_MESSAGE_CHARS = 500
MAX_SKIP_REASONS = 50
# The skip reason of a record whose person was erased on request (POST /privacy/erase).
ERASED = "erased"

__all__ = ["ERASED", "MissingSecret", "Secrets", "Tally", "clean_message", "describe"]


def clean_message(text: str, secrets: Secrets | None = None) -> str:
    """One line, emails and phones masked, secrets this run resolved blanked, length capped."""
    for value in secrets.resolved if secrets else ():
        if len(value) >= 4:
            text = text.replace(value, "[redacted]")
    text = mask_personal(" ".join(text.split()))
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def describe(exc: BaseException, secrets: Secrets | None = None) -> str:
    text = str(exc)
    name = type(exc).__name__
    return clean_message(f"{name}: {text}" if text else name, secrets)


@dataclass(slots=True)
class Tally:
    """Per-record counters of a run (or of one page, merged into the run once it commits)."""

    max_messages: int = 20
    pages: int = 0
    processed: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: int = 0
    events_stored: int = 0
    events_changed: int = 0
    # Records with an event stored for the first time by this run: no webhook (nor anything
    # else) had delivered it. See docs/webhooks.md.
    recovered: int = 0
    messages: list[str] = field(default_factory=list)
    skip_reasons: dict[str, int] = field(default_factory=dict)
    stop_reason: str | None = None

    def skip(self, reason: str) -> None:
        self.skipped += 1
        reason = clean_message(reason)[:200] or "unspecified"
        if reason not in self.skip_reasons and len(self.skip_reasons) >= MAX_SKIP_REASONS:
            reason = "other reasons"
        self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + 1

    def error(self, message: str, *, stops: bool = False) -> None:
        """Count an error; the one that stopped the run is always kept in the capped list."""
        self.errors += 1
        if len(self.messages) < self.max_messages:
            self.messages.append(message)
        elif stops:
            self.messages[-1] = message
        if stops:
            self.stop_reason = message

    def count_outcomes(self, outcomes: Sequence[IngestOutcome], owners: Sequence[int]) -> None:
        """Fold a page's ingest outcomes in, per record (``owners[i]`` = record of event i)."""
        created: set[int] = set()
        touched: set[int] = set()
        stored: set[int] = set()
        erased: set[int] = set()
        for outcome, record in zip(outcomes, owners, strict=True):
            if outcome.status == "erased":
                # The person was erased on request: nothing written, the record is skipped.
                erased.add(record)
                continue
            if outcome.lead_created:
                created.add(record)
            if outcome.status == "accepted":
                self.events_stored += 1
                touched.add(record)
                stored.add(record)
            elif outcome.changed:
                self.events_changed += 1
                touched.add(record)
        self.created += len(created)
        self.updated += len(touched - created)
        self.recovered += len(stored)
        for _ in erased:
            self.skip(ERASED)

    def absorb(self, other: Tally) -> None:
        """Add another tally's per-record counters to this one, in place."""
        self.created += other.created
        self.updated += other.updated
        self.events_stored += other.events_stored
        self.events_changed += other.events_changed
        self.recovered += other.recovered
        for reason, count in other.skip_reasons.items():
            self.skipped += count
            self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + count

    def merged(self, other: Tally) -> Tally:
        out = Tally(max_messages=self.max_messages)
        for name in (
            "pages",
            "processed",
            "created",
            "updated",
            "skipped",
            "errors",
            "events_stored",
            "events_changed",
            "recovered",
        ):
            setattr(out, name, getattr(self, name) + getattr(other, name))
        out.messages = (self.messages + other.messages)[: self.max_messages]
        out.stop_reason = other.stop_reason or self.stop_reason
        out.skip_reasons = dict(self.skip_reasons)
        for reason, count in other.skip_reasons.items():
            out.skip_reasons[reason] = out.skip_reasons.get(reason, 0) + count
        return out

    @property
    def unchanged(self) -> int:
        return self.processed - self.created - self.updated - self.skipped

    def details(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "records_unchanged": self.unchanged,
            "events_stored": self.events_stored,
            "events_status_changed": self.events_changed,
            "recovered_by_poll": self.recovered,
            "skip_reasons": self.skip_reasons,
        }

    def log_values(self) -> dict[str, Any]:
        return {
            "leads_processed": self.processed,
            "leads_created": self.created,
            "leads_updated": self.updated,
            "leads_skipped": self.skipped,
            "errors_count": self.errors,
            "error_messages": list(self.messages),
            "details": self.details(),
        }

    def summary(self, status: str, *, dry_run: bool = False) -> str:
        text = (
            f"{self.processed} records read in {self.pages} pages: {self.created} new leads, "
            f"{self.updated} updated, {self.skipped} skipped, {self.unchanged} unchanged"
        )
        if dry_run:
            text = "dry run, nothing written; " + text
        if self.stop_reason:
            text += f"; stopped: {self.stop_reason}"
        return text
