"""Where personal data can live: every table of the schema, and what erasure does with it.

Every table of ``db.models.Base.metadata`` is listed, and in it every column that can hold
text (strings, JSON documents, raw bytes): whether it can hold a person's email, phone or a
raw payload carrying them, and how ``POST /privacy/erase`` deals with it.
``tests/test_privacy_registry.py`` fails when a table or such a column is missing here, so a
new table (or column) must be classified before it ships.

``erase`` of a column, applied wherever the column *carries* one of the erased identifiers
(the email in any case, the phone in any usual spelling; see ``privacy.matching``):

- ``delete_row``: the row is deleted (the row is about the person: their message, their
  delivery, their identity);
- ``scrub``: the identifier is replaced by ``[erased]`` in place (the row is someone else's,
  or a log line worth keeping);
- ``none``: nothing to do (the column cannot hold an identifier, or the person's rows are
  deleted whole by ``person_rows``).

``person_rows`` says how the person's own rows are found beyond that search (by lead id,
by tracking id, by external id); those rows go whole, every column with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Erase = Literal["none", "delete_row", "scrub"]


@dataclass(frozen=True, slots=True)
class ColumnRule:
    personal: bool
    erase: Erase
    why: str


@dataclass(frozen=True, slots=True)
class TableRule:
    person_rows: str | None
    columns: dict[str, ColumnRule]

    def searched(self) -> dict[str, Erase]:
        """Columns erasure searches for the identifiers, with what it does on a hit."""
        return {name: rule.erase for name, rule in self.columns.items() if rule.erase != "none"}


def _no(why: str) -> ColumnRule:
    return ColumnRule(personal=False, erase="none", why=why)


def _with_row(why: str) -> ColumnRule:
    """Personal, and only ever about the row's own person: goes with the person's rows."""
    return ColumnRule(personal=True, erase="none", why=why)


def _delete(why: str) -> ColumnRule:
    return ColumnRule(personal=True, erase="delete_row", why=why)


def _scrub(why: str) -> ColumnRule:
    return ColumnRule(personal=True, erase="scrub", why=why)


_CODE = "a fixed vocabulary value"
_UTM = "a campaign tag chosen by the marketer"
_ITEM = "a webinar, event or service id/name, not a person"
_CLICK = "an ad platform's click id"

REGISTRY: dict[str, TableRule] = {
    "funnel_leads": TableRule(
        person_rows="the erased leads (by email, E.164 phone or id)",
        columns={
            "email": _with_row("the person's normalised email"),
            "phone": _with_row("the phone as the source wrote it"),
            "phone_e164": _with_row("the phone in E.164"),
            "first_name": _with_row("the person's name"),
            "last_name": _with_row("the person's name"),
            "company": _with_row("the person's company"),
            "first_touch_source_type": _no(_CODE),
            "first_touch_utm_source": _no(_UTM),
            "first_touch_utm_medium": _no(_UTM),
            "first_touch_utm_campaign": _no(_UTM),
            "first_touch_channel": _no(_CODE),
            "first_touch_item": _no(_ITEM),
            "first_touch_item_name": _no(_ITEM),
        },
    ),
    "funnel_events": TableRule(
        person_rows="every event of an erased lead",
        columns={
            "source_type": _no(_CODE),
            "event_type": _no(_CODE),
            "status": _no(_CODE),
            "external_id": _with_row("the source's id of the record (may hash the email)"),
            "idempotency_key": _with_row("the sender's key of the request"),
            "utm_source": _no(_UTM),
            "utm_medium": _no(_UTM),
            "utm_campaign": _no(_UTM),
            "utm_term": _no(_UTM),
            "utm_content": _no(_UTM),
            "referrer": _scrub("a URL: its query may name anyone"),
            "landing_page": _scrub("a URL: its query may name anyone (?email=...)"),
            "gclid": _no(_CLICK),
            "fbclid": _no(_CLICK),
            "msclkid": _no(_CLICK),
            "channel": _no(_CODE),
            "metadata": _scrub("the source record's extra fields: may name another person"),
        },
    ),
    "funnel_conversions": TableRule(
        person_rows="every conversion of an erased lead",
        columns={
            "user_id": _with_row("the product's user id of the person"),
            "conversion_type": _no(_CODE),
            "currency": _no("an ISO currency code"),
            "first_touch_source_type": _no(_CODE),
            "last_touch_source_type": _no(_CODE),
            "attribution": _no("touch ids, sources, times and credits of the frozen models"),
        },
    ),
    "funnel_attribution_credits": TableRule(
        person_rows="every credit of an erased lead's conversions",
        columns={
            "model": _no(_CODE),
            "source_type": _no(_CODE),
            "channel": _no(_CODE),
            "utm_source": _no(_UTM),
            "utm_medium": _no(_UTM),
            "utm_campaign": _no(_UTM),
            "item": _no(_ITEM),
            "item_name": _no(_ITEM),
        },
    ),
    "funnel_sources": TableRule(
        person_rows=None,
        columns={
            "source_type": _no(_CODE),
            "name": _no("the operator's name for the source"),
            "schedule": _no("a cron expression"),
            "config": _no("the operator's settings: URLs, ids, variable names, no lead"),
            "cursor": _no("a paging position: times, ids, a file hash"),
            "last_sync_status": _no(_CODE),
            "lease_owner": _no("a process id"),
            "secret_values": _no("the source's API credentials, encrypted; no lead"),
        },
    ),
    "funnel_rate_counters": TableRule(
        person_rows=None,
        columns={
            "bucket": _no(
                "a write key's id with a truncated hash of a client address; no email or phone, "
                "and rows older than an hour are pruned"
            ),
        },
    ),
    "funnel_sync_logs": TableRule(
        person_rows=None,
        columns={
            "source_type": _no(_CODE),
            "source_name": _no("the operator's name for the source"),
            "status": _no(_CODE),
            "trigger": _no(_CODE),
            "error_messages": _scrub("messages about records: masked when written, scrubbed"),
            "summary": _scrub("a sentence about the run: masked when written, scrubbed"),
            "options": _no("the run's options: times and flags"),
            "details": _scrub("counters and skip reasons: masked when written, scrubbed"),
        },
    ),
    "funnel_webhook_inbox": TableRule(
        person_rows="deliveries whose stored result names an erased lead's events",
        columns={
            "source_type": _no(_CODE),
            "headers": _no("an allow-list: content type, user agent, timestamps, delivery ids"),
            "body": _delete("the raw delivery (bytes): the record as the source sent it"),
            "status": _no(_CODE),
            "last_error": _delete("why processing failed (masked when written)"),
            "dedupe_key": _no("a delivery id or a hash of the body"),
            "result": _delete("counts, external ids and notes of the processing"),
        },
    ),
    "privacy_hash_keys": TableRule(
        person_rows=None,
        columns={
            "secret": _no("the tombstones' key (a secret, not personal data)"),
            "fingerprint": _no("an HMAC of a constant"),
        },
    ),
    "privacy_tombstones": TableRule(
        person_rows=None,
        columns={
            "kind": _no(_CODE),
            "identifier_hash": _no("a keyed HMAC of the identifier, kept to refuse the person"),
        },
    ),
    "funnel_tracking_messages": TableRule(
        person_rows="messages of an erased lead, or of its anonymous and user ids",
        columns={
            "write_key_id": _no("which write key received it"),
            "message_id": _no("the client's message id"),
            "type": _no(_CODE),
            "status": _no(_CODE),
            "event_name": _no("the product's event name"),
            "event_type": _no(_CODE),
            "source_type": _no(_CODE),
            "anonymous_id": _delete("the browser's id: a person (userId may be an email)"),
            "user_id": _delete("the product's user id: a person (may be an email)"),
            "payload": _delete("the message as sent: traits with email, phone, names"),
        },
    ),
    "funnel_tracking_identities": TableRule(
        person_rows="ids whose email is erased, and the ids linked to them",
        columns={
            "kind": _no(_CODE),
            "value": _delete("an anonymous or user id (a user id may be an email)"),
            "email": _delete("the email the id belongs to"),
            "linked_user_id": _delete("the user id this id follows"),
        },
    ),
    "funnel_rollup_dirty": TableRule(person_rows=None, columns={}),
    "funnel_rollup_leads": TableRule(
        person_rows=None,
        columns={
            **{c: _no("a count's dimension: " + _UTM) for c in ("utm_source", "utm_medium")},
            "utm_campaign": _no("a count's dimension: " + _UTM),
            "source_type": _no(_CODE),
            "channel": _no(_CODE),
            "item": _no(_ITEM),
            "item_name": _no(_ITEM),
        },
    ),
    "funnel_rollup_events": TableRule(
        person_rows=None,
        columns={
            "event_type": _no(_CODE),
            "source_type": _no(_CODE),
            "utm_campaign": _no(_UTM),
        },
    ),
    "funnel_rollup_credits": TableRule(
        person_rows=None,
        columns={
            "lead_source_type": _no(_CODE),
            "lead_utm_campaign": _no(_UTM),
            "conversion_type": _no(_CODE),
            "model": _no(_CODE),
            "source_type": _no(_CODE),
            "channel": _no(_CODE),
            "utm_source": _no(_UTM),
            "utm_medium": _no(_UTM),
            "utm_campaign": _no(_UTM),
            "item": _no(_ITEM),
            "item_name": _no(_ITEM),
        },
    ),
    "funnel_rollup_conversions": TableRule(
        person_rows=None,
        columns={
            "lead_source_type": _no(_CODE),
            "lead_utm_campaign": _no(_UTM),
            "conversion_type": _no(_CODE),
        },
    ),
}


def searched_columns() -> dict[str, dict[str, Erase]]:
    """``{table: {column: erase}}`` of every column erasure searches for the identifiers."""
    return {table: cols for table, rule in REGISTRY.items() if (cols := rule.searched())}
