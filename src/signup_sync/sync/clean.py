"""Text a connector hands over is made storable before ingestion.

PostgreSQL refuses NUL in ``text`` and ``\\u0000`` in ``jsonb``, and no UTF-8 driver can
encode a lone surrogate (a half-decoded emoji from a sloppy export or API); one such
character would fail its whole page. The engine strips NUL and replaces lone surrogates
with U+FFFD in every text field and in metadata (keys and values) of each mapped event.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import orjson

from signup_sync.bounds import OUT_OF_RANGE, in_range
from signup_sync.events.records import EventRecord
from signup_sync.sources.errors import SkipRecord

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_FIELDS = tuple(f.name for f in dataclasses.fields(EventRecord))


def clean_text(value: str) -> str:
    """``value`` without NUL, lone surrogates replaced (a valid surrogate pair is joined)."""
    if _UNSTORABLE.search(value) is None:
        return value
    value = value.replace("\x00", "")
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def is_storable_json(value: Any) -> bool:
    """True when ``value`` certainly needs no cleaning: it serialises as JSON (no lone
    surrogate, no non-string key) without ``\\u0000``. One C call instead of a walk over
    every key and value; False only means "walk it" (``clean_json``), never "unstorable"."""
    try:
        encoded = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: a surrogate, a non-str key, an odd type
        return False
    return b"\\u0000" not in encoded


def clean_json(value: Any) -> Any:
    """The same for every string inside a JSON-like value."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_json(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def clean_event(event: EventRecord) -> EventRecord:
    """Make ``event``'s text storable, in place; returns it."""
    texts = [v for name in _FIELDS if isinstance(v := getattr(event, name), str)]
    # One search over all the text fields; field by field only when something is found.
    if _UNSTORABLE.search("".join(texts)) is not None:
        for name in _FIELDS:
            value = getattr(event, name)
            if isinstance(value, str):
                setattr(event, name, clean_text(value))
    if event.metadata and not is_storable_json(event.metadata):
        event.metadata = clean_json(event.metadata)
    if event.extra and not is_storable_json(event.extra):
        event.extra = clean_json(event.extra)
    return event


def check_time(event: EventRecord) -> EventRecord:
    """``event`` if its time is inside the supported range; SkipRecord saying why if not
    (a source's year-9999 placeholder is one skipped record, not a failed page)."""
    if not in_range(event.occurred_at):
        raise SkipRecord(f"occurred_at {OUT_OF_RANGE}")
    return event
