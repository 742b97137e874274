"""PostgreSQL fast path of storing a conversion: its row and its credit rows, one statement.

The credit rows are made by the database from the attribution document the conversion
row carries (every touchpoint with its credit and value share under each model, as exact
decimal text), so the touchpoints travel once: the document, not the document and an array
per credit column. A data-modifying CTE inserts the conversion; the credits' INSERT reads
the document back from its RETURNING, a row per touchpoint and model with a credit > 0,
touchpoint by touchpoint then model by model (the ids follow that order, as they did when
the rows were sent). As ``pg_ingest``: built with SQLAlchemy, compiled for PostgreSQL once
per process and run with ``exec_driver_sql`` as one prepared statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, cast

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Numeric,
    Table,
    bindparam,
    column,
    func,
    literal_column,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP, VARCHAR
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.db.models import AttributionCredit, FunnelConversion
from signup_sync.db.pg_ingest import Compiled, precompile

CONVERSIONS = cast(Table, FunnelConversion.__table__)
CREDITS = cast(Table, AttributionCredit.__table__)
CONVERSION_COLUMNS = tuple(c.name for c in CONVERSIONS.c if c.name != "id")
# Credit columns copied from the document's touchpoint as text, in table order.
TEXT_KEYS = ("source_type", "channel", "utm_source", "utm_medium", "utm_campaign", "item",
             "item_name")  # fmt: skip


def _text(touch: Any, key: str) -> ColumnElement[Any]:
    return cast(ColumnElement[Any], touch[key].astext)


@cache
def _insert_sql(models: tuple[str, ...]) -> Compiled:
    values = {
        name: bindparam(name, type_=JSONB() if name == "attribution" else CONVERSIONS.c[name].type)
        for name in CONVERSION_COLUMNS
    }
    conversion = (
        postgresql.insert(CONVERSIONS)
        .values(values)
        .returning(
            CONVERSIONS.c.id,
            CONVERSIONS.c.lead_id,
            sql_cast(CONVERSIONS.c.attribution, JSONB).label("doc"),
        )
        .cte("conversion")
    )
    touches = (
        func.jsonb_array_elements(conversion.c.doc["touchpoints"])
        .table_valued(column("touch", JSONB), with_ordinality="ord")
        .render_derived(name="t")
    )
    model_names = bindparam("models", value=list(models), type_=ARRAY(VARCHAR()))
    by_model = (
        func.unnest(model_names)
        .table_valued("model", with_ordinality="ord")
        .render_derived(name="m")
    )
    touch = touches.c.touch
    credit = sql_cast(touch["credits"][by_model.c.model].astext, Numeric)
    share = sql_cast(touch["value_shares"][by_model.c.model].astext, Numeric)
    rows = (
        select(
            conversion.c.id,
            conversion.c.lead_id,
            by_model.c.model,
            touches.c.ord - 1,
            sql_cast(_text(touch, "event_id"), BigInteger),
            sql_cast(_text(touch, "occurred_at"), TIMESTAMP(timezone=True)),
            *[_text(touch, key) for key in TEXT_KEYS],
            sql_cast(credit * 1_000_000, Integer),
            sql_cast(share * 100, BigInteger),
        )
        .select_from(conversion)
        .join(touches, literal_column("true"))
        .join(by_model, literal_column("true"))
        .where(credit > 0)
        .order_by(touches.c.ord, by_model.c.ord)
    )
    credits = (
        postgresql.insert(CREDITS)
        .from_select([c.name for c in CREDITS.c if c.name != "id"], rows)
        .cte("credits")
    )
    return precompile(select(conversion.c.id).add_cte(credits))


async def insert_conversion_with_credits(
    session: AsyncSession, values: Mapping[str, Any], models: Sequence[str]
) -> int:
    """Insert a conversion (``values``: every column but the id) and the credit rows of its
    attribution document (``models``: the keys of each touchpoint's credits, in row order);
    the conversion's id."""
    statement = _insert_sql(tuple(models))
    params = {**statement.constants, **values}
    params["attribution"] = orjson.dumps(values["attribution"]).decode()  # jsonb codec: text
    conn = await session.connection()
    result = await conn.exec_driver_sql(statement.sql, tuple(params[n] for n in statement.names))
    return int(result.scalar_one())
