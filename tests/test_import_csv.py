"""CSV import: ``POST /import/csv`` and ``signup-sync import-csv``, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from signup_sync.cli import app as cli_app
from signup_sync.db.models import FunnelEvent, Lead
from signup_sync.db.session import create_engine, create_session_factory
from signup_sync.settings import load_settings
from tests.conftest import run_async, truncate_all

MANUAL = (
    "\ufeffE-mail,First Name,Last Name,Phone,Company,Date,utm_source,UTM Campaign,Notes\r\n"
    "ana@example.com,Ana,López,,Acme,2024-06-18 19:42,Newsletter,Spring,met at fair\r\n"
    "ANA@example.com ,Ana,López,,Acme,2024-06-18 19:42,newsletter,spring,\r\n"  # same person
    "not-an-email,Bad,Email,,,2024-06-18,,,\r\n"
    ",Sam,O'Neil,(305) 555-0188,,2024-06-19,,,\r\n"  # phone-only
    ",No,Contact,,,2024-06-19,,,\r\n"
    ",Bad,Phone,12,,2024-06-19,,,\r\n"
    "zoe@example.com,Zoë 🎉,周,,,yesterday-ish,,,\r\n"
    "future@example.com,Fu,Ture,,,2999-01-01,,,\r\n"
    ",,,,,,,,\r\n"  # blank line: skipped, still numbered
    "li@example.cn,李,小龍,,,06/20/2024 9:15 PM,,,\r\n"
)
EXPECTED = [
    {"row": 2, "status": "accepted"},
    {"row": 3, "status": "duplicate"},
    {"row": 4, "status": "rejected", "field": "email"},
    {"row": 5, "status": "accepted"},
    {"row": 6, "status": "rejected", "field": "email"},
    {"row": 7, "status": "rejected", "field": "phone"},
    {"row": 8, "status": "rejected", "field": "occurred_at"},
    {"row": 9, "status": "rejected", "field": "occurred_at"},
    {"row": 11, "status": "accepted"},
]


def brief(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        item = {"row": r["row"], "status": r["status"]}
        if r["errors"]:
            item["field"] = r["errors"][0]["field"]
        out.append(item)
    return out


async def events(engine: AsyncEngine) -> list[FunnelEvent]:
    async with create_session_factory(engine)() as session:
        return list((await session.execute(select(FunnelEvent).order_by(FunnelEvent.id))).scalars())


async def leads(engine: AsyncEngine) -> list[Lead]:
    async with create_session_factory(engine)() as session:
        return list((await session.execute(select(Lead).order_by(Lead.id))).scalars())


async def post_csv(client: httpx.AsyncClient, body: str | bytes, **params: str) -> httpx.Response:
    return await client.post(
        "/import/csv",
        content=body.encode() if isinstance(body, str) else body,
        params=params,
        headers={"Content-Type": "text/csv"},
    )


async def test_manual_import_reports_every_row(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    r = await post_csv(client, MANUAL, source_type="manual", timezone="America/New_York")
    assert r.status_code == 200, r.text
    body = r.json()
    assert brief(body["results"]) == EXPECTED
    assert (body["rows"], body["accepted"], body["duplicates"], body["rejected"]) == (9, 3, 1, 5)
    assert body["event_type"] == "lead_captured"
    assert (
        body["columns"]["E-mail"] == "email" and body["columns"]["UTM Campaign"] == "utm_campaign"
    )
    reasons = {r["row"]: r["errors"][0]["message"] for r in body["results"] if r["errors"]}
    assert "not a valid email" in reasons[4]
    assert reasons[6] == "each row needs an email or a phone"
    assert "not a valid phone number" in reasons[7]
    assert reasons[8].startswith("column 'Date':")
    assert "future" in reasons[9]

    stored = await events(engine)
    assert len(stored) == 3
    ana = stored[0]
    assert ana.event_type == "lead_captured" and ana.source_type == "manual"
    assert ana.occurred_at == datetime(2024, 6, 18, 23, 42, tzinfo=UTC)  # EDT -> UTC
    assert (ana.utm_source, ana.utm_campaign) == ("newsletter", "spring")
    assert (ana.event_metadata or {})["columns"] == {"Notes": "met at fair"}
    assert (ana.event_metadata or {})["csv_row"] == 2
    assert ana.external_id is not None and ana.external_id.startswith("csv:")
    people = {lead.email or lead.phone_e164: lead for lead in await leads(engine)}
    assert set(people) == {"ana@example.com", "+13055550188", "li@example.cn"}
    assert people["ana@example.com"].last_name == "López"
    assert (people["li@example.cn"].first_name, people["li@example.cn"].last_name) == ("李", "小龍")
    assert people["li@example.cn"].first_seen_at == datetime(2024, 6, 21, 1, 15, tzinfo=UTC)

    again = (
        await post_csv(client, MANUAL, source_type="manual", timezone="America/New_York")
    ).json()
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 4, 5)
    assert len(await events(engine)) == 3


async def test_multipart_upload_with_a_mapping_and_an_id_column(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = (
        "Ref ID;Correo;Nombre;Alta;Invited By\n"
        "R-1;pia@example.com;Pía Núñez;2024-06-01T10:00:00+02:00;ana@example.com\n"
        "R-2;leo@example.com;Leo 🚀;2024-06-02;\n"
    ).encode()
    mapping = {"Correo": "email", "Nombre": "name", "Alta": "occurred_at", "Ref ID": "external_id"}
    r = await client.post(
        "/import/csv",
        files={"file": ("referrals.csv", data, "text/csv")},
        data={"source_type": "referral", "columns": json.dumps(mapping)},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["rejected"], body["event_type"]) == (2, 0, "referral_received")
    assert [x["external_id"] for x in body["results"]] == ["R-1", "R-2"]
    stored = {e.external_id: e for e in await events(engine)}
    assert stored["R-1"].occurred_at == datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
    assert (stored["R-1"].event_metadata or {})["columns"] == {"Invited By": "ana@example.com"}
    pia = next(lead for lead in await leads(engine) if lead.email == "pia@example.com")
    assert (pia.first_name, pia.last_name) == ("Pía", "Núñez")
    # Same ids again, even with changed content: nothing new.
    r = await client.post(
        "/import/csv",
        files={"file": ("referrals.csv", data.replace(b"Leo", b"Leonardo"), "text/csv")},
        data={"source_type": "referral", "columns": json.dumps(mapping)},
    )
    assert (r.json()["accepted"], r.json()["duplicates"]) == (0, 2)


async def test_default_event_type_per_source_and_override(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    data = "email,created_at\nnew@example.com,2024-06-01\n"
    r = await post_csv(client, data, source_type="direct_signup")
    assert r.json()["event_type"] == "signup_completed" and r.json()["accepted"] == 1
    r = await post_csv(client, data, source_type="direct_signup", event_type="signup_started")
    assert r.json()["accepted"] == 1  # another event type is another event
    per_row = "email,event_type\nx@example.com,webinar_attended\ny@example.com,lunch\n"
    r = await post_csv(client, per_row, source_type="zoom")
    assert brief(r.json()["results"]) == [
        {"row": 2, "status": "accepted"},
        {"row": 3, "status": "rejected", "field": "event_type"},
    ]
    types = sorted(e.event_type for e in await events(engine))
    assert types == ["signup_completed", "signup_started", "webinar_attended"]


async def test_phone_only_row_then_email_row_join(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await post_csv(client, "Phone,Name\n+1 305 555 0188,Sam\n", source_type="manual")
    r = await post_csv(
        client, "Email,Mobile\nsam@example.com,305-555-0188\n", source_type="direct_signup"
    )
    assert r.json()["accepted"] == 1
    [lead] = await leads(engine)
    assert (lead.email, lead.phone_e164, lead.first_name) == (
        "sam@example.com",
        "+13055550188",
        "Sam",
    )
    assert lead.stage == 5


async def test_bad_files_and_options_are_422_naming_the_problem(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"body": '{"email": "a@example.com"}'}, "file", "looks like JSON"),
        ({"body": "Name,Company\nAna,Acme\n"}, "file", "no email or phone column"),
        ({"body": b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00"}, "file", "not a UTF-8 text file"),
        ({"body": ""}, "file", "empty"),
        ({"source_type": None}, "source_type", "Field required"),
        ({"source_type": "fax"}, "source_type", "Input should be"),
        ({"event_type": "lunch"}, "event_type", "Input should be"),
        ({"columns": "{not json"}, "columns", "JSON object"),
        ({"columns": '{"Correo": "email"}'}, "file", "no column 'correo'"),
        ({"columns": '{"email": "shoe_size"}'}, "file", "unknown field 'shoe_size'"),
        ({"timezone": "Mars/Base"}, "timezone", "unknown time zone"),
    ]
    for change, field, message in cases:
        params = {"source_type": "manual", **change}
        body = params.pop("body", "email\na@example.com\n")
        r = await post_csv(client, body, **{k: v for k, v in params.items() if v is not None})
        assert r.status_code == 422, (change, r.text)
        payload = r.json()
        assert payload["errors"][0]["field"] == field, (change, payload)
        assert message in payload["detail"], (change, payload)
    r = await client.post("/import/csv", files={"other": ("x.csv", b"email\n")}, data={})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    assert await events(engine) == []


async def test_import_needs_a_token(anon_client: httpx.AsyncClient) -> None:
    r = await anon_client.post("/import/csv?source_type=manual", content=b"email\na@example.com\n")
    assert r.status_code == 401


def _cli_env(database_url: str) -> dict[str, str]:
    return {"ENGARDE_DATABASE_URL": database_url, "AUTO_MIGRATE": "false"}


async def _count(database_url: str) -> tuple[int, int, list[str | None]]:
    engine = create_engine(load_settings(database_url=database_url))
    try:
        async with create_session_factory(engine)() as session:
            n_events = len((await session.execute(select(FunnelEvent.id))).all())
            emails = [r[0] for r in (await session.execute(select(Lead.email))).all()]
            return n_events, len(emails), sorted(emails, key=str)
    finally:
        await engine.dispose()


async def _truncate(database_url: str) -> None:
    engine = create_engine(load_settings(database_url=database_url))
    try:
        await truncate_all(engine)
    finally:
        await engine.dispose()


def test_cli_import_csv(database_url: str, tmp_path: Path) -> None:
    """Runs the real command (its own event loop) against each backend."""
    run_async(_truncate(database_url))
    path = tmp_path / "leads.csv"
    path.write_text(
        "Correo,Name,Phone,Date\n"
        "ana@example.com,Ana López,,2024-06-18\n"
        ",Sam,+1 305 555 0188,2024-06-19\n"
        "broken,Bad,,2024-06-19\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    args = ["import-csv", str(path), "--source", "manual", "--map", "Correo=email"]
    result = runner.invoke(cli_app, [*args, "--json"], env=_cli_env(database_url))
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 1)
    assert body["results"][2]["row"] == 4 and body["results"][2]["errors"][0]["field"] == "email"
    assert run_async(_count(database_url)) == (2, 2, [None, "ana@example.com"])

    again = runner.invoke(
        cli_app, [*args, "--event-type", "lead_captured"], env=_cli_env(database_url)
    )
    assert again.exit_code == 0, again.output
    assert "0 accepted" in again.output and "2 duplicates" in again.output
    assert "row 4: email:" in again.output
    assert run_async(_count(database_url))[0] == 2

    names = tmp_path / "names.csv"
    names.write_text("Name,Company\nAna,Acme\n", encoding="utf-8")
    bad = runner.invoke(
        cli_app, ["import-csv", str(names), "--source", "manual"], env=_cli_env(database_url)
    )
    assert bad.exit_code == 1
    assert "no email or phone column" in bad.output
    wrong = runner.invoke(cli_app, [*args, "--map", "nonsense"], env=_cli_env(database_url))
    assert wrong.exit_code == 2 and "COLUMN=FIELD" in wrong.output


def test_cli_import_csv_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    """The embedded default: the command creates and migrates the database file itself."""
    path = tmp_path / "signups.csv"
    path.write_text("email\nnew@example.com\n", encoding="utf-8")
    db = tmp_path / "fresh.db"
    env = {"ENGARDE_DATABASE_URL": f"sqlite:///{db}"}
    result = CliRunner().invoke(
        cli_app, ["import-csv", str(path), "--source", "direct_signup", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["event_type"] == "signup_completed"
    assert run_async(_count(f"sqlite:///{db}")) == (1, 1, ["new@example.com"])


OVERLONG = (
    "Email,Name,Date\n"
    "ana@example.com,Ana,2024-06-18\n"
    "sam@example.com,O'Neil, Sam,2024-06-19\n"  # an unquoted comma: one cell too many
    "zoe@example.com,Zoë,2024-06-20,\n"  # a trailing empty cell is harmless
)


async def test_a_row_with_more_cells_than_the_header_is_rejected(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    r = await post_csv(client, OVERLONG, source_type="manual")
    assert r.status_code == 200, r.text
    body = r.json()
    assert brief(body["results"]) == [
        {"row": 2, "status": "accepted"},
        {"row": 3, "status": "rejected", "field": "row"},
        {"row": 4, "status": "accepted"},
    ]
    assert "4 cells but the header has 3" in body["results"][1]["errors"][0]["message"]
    assert sorted(str(lead.email) for lead in await leads(engine)) == [
        "ana@example.com",
        "zoe@example.com",
    ]


def test_cli_summary_on_stdout_and_strict(database_url: str, tmp_path: Path) -> None:
    """The summary is on stdout; --strict exits 1 on a rejected row but imports the rest."""
    run_async(_truncate(database_url))
    path = tmp_path / "overlong.csv"
    path.write_text(OVERLONG, encoding="utf-8")
    runner = CliRunner()
    args = ["import-csv", str(path), "--source", "manual"]
    plain = runner.invoke(cli_app, args, env=_cli_env(database_url))
    assert plain.exit_code == 0, plain.output
    assert "3 rows -> 2 accepted, 0 duplicates, 1 rejected" in plain.stdout
    assert "row 3: row: the row has 4 cells but the header has 3" in plain.stdout
    assert run_async(_count(database_url))[0] == 2

    strict = runner.invoke(cli_app, [*args, "--strict"], env=_cli_env(database_url))
    assert strict.exit_code == 1
    assert "0 accepted, 2 duplicates, 1 rejected" in strict.stdout
    assert "--strict: 1 row(s) rejected" in strict.stderr

    as_json = runner.invoke(cli_app, [*args, "--strict", "--json"], env=_cli_env(database_url))
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["rejected"] == 1  # stdout stays pure JSON

    clean = tmp_path / "clean.csv"
    clean.write_text("Email\nnew@example.com\n", encoding="utf-8")
    ok = runner.invoke(
        cli_app,
        ["import-csv", str(clean), "--source", "manual", "--strict"],
        env=_cli_env(database_url),
    )
    assert ok.exit_code == 0, ok.output
    assert "1 accepted" in ok.stdout
