"""A conversion's touchpoints with their credits under every model, as JSON and as rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from signup_sync.attribution.models import CREDIT_UNITS, AttributionModel, all_credits, split_value
from signup_sync.attribution.touches import Touchpoint
from signup_sync.db.models import FunnelConversion


@dataclass(frozen=True, slots=True)
class AttributedTouchpoint:
    touch: Touchpoint
    credits: dict[AttributionModel, Decimal]
    value_shares: dict[AttributionModel, Decimal] | None

    def as_json(self) -> dict[str, object]:
        data = self.touch.as_json()
        data["credits"] = {m.value: str(c) for m, c in self.credits.items()}
        data["value_shares"] = (
            {m.value: str(v) for m, v in self.value_shares.items()}
            if self.value_shares is not None
            else None
        )
        return data


def attribute(
    touches: Sequence[Touchpoint],
    converted_at: datetime,
    value: Decimal | None,
    half_life_days: int,
) -> list[AttributedTouchpoint]:
    """Every touchpoint's credit (and share of ``value``) under every model."""
    by_model = all_credits(touches, converted_at, half_life_days)
    shares = {m: split_value(value, c) for m, c in by_model.items()} if value is not None else None
    return [
        AttributedTouchpoint(
            touch=touch,
            credits={m: c[i] for m, c in by_model.items()},
            value_shares={m: v[i] for m, v in shares.items()} if shares is not None else None,
        )
        for i, touch in enumerate(touches)
    ]


def credit_rows(
    conversion: FunnelConversion, attributed: Sequence[AttributedTouchpoint]
) -> list[dict[str, Any]]:
    """Rows of funnel_attribution_credits: one per touchpoint and model with a credit > 0."""
    rows = []
    for position, a in enumerate(attributed):
        t = a.touch
        for model, credit in a.credits.items():
            if not credit:
                continue
            share = a.value_shares[model] if a.value_shares is not None else None
            rows.append(
                {
                    "conversion_id": conversion.id,
                    "lead_id": conversion.lead_id,
                    "model": model.value,
                    "position": position,
                    "event_id": t.event_id,
                    "occurred_at": t.occurred_at,
                    "source_type": t.source_type,
                    "channel": t.channel,
                    "utm_source": t.utm_source,
                    "utm_medium": t.utm_medium,
                    "utm_campaign": t.utm_campaign,
                    "item": t.item,
                    "item_name": t.item_name,
                    "credit_micros": int(credit * CREDIT_UNITS),
                    "value_cents": int(share * 100) if share is not None else None,
                }
            )
    return rows
