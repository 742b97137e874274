"""A conversion's touchpoints with their credits under every model, as JSON and as rows.

Credits are computed once, as integer millionths (and value shares as integer cents); the
attribution document, the credit rows and the answer are all made from those integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from signup_sync.attribution.models import (
    CREDIT_UNITS,
    PLACES,
    AttributionModel,
    all_credit_units,
    split_units,
)
from signup_sync.attribution.touches import Touchpoint

MODELS = tuple(AttributionModel)
_MODEL_NAMES = tuple(m.value for m in MODELS)
# funnel_attribution_credits columns made here, in table order (the ids come from the caller).
CREDIT_ROW_COLUMNS = (
    "model", "position", "event_id", "occurred_at", "source_type", "channel", "utm_source",
    "utm_medium", "utm_campaign", "item", "item_name", "credit_micros", "value_cents",
)  # fmt: skip


def credit_text(units: int) -> str:
    """Millionths as the document writes a credit: ``str(Decimal(units).scaleb(-6))``."""
    return f"{units // CREDIT_UNITS}.{units % CREDIT_UNITS:0{PLACES}d}"


def cents_text(cents: int) -> str:
    """Cents as the document writes a value share: ``str(Decimal(cents).scaleb(-2))``."""
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass(frozen=True, slots=True)
class Attribution:
    """Touchpoints (oldest first) and, per model, each one's credit and share of the value."""

    touches: Sequence[Touchpoint]
    credits: dict[AttributionModel, list[int]]  # millionths, summing to CREDIT_UNITS
    value_cents: dict[AttributionModel, list[int]] | None  # summing to the value; None: none

    def touchpoints_json(self) -> list[dict[str, object]]:
        """The document's ``touchpoints``: each touch with ``credits`` and ``value_shares``."""
        credits = [[credit_text(u) for u in self.credits[m]] for m in MODELS]
        shares = (
            [[cents_text(c) for c in self.value_cents[m]] for m in MODELS]
            if self.value_cents is not None
            else None
        )
        out = []
        for i, touch in enumerate(self.touches):
            data = touch.as_json()
            data["credits"] = dict(zip(_MODEL_NAMES, [c[i] for c in credits], strict=True))
            data["value_shares"] = (
                dict(zip(_MODEL_NAMES, [s[i] for s in shares], strict=True))
                if shares is not None
                else None
            )
            out.append(data)
        return out


def attribute(
    touches: Sequence[Touchpoint],
    converted_at: datetime,
    value: Decimal | None,
    half_life_days: int,
) -> Attribution:
    """Every touchpoint's credit (and share of ``value``) under every model."""
    by_model = all_credit_units(touches, converted_at, half_life_days)
    cents = None
    if value is not None:
        total = int((value * 100).to_integral_value())
        cents = {m: split_units(total, units) for m, units in by_model.items()}
    return Attribution(touches=touches, credits=by_model, value_cents=cents)


def credit_columns(attribution: Attribution) -> dict[str, list[Any]]:
    """Rows of funnel_attribution_credits, one list per column (but the conversion and lead
    ids): one row per touchpoint and model with a credit > 0, touchpoint by touchpoint."""
    columns: dict[str, list[Any]] = {name: [] for name in CREDIT_ROW_COLUMNS}
    (model, position, event_id, occurred_at, source_type, channel, utm_source, utm_medium,
     utm_campaign, item, item_name, credit_micros, value_cents) = columns.values()  # fmt: skip
    credits = [attribution.credits[m] for m in MODELS]
    cents = (
        [attribution.value_cents[m] for m in MODELS]
        if attribution.value_cents is not None
        else None
    )
    for i, t in enumerate(attribution.touches):
        for m, name in enumerate(_MODEL_NAMES):
            credit = credits[m][i]
            if not credit:
                continue
            model.append(name)
            position.append(i)
            event_id.append(t.event_id)
            occurred_at.append(t.occurred_at)
            source_type.append(t.source_type)
            channel.append(t.channel)
            utm_source.append(t.utm_source)
            utm_medium.append(t.utm_medium)
            utm_campaign.append(t.utm_campaign)
            item.append(t.item)
            item_name.append(t.item_name)
            credit_micros.append(credit)
            value_cents.append(cents[m][i] if cents is not None else None)
    return columns


def credit_rows(conversion_id: int, lead_id: int, attribution: Attribution) -> list[dict[str, Any]]:
    """``credit_columns`` as rows (dicts with every column but the id)."""
    columns = credit_columns(attribution)
    names = ("conversion_id", "lead_id", *columns)
    return [
        dict(zip(names, (conversion_id, lead_id, *values), strict=True))
        for values in zip(*columns.values(), strict=True)
    ]
