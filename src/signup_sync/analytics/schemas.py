"""Response schemas of the analytics endpoints."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "total_leads": 4,
                    "total_conversions": 1,
                    "conversion_rate": 0.25,
                    "stages": [
                        {
                            "stage": 1,
                            "name": "lead",
                            "leads": 4,
                            "rate_from_previous": 1.0,
                            "rate_from_start": 1.0,
                        },
                        {
                            "stage": 2,
                            "name": "engaged",
                            "leads": 2,
                            "rate_from_previous": 0.5,
                            "rate_from_start": 0.5,
                        },
                    ],
                    "event_counts": {"appointment_booked": 2, "converted": 1},
                    "group_by": "source_type",
                    "groups": [
                        {"group": "zoom", "leads": 3, "conversions": 1, "conversion_rate": 0.3333}
                    ],
                    "median_days_to_conversion": 9.0,
                    "window": {"start": "2026-06-01T00:00:00Z", "end": "2026-07-01T00:00:00Z"},
                    "filters": {},
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "overall": {
                        "converted_leads": 3,
                        "median_days": 10.0,
                        "p75_days": 12.0,
                        "p90_days": 13.2,
                        "histogram": [
                            {"from_days": 0, "to_days": 7, "leads": 1},
                            {"from_days": 7, "to_days": None, "leads": 2},
                        ],
                    },
                    "group_by": None,
                    "groups": [],
                    "bins": [0, 7],
                    "conversion_window_days": None,
                    "window": {"start": None, "end": None},
                    "filters": {},
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transitions": [
                        {
                            "from_stage": 1,
                            "from_name": "lead",
                            "to_stage": 2,
                            "to_name": "engaged",
                            "reached": 10,
                            "moved_on": 6,
                            "rate": 0.6,
                            "median_days": 2.5,
                        }
                    ],
                    "group_by": None,
                    "groups": [],
                    "window": {"start": None, "end": None},
                    "filters": {},
                }
            ]
        }
    )

    transitions: list[Transition]
    group_by: GroupBy | None
    groups: list[GroupTransitions]
    window: Window
    filters: dict[str, str]
