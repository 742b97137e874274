"""Posh.VIP relay: JSON from an automation tool, mapped like a row of the CSV export.

Posh publishes no webhooks, so an automation tool (Zapier, Make, n8n...) posts one order
as a JSON object. Its fields (nested objects flattened to dotted names, ``buyer.email``)
are matched to our columns exactly as the CSV import matches headers: the source's
``relay_columns`` (else ``columns``) first, then each column's usual spellings. The row
then goes through ``PoshvipConnector.map_record``, so a relayed order and the same order
in an export get the same external ids.
"""

from __future__ import annotations

from typing import Any

from signup_sync.events.records import EventRecord
from signup_sync.sources.base import SourceContext
from signup_sync.sources.csv_import import CsvFormatError, normalise_header, resolve_columns
from signup_sync.sources.errors import FatalSourceError, SkipRecord
from signup_sync.sources.poshvip import POSH_COLUMNS, REQUIRED, PoshvipConfig, PoshvipConnector

MAX_FIELDS = 200


def flatten(value: Any, prefix: str = "", out: dict[str, str] | None = None) -> dict[str, str]:
    """``{"buyer": {"email": "x"}}`` -> ``{"buyer.email": "x"}``; scalars as text."""
    out = {} if out is None else out
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten(inner, f"{prefix}.{key}" if prefix else str(key), out)
    elif len(out) < MAX_FIELDS and not isinstance(value, list):
        if value is None:
            out[prefix] = ""
        elif isinstance(value, bool):
            out[prefix] = "true" if value else "false"
        else:
            out[prefix] = str(value)
    return out


def relay_record(body: dict[str, Any], config: PoshvipConfig) -> dict[str, Any]:
    """The export-shaped record ``{our column: value}`` of one relayed order."""
    flat = flatten(body)
    present = {normalise_header(name) for name in flat}
    mapping = config.relay_columns or config.columns
    # A field a relay leaves out this time is not an error: required columns are checked.
    overrides = {k: v for k, v in mapping.items() if normalise_header(k) in present}
    try:
        columns = resolve_columns(list(flat), POSH_COLUMNS, overrides)
    except CsvFormatError as exc:
        raise FatalSourceError(f"poshvip relay: {exc}") from None
    record: dict[str, Any] = {"_row": None}
    for index, column in columns.fields.items():
        record[column] = flat[columns.headers[index]]
    missing = [name for name in REQUIRED if not record.get(name)]
    if not (record.get("email") or record.get("phone")):
        missing.append("email or phone")
    if missing:
        raise SkipRecord(
            f"relayed order without {', '.join(missing)} (map its fields in relay_columns)"
        )
    return record


def posh_relay_events(body: dict[str, Any], ctx: SourceContext) -> list[EventRecord]:
    config = ctx.config
    if not isinstance(config, PoshvipConfig):
        raise FatalSourceError("poshvip relay: the source's config is not a PoshvipConfig")
    return PoshvipConnector(ctx).map_record(relay_record(body, config))
