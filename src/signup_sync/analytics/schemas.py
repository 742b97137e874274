"""Response schema of GET /analytics/funnel-metrics."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel


class GroupBy(StrEnum):
    SOURCE_TYPE = "source_type"
    UTM_SOURCE = "utm_source"
    UTM_CAMPAIGN = "utm_campaign"


class StageCount(BaseModel):
    stage: int
    name: str
    leads: int
    rate_from_previous: float
    rate_from_start: float


class GroupCount(BaseModel):
    group: str | None
    leads: int
    conversions: int
    conversion_rate: float


class Window(BaseModel):
    start: datetime | None
    end: datetime | None


class FunnelMetrics(BaseModel):
    total_leads: int
    total_conversions: int
    conversion_rate: float
    stages: list[StageCount]
    event_counts: dict[str, int]
    group_by: GroupBy
    groups: list[GroupCount]
    median_days_to_conversion: float | None
    window: Window
    filters: dict[str, str]
