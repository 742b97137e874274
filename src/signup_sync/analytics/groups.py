"""What each ``group_by`` groups by, for leads and for attribution credits (data, not code).

Leads are grouped by their first touch (or by the month of it); credits by the touchpoint
that earned them, except for ``cohort_month``, which is the converting lead's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import SQLColumnExpression

from signup_sync.analytics.schemas import GroupBy
from signup_sync.analytics.sql import month_of
from signup_sync.db.models import AttributionCredit, Lead


@dataclass(frozen=True, slots=True)
class Dimension:
    lead_key: SQLColumnExpression[Any]
    credit_key: SQLColumnExpression[Any]
    lead_label: SQLColumnExpression[Any] | None = None
    credit_label: SQLColumnExpression[Any] | None = None


def dimension(group_by: GroupBy, dialect: str) -> Dimension:
    c = AttributionCredit
    if group_by is GroupBy.COHORT_MONTH:
        month = month_of(Lead.first_seen_at, dialect)
        return Dimension(lead_key=month, credit_key=month)
    if group_by is GroupBy.EVENT:
        return Dimension(
            lead_key=Lead.first_touch_item,
            credit_key=c.item,
            lead_label=Lead.first_touch_item_name,
            credit_label=c.item_name,
        )
    lead_columns: dict[GroupBy, Any] = {
        GroupBy.SOURCE_TYPE: (Lead.first_touch_source_type, c.source_type),
        GroupBy.CHANNEL: (Lead.first_touch_channel, c.channel),
        GroupBy.UTM_SOURCE: (Lead.first_touch_utm_source, c.utm_source),
        GroupBy.UTM_MEDIUM: (Lead.first_touch_utm_medium, c.utm_medium),
        GroupBy.UTM_CAMPAIGN: (Lead.first_touch_utm_campaign, c.utm_campaign),
    }
    lead_key, credit_key = lead_columns[group_by]
    return Dimension(lead_key=lead_key, credit_key=credit_key)
