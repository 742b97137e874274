"""Posh.VIP's documented export columns are the code's, and the sample export syncs cleanly."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from signup_sync.sources.poshvip import POSH_COLUMNS, REQUIRED

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "docs" / "examples" / "posh-export-sample.csv"
ROW = re.compile(r"^\| `(?P<column>\w+)` \| (?P<needed>[^|]+) \| (?P<headers>[^|]+) \|$", re.M)


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    """{column: (needed, other headers)} from the table in docs/connectors.md."""
    text = (ROOT / "docs" / "connectors.md").read_text(encoding="utf-8")
    section = text.split("### The export's columns", 1)[1].split("\n#", 1)[0]
    out = {}
    for match in ROW.finditer(section):
        headers = tuple(re.findall(r"`([^`]+)`", match["headers"]))
        out[match["column"]] = (match["needed"].strip(), headers)
    return out


def test_the_documented_columns_are_the_codes() -> None:
    doc = documented()
    assert {c: h for c, (_, h) in doc.items()} == POSH_COLUMNS
    assert [c for c, (n, _) in doc.items() if n == "required"] == list(REQUIRED)
    # The connector asks for at least one of these two (PoshvipConnector._check_columns).
    assert [c for c, (n, _) in doc.items() if n == "email or phone"] == ["email", "phone"]
    assert {n for n, _ in doc.values()} == {"required", "optional", "email or phone"}


async def test_the_sample_export_syncs_with_nothing_skipped(client: httpx.AsyncClient) -> None:
    r = await client.post("/sources", json={"source_type": "poshvip", "name": "Sample"})
    assert r.status_code == 201, r.text
    files = {"file": (SAMPLE.name, SAMPLE.read_bytes(), "text/csv")}
    r = await client.post("/sync/poshvip", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    assert (body["leads_processed"], body["leads_skipped"]) == (5, 0), body
    assert body["leads_created"] == 4, body  # Ren's two tickets are one person


async def test_a_row_with_more_cells_than_the_header_is_skipped(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/sources", json={"source_type": "poshvip", "name": "Sample"})
    assert r.status_code == 201, r.text
    # A cell past the header's last column: it would be dropped without a word.
    shifted = (
        "PSH-20009,,Rooftop Fridays,2024-06-21 22:00,Kim,Lee,kim@example.com,,GA,1,0,USD,"
        "approved,no,,,,2024-06-20 10:00,VIP table\r\n"
    )
    files = {"file": ("p.csv", SAMPLE.read_bytes() + shifted.encode(), "text/csv")}
    r = await client.post("/sync/poshvip", files=files)
    assert r.status_code == 200, r.text
    assert (r.json()["leads_processed"], r.json()["leads_skipped"]) == (6, 1), r.json()
