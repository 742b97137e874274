"""Funnel analytics endpoints."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from signup_sync.analytics.repository import CohortFilter
from signup_sync.analytics.rollup import refresh as refresh_rollups
from signup_sync.analytics.schemas import FunnelMetrics, GroupBy, StageTransitions, TimeToConvert
from signup_sync.analytics.service import DEFAULT_MODEL, funnel_metrics
from signup_sync.analytics.time_to_convert import DEFAULT_BINS, time_to_convert
from signup_sync.analytics.transitions import stage_transitions
from signup_sync.api.deps import Uow
from signup_sync.api.funnel import ERRORS
from signup_sync.api.roles import Role, RoleRoute, require_role
from signup_sync.attribution.models import AttributionModel
from signup_sync.bounds import DATE_RANGE, utc_in_range
from signup_sync.errors import InvalidInput
from signup_sync.vocabulary import SourceType

router = APIRouter(
    route_class=RoleRoute,
    prefix="/analytics",
    tags=["analytics"],
    dependencies=[require_role(Role.READ)],
)

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
            moment = utc_in_range(datetime(day.year, day.month, day.day, tzinfo=UTC))
            return moment + timedelta(days=1) if end else moment
        moment = utc_in_range(datetime.fromisoformat(text))
    except ValueError:
        raise InvalidInput(
            f"{field} must be {_DATE_HELP}, from {DATE_RANGE}", field=field
        ) from None
    # A date-time end is inclusive; the query's bound is exclusive.
    return moment + timedelta(microseconds=1) if end else moment


def cohort_filter(
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
    conversion_window_days: Annotated[
        int | None,
        Query(
            ge=1,
            le=3650,
            description="a lead counts as converted only if it converted within this many "
            "days of its first touch",
        ),
    ] = None,
) -> CohortFilter:
    """The cohort every analytics endpoint reads: leads by their first touch."""
    start = parse_bound(start_date, "start_date", end=False)
    end = parse_bound(end_date, "end_date", end=True)
    if start is not None and end is not None and start >= end:
        raise InvalidInput("start_date must not be after end_date", field="start_date")
    campaign = utm_campaign.strip().lower() if utm_campaign and utm_campaign.strip() else None
    return CohortFilter(
        start=start,
        end=end,
        source_type=source_type.value if source_type else None,
        utm_campaign=campaign,
        conversion_window_days=conversion_window_days,
    )


Cohort = Annotated[CohortFilter, Depends(cohort_filter)]
_GROUP_HELP = (
    "group leads by their first touch's source type, channel, UTM source/medium/campaign, "
    "item (event) or month (cohort_month)"
)


# A histogram edge past the widest possible span of supported dates means nothing.
MAX_BIN_DAYS = 401_768  # 1900-01-01 .. 2999-12-31


def parse_bins(raw: str | None) -> tuple[int, ...]:
    """Histogram edges in whole days: 1 to 30 increasing numbers from 1 to MAX_BIN_DAYS."""
    if raw is None or not raw.strip():
        return DEFAULT_BINS
    rule = f"bins must be 1 to 30 increasing whole days from 1 to {MAX_BIN_DAYS}, e.g. 1,7,30"
    parts = raw.split(",")
    # Length first: int() of a huge digit string is slow (and refused past 4300 digits).
    if not 1 <= len(parts) <= 30 or any(len(part.strip()) > 6 for part in parts):
        raise InvalidInput(rule, field="bins")
    try:
        edges = tuple(int(part) for part in parts)
    except ValueError:
        raise InvalidInput(rule, field="bins") from None
    if edges[0] < 1 or edges[-1] > MAX_BIN_DAYS or any(b <= a for a, b in pairwise(edges)):
        raise InvalidInput(rule, field="bins")
    return edges


@router.get(
    "/funnel-metrics",
    response_model=FunnelMetrics,
    summary="Funnel metrics of a cohort of leads, by stage and by group",
    responses=ERRORS,
)
async def get_funnel_metrics(
    uow: Uow,
    cohort: Cohort,
    group_by: Annotated[GroupBy, Query(description=_GROUP_HELP)] = GroupBy.SOURCE_TYPE,
    model: Annotated[
        AttributionModel,
        Query(description="attribution model of attributed_conversions / attributed_value"),
    ] = DEFAULT_MODEL,
    conversion_type: Annotated[
        str | None,
        Query(max_length=64, description="attributed figures of this conversion type only"),
    ] = None,
) -> FunnelMetrics:
    kind = conversion_type.strip() if conversion_type and conversion_type.strip() else None
    await uow(refresh_rollups)  # committed apart: the read below may then use them
    return await uow.read(lambda session: funnel_metrics(session, cohort, group_by, model, kind))


@router.get(
    "/time-to-convert",
    response_model=TimeToConvert,
    summary="Days from first touch to conversion: median, p75, p90 and a histogram",
    responses=ERRORS,
)
async def get_time_to_convert(
    uow: Uow,
    cohort: Cohort,
    group_by: Annotated[GroupBy | None, Query(description=_GROUP_HELP)] = None,
    bins: Annotated[
        str | None,
        Query(
            description="histogram bucket edges in whole days, comma-separated "
            "(default 1,2,3,7,14,30,60,90)"
        ),
    ] = None,
) -> TimeToConvert:
    edges = parse_bins(bins)
    return await uow.read(lambda session: time_to_convert(session, cohort, group_by, edges))


@router.get(
    "/stage-transitions",
    response_model=StageTransitions,
    summary="For each pair of adjacent stages: the share that moved on and the median time",
    responses=ERRORS,
)
async def get_stage_transitions(
    uow: Uow,
    cohort: Cohort,
    group_by: Annotated[GroupBy | None, Query(description=_GROUP_HELP)] = None,
) -> StageTransitions:
    return await uow.read(lambda session: stage_transitions(session, cohort, group_by))
