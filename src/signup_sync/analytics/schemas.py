"""Response schemas of the analytics endpoints."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from signup_sync.attribution.models import AttributionModel


class GroupBy(StrEnum):
    SOURCE_TYPE = "source_type"
    CHANNEL = "channel"
    UTM_SOURCE = "utm_source"
    UTM_MEDIUM = "utm_medium"
    UTM_CAMPAIGN = "utm_campaign"
    EVENT = "event"
    COHORT_MONTH = "cohort_month"


class StageCount(BaseModel):
    stage: int
    name: str
    leads: int
    rate_from_previous: float
    rate_from_start: float


class GroupCount(BaseModel):
    group: str | None
    label: str | None = Field(default=None, description="display name (group_by=event)")
    leads: int
    conversions: int
    conversion_rate: float
    attributed_conversions: float = Field(
        description="sum of the selected model's credits earned by this group's touchpoints"
    )
    attributed_value: Decimal = Field(description="the same share of conversion values")


class AttributionTotals(BaseModel):
    model: AttributionModel
    conversion_type: str | None
    conversions: int = Field(description="conversions of cohort leads (rows, not leads)")
    value: Decimal
    unattributed_conversions: int = Field(description="conversions with no credited touchpoint")
    unattributed_value: Decimal


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
    conversion_window_days: int | None
    attribution: AttributionTotals
    window: Window
    filters: dict[str, str]


class Bucket(BaseModel):
    from_days: int
    to_days: int | None = Field(description="exclusive; null for the open last bucket")
    leads: int


class Distribution(BaseModel):
    converted_leads: int
    median_days: float | None
    p75_days: float | None
    p90_days: float | None
    histogram: list[Bucket]


class GroupDistribution(Distribution):
    group: str | None
    label: str | None = None


class TimeToConvert(BaseModel):
    overall: Distribution
    group_by: GroupBy | None
    groups: list[GroupDistribution]
    bins: list[int]
    conversion_window_days: int | None
    window: Window
    filters: dict[str, str]


class Transition(BaseModel):
    from_stage: int
    from_name: str
    to_stage: int
    to_name: str
    reached: int = Field(description="leads that reached from_stage (or beyond)")
    moved_on: int = Field(description="of those, leads that reached to_stage (or beyond)")
    rate: float
    median_days: float | None


class GroupTransitions(BaseModel):
    group: str | None
    label: str | None = None
    transitions: list[Transition]


class StageTransitions(BaseModel):
    transitions: list[Transition]
    group_by: GroupBy | None
    groups: list[GroupTransitions]
    window: Window
    filters: dict[str, str]
