"""The dashboard over HTTP: sign-in, the session cookie, and pages that need it."""

from __future__ import annotations

import re

import httpx
import pytest

from signup_sync.analytics.schemas import Bucket, GroupBy
from signup_sync.attribution.models import AttributionModel
from signup_sync.dashboard import session as cookie
from signup_sync.dashboard.service import bucket_label, fill_weeks
from tests import funnel_data
from tests.conftest import TOKEN, TOKEN_ROTATED


async def _sign_in(
    http: httpx.AsyncClient, token: str = TOKEN, next_path: str = ""
) -> httpx.Response:
    return await http.post("/dashboard/login", data={"token": token, "next": next_path})


async def test_pages_redirect_to_the_login_without_a_cookie(anon_client: httpx.AsyncClient) -> None:
    r = await anon_client.get("/dashboard", params={"group_by": "utm_source"})
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard/login?next=%2Fdashboard%3Fgroup_by%3Dutm_source"
    login = await anon_client.get(r.headers["location"])
    assert login.status_code == 200
    assert 'name="token"' in login.text
    assert 'value="/dashboard?group_by=utm_source"' in login.text
    # A bearer token is for the API; the dashboard wants its own cookie.
    r = await anon_client.get("/dashboard", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 303


async def test_wrong_token_is_rejected_without_a_cookie(anon_client: httpx.AsyncClient) -> None:
    r = await _sign_in(anon_client, token="not-the-token-at-all")
    assert r.status_code == 401
    assert "That token is not valid" in r.text
    assert "set-cookie" not in r.headers
    assert "not-the-token-at-all" not in r.text
    assert (await anon_client.get("/dashboard")).status_code == 303


async def test_sign_in_sets_a_strict_http_only_expiring_cookie(
    anon_client: httpx.AsyncClient,
) -> None:
    r = await _sign_in(anon_client, next_path="/dashboard?group_by=utm_campaign")
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard?group_by=utm_campaign"
    set_cookie = r.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
    assert {"httponly", "max-age", "path"} <= attributes
    assert re.search(r"samesite=strict", set_cookie, re.I)
    assert f"Max-Age={cookie.SESSION_SECONDS}" in set_cookie
    assert TOKEN not in set_cookie
    page = await anon_client.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert 'id="stages"' in page.text
    assert "<script" not in page.text


async def test_rotated_token_works_and_logout_ends_the_session(
    anon_client: httpx.AsyncClient,
) -> None:
    assert (await _sign_in(anon_client, token=TOKEN_ROTATED)).status_code == 303
    assert (await anon_client.get("/dashboard")).status_code == 200
    r = await anon_client.post("/dashboard/logout")
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard/login"
    assert (await anon_client.get("/dashboard")).status_code == 303


async def test_open_redirects_are_refused(anon_client: httpx.AsyncClient) -> None:
    for target in ("https://evil.example/", "//evil.example/dashboard", "/docs"):
        r = await _sign_in(anon_client, next_path=target)
        assert r.headers["location"] == "/dashboard", target


def test_cookie_signature_expiry_and_tokens() -> None:
    tokens = [TOKEN.encode()]
    value = cookie.issue(TOKEN.encode(), now=1000, seconds=60)
    assert cookie.is_valid(value, tokens, now=1059)
    assert not cookie.is_valid(value, tokens, now=1060)  # expired
    assert not cookie.is_valid(value, [TOKEN_ROTATED.encode()], now=1000)  # token removed
    payload, _, signature = value.rpartition(".")
    forged = payload.replace("v1.1060.", "v1.9999999999.") + "." + signature
    assert not cookie.is_valid(forged, tokens, now=1000)
    assert not cookie.is_valid("garbage", tokens, now=1000)
    assert not cookie.is_valid(None, tokens)


async def test_dashboard_shows_the_funnel_numbers_of_the_api(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    await funnel_data.load(client)
    await _sign_in(anon_client)
    page = (await anon_client.get("/dashboard", params={"group_by": "utm_campaign"})).text
    api = (
        await client.get("/analytics/funnel-metrics", params={"group_by": "utm_campaign"})
    ).json()
    assert f'id="total-leads" data-value="{api["total_leads"]}"' in page
    for stage in api["stages"]:
        row = re.search(rf'<tr data-stage="{stage["stage"]}">(.*?)</tr>', page, re.S)
        assert row, stage
        assert f'data-field="leads" data-value="{stage["leads"]}"' in row.group(1)
    for group in api["groups"]:
        assert f'<tr data-group="{group["group"] or ""}">' in page
    assert '<option value="utm_campaign" selected>' in page
    # Time to convert: the numbers of /analytics/time-to-convert.
    ttc = (await client.get("/analytics/time-to-convert")).json()["overall"]
    assert ttc["converted_leads"] == 1
    assert f'id="ttc-median" data-value="{ttc["median_days"]}"' in page
    assert f'id="ttc-p90" data-value="{ttc["p90_days"]}"' in page
    for bucket in ttc["histogram"]:
        assert re.search(
            rf'<tr data-from="{bucket["from_days"]}"><td>[^<]+</td>'
            rf'<td class="num" data-value="{bucket["leads"]}">',
            page,
        ), bucket
    # Every pulled source is listed even before it is configured.
    for source in ("easyappointments", "zoom", "eventbrite", "poshvip"):
        assert f'data-source-type="{source}"' in page
    assert page.count("<svg") == 4


async def test_bad_filters_show_a_message_not_a_crash(anon_client: httpx.AsyncClient) -> None:
    await _sign_in(anon_client)
    r = await anon_client.get("/dashboard", params={"group_by": "shoe_size"})
    assert r.status_code == 422
    assert "group_by must be one of" in r.text
    r = await anon_client.get("/dashboard", params={"start_date": "yesterday"})
    assert r.status_code == 422
    assert "start_date must be" in r.text


def test_weeks_are_filled_and_days_bucketed() -> None:
    from datetime import date

    weeks = fill_weeks({date(2026, 6, 1): 3, date(2026, 6, 22): 1}, {date(2026, 6, 8): 2}).points
    assert [(w.start.isoformat(), w.leads, w.conversions) for w in weeks] == [
        ("2026-06-01", 3, 0),
        ("2026-06-08", 0, 2),
        ("2026-06-15", 0, 0),
        ("2026-06-22", 1, 0),
    ]
    assert fill_weeks({}, {}).points == []
    labels = [
        bucket_label(Bucket(from_days=low, to_days=high, leads=0))
        for low, high in ((0, 1), (1, 2), (3, 7), (90, None))
    ]
    assert labels == ["same day", "1", "3-6", "90+"]


@pytest.mark.parametrize("group_by", [g.value for g in GroupBy])
async def test_every_group_by_of_the_api_is_offered_and_matches_it(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, group_by: str
) -> None:
    await funnel_data.load(client)
    await _sign_in(anon_client)
    r = await anon_client.get("/dashboard", params={"group_by": group_by})
    assert r.status_code == 200
    assert f'data-group-by="{group_by}"' in r.text
    assert f'<option value="{group_by}" selected>' in r.text
    for other in GroupBy:
        assert f'<option value="{other.value}"' in r.text
    api = (await client.get("/analytics/funnel-metrics", params={"group_by": group_by})).json()
    shown = re.findall(r'<tr data-group="([^"]*)">', r.text)
    assert shown == [g["group"] or "" for g in api["groups"]]


@pytest.mark.parametrize("model", [m.value for m in AttributionModel])
async def test_the_attribution_model_selector_shows_the_api_credits(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, model: str
) -> None:
    await funnel_data.load(client)
    await _sign_in(anon_client)
    params = {"group_by": "source_type", "model": model}
    r = await anon_client.get("/dashboard", params=params)
    assert r.status_code == 200
    assert f'<option value="{model}" selected>' in r.text
    assert f'data-model="{model}"' in r.text
    api = (await client.get("/analytics/funnel-metrics", params=params)).json()
    assert api["attribution"]["conversions"] == 1
    for group in api["groups"]:
        row = re.search(rf'<tr data-group="{group["group"] or ""}">(.*?)</tr>', r.text, re.S)
        assert row, group
        credit = re.search(r'data-field="attributed_conversions" data-value="([^"]+)"', row[1])
        value = re.search(r'data-field="attributed_value" data-value="([^"]+)"', row[1])
        assert credit and float(credit[1]) == group["attributed_conversions"]
        assert value and value[1] == group["attributed_value"]
    bad = await anon_client.get("/dashboard", params={"model": "last_click"})
    assert bad.status_code == 422 and "model must be one of" in bad.text


async def test_people_behind_the_numbers_pages(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    ids = await funnel_data.load(client)
    for path in ("/dashboard/leads", f"/dashboard/leads/{ids['ana@example.com']}"):
        assert (await anon_client.get(path)).status_code == 303
    assert (await anon_client.get("/dashboard/export/leads.csv")).status_code == 303
    await _sign_in(anon_client)
    page = (await anon_client.get("/dashboard")).text
    link = re.search(r'<tr data-stage="3">\s*<td><a href="([^"]+)"', page)
    assert link and link.group(1) == "/dashboard/leads?min_stage=3"
    people = (await anon_client.get("/dashboard/leads", params={"min_stage": 3})).text
    shown = set(re.findall(r'<tr data-lead-id="(\d+)">', people))
    api = (await client.get("/leads", params={"min_stage": 3})).json()["items"]
    assert shown == {str(lead["id"]) for lead in api}
    assert "reached stage 3 (attended)" in people
    csv_text = (await anon_client.get("/dashboard/export/leads.csv?min_stage=3")).text
    assert csv_text == (await client.get("/export/leads.csv?min_stage=3")).text
    lead = (await anon_client.get(f"/dashboard/leads/{ids['ana@example.com']}")).text
    assert lead.count('data-kind="event"') == 5
    assert lead.count('data-kind="conversion"') == 1
    assert "Núñez" in lead
    assert (await anon_client.get("/dashboard/leads/999999")).status_code == 404


async def test_each_median_says_what_it_counts(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    """Issue 18, point 16: two medians of different things must not read as one."""
    await funnel_data.load(client)
    await _sign_in(anon_client)
    page = (await anon_client.get("/dashboard")).text
    labels = re.findall(r"<dt[^>]*>([^<]*[Mm]edian[^<]*)</dt>", page)
    assert len(labels) == 2 and len(set(labels)) == 2
    assert "per conversion" in labels[0] and "per lead" in labels[1]


def test_long_periods_say_how_many_weeks_are_cut_and_show_years() -> None:
    """Issue 18, point 13: years on the week axis, a note when older weeks are left out."""
    from datetime import date, timedelta

    from signup_sync.dashboard.charts import conversions_chart, weekly_chart
    from signup_sync.dashboard.service import MAX_WEEKS

    first = date(2024, 1, 1)
    leads = {first + timedelta(weeks=n): 50 for n in range(MAX_WEEKS + 10)}
    weeks = fill_weeks(leads, {first + timedelta(weeks=MAX_WEEKS + 9): 1})
    assert weeks.cut_weeks == 10 and len(weeks.points) == MAX_WEEKS
    svg = str(weekly_chart(weeks.points))
    assert re.findall(r">(\d{4})<", svg) == ["2024", "2025"]  # the first label, each new year
    # One conversion beside 50 leads a week still has a bar of the full height of its axis.
    converted = fill_weeks({first: 50}, {first: 1}, converted_of_new={first: 1}).points
    chart = str(conversions_chart(converted))
    heights = [
        float(h)
        for h in re.findall(r'<rect [^>]*height="([0-9.]+)" fill="#1f5fa8"><title>week', chart)
    ]
    assert heights and heights[0] > 100
    assert "<polyline" in chart and converted[0].conversion_rate == 0.02


async def test_every_model_side_by_side_and_the_period_before(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    """Issue 18, point 14: one table group x model, and deltas against the period before."""
    await funnel_data.load(client)
    await _sign_in(anon_client)
    every = (await anon_client.get("/dashboard", params={"group_by": "source_type"})).text
    models = re.search(r'<table id="models">(.*?)</table>', every, re.S)
    assert models
    for model in AttributionModel:
        api = (
            await client.get(
                "/analytics/funnel-metrics",
                params={"group_by": "source_type", "model": model.value},
            )
        ).json()
        for group in api["groups"]:
            tag = f'<tr data-credited-group="{group["group"] or ""}">'
            row = re.search(rf"{re.escape(tag)}(.*?)</tr>", models.group(1), re.S)
            assert row, group
            shown = re.search(rf'data-model="{model.value}" data-value="([^"]+)"', row.group(1))
            assert shown and float(shown.group(1)) == group["attributed_conversions"]
    assert "0.5" in models.group(1)  # a credit shared between two touches, under some model
    # July-August against May-June (the same 62 days one period earlier).
    params = {"start_date": "2026-07-01", "end_date": "2026-08-31"}
    page = (await anon_client.get("/dashboard", params=params)).text
    now = (await client.get("/analytics/funnel-metrics", params=params)).json()
    before = (
        await client.get(
            "/analytics/funnel-metrics",
            params={"start_date": "2026-04-30", "end_date": "2026-06-30"},
        )
    ).json()
    row = re.search(r'<tr data-field="leads" ([^>]*)>', page)
    assert row
    assert f'data-now="{now["total_leads"]}"' in row.group(1)
    assert f'data-before="{before["total_leads"]}"' in row.group(1)
    assert f'data-delta="{now["total_leads"] - before["total_leads"]}"' in row.group(1)
    # Without a window there is nothing to compare with, and the page says how to get one.
    plain = (await anon_client.get("/dashboard")).text
    assert "Choose both dates to compare" in plain
