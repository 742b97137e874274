"""Funnel analytics endpoints."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from signup_sync.analytics.repository import CohortFilter
from signup_sync.analytics.schemas import FunnelMetrics, GroupBy
from signup_sync.analytics.service import funnel_metrics
from signup_sync.api.deps import Authorized, Uow
from signup_sync.api.funnel import ERRORS
from signup_sync.errors import InvalidInput
from signup_sync.vocabulary import SourceType

router = APIRouter(prefix="/analytics", tags=["analytics"], dependencies=Authorized)

_DATE_HELP = "YYYY-MM-DD (whole day) or an ISO 8601 date-time; a time without offset is UTC"
_DATE_PATTERN = (
    r"^\s*[12]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?)?\s*$"
)


def parse_bound(raw: str | None, field: str, *, end: bool) -> datetime | None:
    """A date or date-time; a date ``end`` bound covers that whole day (exclusive next midnight)."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field} must be {_DATE_HELP}", field=field) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    # A date-time end is inclusive; the query's bound is exclusive.
    return moment + timedelta(microseconds=1) if end else moment


@router.get(
    "/funnel-metrics",
    response_model=FunnelMetrics,
    summary="Funnel metrics of a cohort of leads, by stage and by group",
    responses=ERRORS,
)
async def get_funnel_metrics(
    uow: Uow,
    source_type: Annotated[
        SourceType | None, Query(description="only leads whose first touch came from it")
    ] = None,
    start_date: Annotated[
        str | None, Query(description=f"cohort start: {_DATE_HELP}", pattern=_DATE_PATTERN)
    ] = None,
    end_date: Annotated[
        str | None,
        Query(description=f"cohort end, inclusive: {_DATE_HELP}", pattern=_DATE_PATTERN),
    ] = None,
    utm_campaign: Annotated[
        str | None, Query(max_length=255, description="only leads whose first touch had it")
    ] = None,
    group_by: Annotated[GroupBy, Query(description="group leads by their first touch's")] = (
        GroupBy.SOURCE_TYPE
    ),
) -> FunnelMetrics:
    start = parse_bound(start_date, "start_date", end=False)
    end = parse_bound(end_date, "end_date", end=True)
    if start is not None and end is not None and start >= end:
        raise InvalidInput("start_date must not be after end_date", field="start_date")
    campaign = utm_campaign.strip().lower() if utm_campaign and utm_campaign.strip() else None
    cohort = CohortFilter(
        start=start,
        end=end,
        source_type=source_type.value if source_type else None,
        utm_campaign=campaign,
    )
    return await uow.read(lambda session: funnel_metrics(session, cohort, group_by))
