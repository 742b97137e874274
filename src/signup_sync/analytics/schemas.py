"""Response schema of GET /analytics/funnel-metrics."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


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
    window: Window
    filters: dict[str, str]
