"""The people behind the numbers: GET /leads and GET /leads/{id}."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from signup_sync.api.analytics import _DATE_HELP, parse_bound
from signup_sync.api.deps import Uow
from signup_sync.api.funnel import ERRORS
from signup_sync.api.roles import Role, RoleRoute, require_role
from signup_sync.errors import InvalidInput
from signup_sync.leads.schemas import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    NONE_VALUE,
    LeadDetail,
    LeadFilter,
    LeadPage,
    LeadSort,
)
from signup_sync.leads.service import lead_detail, list_leads
from signup_sync.privacy.schemas import ErasureOut
from signup_sync.privacy.service import erase_lead, settle_files
from signup_sync.vocabulary import SourceType, Stage

# Reading is `read`; erasing a lead is `full`: each route declares its own role.
router = APIRouter(route_class=RoleRoute, prefix="/leads", tags=["leads"])

_MAX_STAGE = int(max(Stage))
_NONE = f"; `{NONE_VALUE}` selects leads without one"


def lead_filter(
    min_stage: Annotated[
        int | None,
        Query(ge=0, le=_MAX_STAGE, description="leads that reached at least this stage (1-6)"),
    ] = None,
    stage: Annotated[
        int | None,
        Query(ge=0, le=_MAX_STAGE, description="leads whose furthest stage is exactly this one"),
    ] = None,
    source_type: Annotated[
        SourceType | Literal["(none)"] | None,
        Query(description=f"leads whose first touch came from it{_NONE}"),
    ] = None,
    utm_campaign: Annotated[
        str | None, Query(max_length=255, description=f"leads whose first touch had it{_NONE}")
    ] = None,
    channel: Annotated[
        str | None, Query(max_length=64, description=f"first-touch channel, e.g. Email{_NONE}")
    ] = None,
    utm_source: Annotated[
        str | None, Query(max_length=255, description=f"first-touch utm_source{_NONE}")
    ] = None,
    utm_medium: Annotated[
        str | None, Query(max_length=255, description=f"first-touch utm_medium{_NONE}")
    ] = None,
    item: Annotated[
        str | None,
        Query(max_length=300, description=f"first-touch item, `kind:id` (group_by=event){_NONE}"),
    ] = None,
    cohort_month: Annotated[
        str | None,
        Query(
            pattern=r"^(19|2\d)\d{2}-(0[1-9]|1[0-2])$",
            description="YYYY-MM (1900-01 to 2999-12) of the lead's first touch",
        ),
    ] = None,
    start_date: Annotated[str | None, Query(description=f"first seen from: {_DATE_HELP}")] = None,
    end_date: Annotated[
        str | None, Query(description=f"first seen until, inclusive: {_DATE_HELP}")
    ] = None,
) -> LeadFilter:
    """The filters shared by GET /leads and the CSV exports."""
    start = parse_bound(start_date, "start_date", end=False)
    end = parse_bound(end_date, "end_date", end=True)
    if start is not None and end is not None and start >= end:
        raise InvalidInput("start_date must not be after end_date", field="start_date")
    return LeadFilter(
        min_stage=min_stage,
        stage=stage,
        source_type=str(source_type) if source_type else None,
        utm_campaign=_utm(utm_campaign),
        start=start,
        end=end,
        channel=channel.strip() if channel and channel.strip() else None,
        utm_source=_utm(utm_source),
        utm_medium=_utm(utm_medium),
        item=item.strip() if item and item.strip() else None,
        cohort_month=cohort_month,
    )


def _utm(value: str | None) -> str | None:
    # UTMs are stored lower-cased; the "(none)" group's value passes as it is.
    if value is None or not value.strip():
        return None
    return value.strip() if value.strip() == NONE_VALUE else value.strip().lower()


Filters = Annotated[LeadFilter, Depends(lead_filter)]


@router.get(
    "",
    response_model=LeadPage,
    summary="Leads matching the filters, one page at a time (cursor pagination)",
    responses=ERRORS,
    dependencies=[require_role(Role.READ)],
)
async def get_leads(
    uow: Uow,
    filters: Filters,
    sort: Annotated[LeadSort, Query(description="order; `-` means descending")] = (
        LeadSort.FIRST_SEEN_DESC
    ),
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page")
    ] = None,
) -> LeadPage:
    return await uow.read(lambda session: list_leads(session, filters, sort, cursor, limit))


@router.get(
    "/{lead_id}",
    response_model=LeadDetail,
    summary="One lead with its events and conversions, oldest first",
    responses={404: {"description": "No such lead"}, **ERRORS},
    dependencies=[require_role(Role.READ)],
)
async def get_lead(
    uow: Uow, lead_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="lead id")]
) -> LeadDetail:
    return await uow.read(lambda session: lead_detail(session, lead_id))


@router.delete(
    "/{lead_id}",
    response_model=ErasureOut,
    summary="Erase one lead: delete it with its events and conversions, refuse it from now on",
    description=(
        "The same erasure as `POST /privacy/erase`, for the person behind this lead: every "
        "identifier the lead holds (email, E.164 phone) is tombstoned, so no source "
        "re-creates them. See docs/privacy.md."
    ),
    responses={404: {"description": "No such lead"}, **ERRORS},
    dependencies=[require_role(Role.FULL)],
)
async def delete_lead(
    uow: Uow, lead_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="lead id")]
) -> ErasureOut:
    out = await uow(lambda session: erase_lead(session, lead_id))
    await uow.read(settle_files)
    return out
