"""The funnel dashboard for people with a browser: sign in once, then a session cookie."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from signup_sync.analytics.repository import CohortFilter
from signup_sync.analytics.rollup import refresh as refresh_rollups
from signup_sync.analytics.schemas import GroupBy
from signup_sync.analytics.service import DEFAULT_MODEL
from signup_sync.api.analytics import parse_bound
from signup_sync.api.deps import LeadId, Uow
from signup_sync.api.exports import csv_response
from signup_sync.api.leads import Filters
from signup_sync.api.roles import Keyring, Role, declares, require_role
from signup_sync.attribution.models import AttributionModel
from signup_sync.dashboard import session as cookie
from signup_sync.dashboard.render import render, stylesheet
from signup_sync.dashboard.service import (
    GROUP_BY_OPTIONS,
    MODEL_OPTIONS,
    bucket_label,
    dashboard,
    describe,
)
from signup_sync.errors import InvalidInput
from signup_sync.exports.service import ExportKind
from signup_sync.leads.schemas import DEFAULT_LIMIT, NONE_VALUE, LeadSort
from signup_sync.leads.service import count_leads, lead_detail, list_leads
from signup_sync.vocabulary import SourceType

router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)

_HEADERS = {
    # No script at all; styles only from our own stylesheet; nothing may frame the page.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _page(html: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status_code, headers=_HEADERS)


def _safe_next(target: str | None) -> str:
    """Only a dashboard path: never another host (no open redirect)."""
    if (
        target
        and target.startswith(cookie.COOKIE_PATH)
        and not any(bad in target for bad in ("//", "\\", "\r", "\n"))
    ):
        return target
    return cookie.COOKIE_PATH


def _session_tokens(request: Request) -> list[bytes]:
    """Tokens that may open the dashboard: read and full-access ones."""
    keyring: Keyring = request.app.state.keyring
    return keyring.tokens_with(Role.READ)


@declares(Role.DASHBOARD_SESSION)
def require_session(request: Request) -> None:
    if not cookie.is_valid(request.cookies.get(cookie.COOKIE_NAME), _session_tokens(request)):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            status_code=status.HTTP_303_SEE_OTHER,
            detail="Sign in first",
            headers={"Location": f"/dashboard/login?next={quote(here, safe='')}"},
        )


SignedIn = Depends(require_session)
Public = require_role(Role.PUBLIC)


def _login_page(next_path: str, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    return _page(
        render(
            "login.html",
            next=next_path,
            error=error,
            hours=cookie.SESSION_SECONDS // 3600,
            signed_in=False,
        ),
        status_code,
    )


@router.get("/login", response_class=HTMLResponse, dependencies=[Public])
async def login_form(
    next_path: Annotated[str | None, Query(alias="next", max_length=2048)] = None,
) -> HTMLResponse:
    return _login_page(_safe_next(next_path))


@router.post("/login", response_class=HTMLResponse, dependencies=[Public])
async def login(request: Request) -> Response:
    # A plain urlencoded form: parsed here so the service needs no multipart library.
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
    token = (form.get("token") or [""])[0].strip()
    next_path = _safe_next((form.get("next") or [""])[0])
    keyring: Keyring = request.app.state.keyring
    held = keyring.roles(token) if token else frozenset()
    if not held:
        return _login_page(next_path, "That token is not valid.", status.HTTP_401_UNAUTHORIZED)
    if Role.READ not in held:  # an ingest or metrics token: valid, but not for reading
        return _login_page(
            next_path,
            "That token cannot open the dashboard: it needs the 'read' role "
            "(a SIGNUP_SYNC_READ_TOKENS or SIGNUP_SYNC_SERVICE_TOKEN token).",
            status.HTTP_403_FORBIDDEN,
        )
    response = RedirectResponse(next_path, status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        cookie.COOKIE_NAME,
        cookie.issue(token.encode()),
        max_age=cookie.SESSION_SECONDS,
        path=cookie.COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", dependencies=[Public])
async def logout() -> Response:
    response = RedirectResponse("/dashboard/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(
        cookie.COOKIE_NAME, path=cookie.COOKIE_PATH, httponly=True, samesite="strict"
    )
    return response


@router.get("/static/dashboard.css", dependencies=[Public])
async def css() -> Response:
    return Response(
        stylesheet(), media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )


def _choice(form: dict[str, str], name: str, options: tuple[tuple[str, str], ...]) -> str:
    allowed = [value for value, _ in options]
    if form[name] not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)}", field=name)
    return form[name]


def _cohort(form: dict[str, str]) -> tuple[CohortFilter, GroupBy, AttributionModel]:
    group_by = GroupBy(_choice(form, "group_by", GROUP_BY_OPTIONS))
    model = AttributionModel(_choice(form, "model", MODEL_OPTIONS))
    source = form["source_type"] or None
    if source is not None and source not in {t.value for t in SourceType}:
        raise InvalidInput("source_type is not a known source", field="source_type")
    start = parse_bound(form["start_date"], "start_date", end=False)
    end = parse_bound(form["end_date"], "end_date", end=True)
    if start is not None and end is not None and start >= end:
        raise InvalidInput("start_date must not be after end_date", field="start_date")
    campaign = form["utm_campaign"].strip().lower() or None
    cohort = CohortFilter(start=start, end=end, source_type=source, utm_campaign=campaign)
    return cohort, group_by, model


@router.get("", response_class=HTMLResponse, dependencies=[SignedIn])
async def funnel_page(
    uow: Uow,
    group_by: Annotated[str, Query(max_length=64)] = GROUP_BY_OPTIONS[0][0],
    model: Annotated[str, Query(max_length=64)] = DEFAULT_MODEL.value,
    start_date: Annotated[str, Query(max_length=40)] = "",
    end_date: Annotated[str, Query(max_length=40)] = "",
    source_type: Annotated[str, Query(max_length=64)] = "",
    utm_campaign: Annotated[str, Query(max_length=255)] = "",
) -> HTMLResponse:
    form = {
        "group_by": group_by,
        "model": model,
        "start_date": start_date,
        "end_date": end_date,
        "source_type": source_type,
        "utm_campaign": utm_campaign,
    }
    error = None
    try:
        cohort, grouping, attribution = _cohort(form)
    except InvalidInput as exc:
        # Show the page (unfiltered) with the reason, rather than a JSON error in a browser.
        error = exc.message
        cohort, grouping, attribution = CohortFilter(), GroupBy.SOURCE_TYPE, DEFAULT_MODEL
        form = dict.fromkeys(form, "") | {"group_by": grouping.value, "model": attribution.value}
    await uow(refresh_rollups)  # committed apart: the read below may then use them
    data = await uow.read(lambda session: dashboard(session, cohort, grouping, attribution))
    label = dict(GROUP_BY_OPTIONS)[grouping.value]
    # Links to the people behind each number: the cohort's filters plus the row's own.
    base = {k: form[k] for k in ("start_date", "end_date", "source_type", "utm_campaign")}
    stage_links = {
        s.stage: "/dashboard/leads?" + urlencode(_nonempty(base | {"min_stage": str(s.stage)}))
        for s in data.metrics.stages
    }
    # A group counts the cohort's leads that reached stage 1 with that first touch.
    param = LINK_PARAMS[grouping]
    group_links = {
        g.group: "/dashboard/leads?"
        + urlencode(
            _nonempty(base | {"min_stage": "1", param: NONE_VALUE if g.group is None else g.group})
        )
        for g in data.metrics.groups
    }
    html = render(
        "dashboard.html",
        data=data,
        stage_links=stage_links,
        group_links=group_links,
        form=form,
        error=error,
        group_by_options=GROUP_BY_OPTIONS,
        group_label=label,
        model_options=MODEL_OPTIONS,
        model_label=dict(MODEL_OPTIONS)[attribution.value],
        bucket_label=bucket_label,
        source_types=[t.value for t in SourceType],
        signed_in=True,
    )
    return _page(html, 422 if error else 200)


# The people-list filter that selects one group of each grouping.
LINK_PARAMS: dict[GroupBy, str] = {
    GroupBy.SOURCE_TYPE: "source_type",
    GroupBy.CHANNEL: "channel",
    GroupBy.UTM_SOURCE: "utm_source",
    GroupBy.UTM_MEDIUM: "utm_medium",
    GroupBy.UTM_CAMPAIGN: "utm_campaign",
    GroupBy.EVENT: "item",
    GroupBy.COHORT_MONTH: "cohort_month",
}


def _nonempty(params: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if v}


@router.get("/leads", response_class=HTMLResponse, dependencies=[SignedIn])
async def people_page(
    request: Request,
    uow: Uow,
    filters: Filters,
    sort: Annotated[LeadSort, Query()] = LeadSort.FIRST_SEEN_DESC,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> HTMLResponse:
    page = await uow.read(lambda session: list_leads(session, filters, sort, cursor, DEFAULT_LIMIT))
    total = await uow.read(lambda session: count_leads(session, filters))
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor" and v]
    query = urlencode(kept)
    # Column headers re-sort the same people: the filters without cursor or sort.
    unsorted = urlencode([(k, v) for k, v in kept if k != "sort"])
    html = render(
        "leads.html",
        page=page,
        total=total,
        query=query,
        unsorted=unsorted,
        sort=sort,
        columns=PEOPLE_COLUMNS,
        description=describe(filters),
        signed_in=True,
    )
    return _page(html)


# The people table's columns: heading and the sort that orders by it.
PEOPLE_COLUMNS: tuple[tuple[str, LeadSort], ...] = (
    ("Email", LeadSort.EMAIL),
    ("Name", LeadSort.NAME),
    ("Stage", LeadSort.STAGE),
    ("First source", LeadSort.SOURCE),
    ("First channel", LeadSort.CHANNEL),
    ("First campaign", LeadSort.CAMPAIGN),
    ("First seen", LeadSort.FIRST_SEEN),
    ("Last seen", LeadSort.LAST_SEEN),
)


@router.get("/leads/{lead_id}", response_class=HTMLResponse, dependencies=[SignedIn])
async def lead_page(uow: Uow, lead_id: LeadId) -> HTMLResponse:
    lead = await uow.read(lambda session: lead_detail(session, lead_id))
    return _page(render("lead.html", lead=lead, signed_in=True))


@router.get("/export/{kind}.csv", dependencies=[SignedIn])
async def download(request: Request, kind: ExportKind, filters: Filters) -> StreamingResponse:
    return csv_response(request, kind, filters)
