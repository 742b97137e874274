"""Calendar arithmetic in SQL, one function per need, the dialect detail kept inside."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, func


def week_start(column: Any, dialect: str) -> ColumnElement[Any]:
    """The Monday (UTC) of the week a UTC timestamp falls in; read it with ``as_date``."""
    if dialect == "postgresql":
        return func.date_trunc("week", func.timezone("UTC", column))
    if dialect == "sqlite":
        # Stored as naive UTC text; 'weekday 0' moves to the coming Sunday (or stays on one).
        return func.date(column, "weekday 0", "-6 days")
    raise NotImplementedError(f"week_start has no SQL for {dialect}")


def as_date(value: Any) -> date:
    """A week_start value (a timestamp on PostgreSQL, 'YYYY-MM-DD' text on SQLite) as a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
