"""Schemathesis fuzzes the whole API from its own OpenAPI document, on a running server.

CI runs a bounded number of examples per operation; for a longer local run:
    SIGNUP_SYNC_FUZZ_EXAMPLES=500 .venv/bin/python -m pytest tests/test_fuzz_api.py

Checked: no 5xx, documented status codes, content types, headers and response schemas,
auth enforced, invalid data rejected. Not checked: `positive_data_acceptance`, because some
schema-valid values are rightly refused (an email the schema calls a string but that is
not an address, 2026-02-30 as a date, a time more than a day in the future); and not
`use_after_free`, because `DELETE /sources/{id}` deactivates a source by design (the
source stays readable so that it can be reactivated).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import run_server

# A 500 in uvicorn's access line or in ours; not a duration such as "duration_ms": 500.39.
SERVER_ERROR = re.compile(r'" 500\b|"status": 500\b')

# Minutes under load: in the full run (CI), not in `-m "not slow"`.
pytestmark = pytest.mark.slow
EXAMPLES = os.environ.get("SIGNUP_SYNC_FUZZ_EXAMPLES", "25")
WRITE_KEY = "fuzz-write-key-0001"


def _schemathesis() -> list[str]:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "schemathesis.cli"]


def _run(url: str, *auth: str, cwd: Path, workers: int = 2) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *_schemathesis(),
            "run",
            f"{url}/openapi.json",
            *auth,
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance,use_after_free",
            "--max-examples",
            EXAMPLES,
            "--workers",
            str(workers),
            "--seed",
            "20261130",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


def test_fuzz_tracking_api_with_a_write_key(engine, database_url: str, tmp_path: Path) -> None:
    """The /v1 (Segment spec) operations take the write key as the Basic-auth user name."""
    env = {"SEGMENT_WRITE_KEYS": WRITE_KEY}
    with run_server(database_url, tmp_path, extra_env=env) as server:
        # One worker: the Segment bodies are free-form JSON, whose recursive strategies
        # sometimes crash Python's ast module when two hypothesis threads build them at once
        # ("AST constructor recursion depth mismatch"), a tool error and not a finding.
        result = _run(
            server.url,
            "--include-path-regex",
            "^/v1/",
            "--auth",
            f"{WRITE_KEY}:",
            cwd=tmp_path,
            workers=1,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-6000:]
        assert not SERVER_ERROR.search(server.logs())


# A Posh.VIP export sent as a text/csv body is a file: any bytes are a (bad or good) export,
# answered by the sync's own result. Schemathesis's "string became null" mutation sends the
# bytes `null`, which is such a file, not a request that violates the schema.
FILE_BODY_CONFIG = """
[checks]
positive_data_acceptance.enabled = false
use_after_free.enabled = false

[[operations]]
include-path-regex = "^/sync/"
include-method = "POST"
checks.negative_data_rejection.enabled = false
"""


def test_fuzz_whole_api(engine, database_url: str, tmp_path: Path) -> None:
    (tmp_path / "schemathesis.toml").write_text(FILE_BODY_CONFIG)
    with run_server(database_url, tmp_path) as server:
        result = subprocess.run(
            [
                *_schemathesis(),
                "run",
                f"{server.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {server.token}",
                # /v1 takes a write key, not this token: fuzzed above with one worker.
                "--exclude-path-regex",
                "^/v1/",
                # Checks: all but two, set in FILE_BODY_CONFIG (the CLI's --checks would
                # override its per-operation setting).
                "--max-examples",
                EXAMPLES,
                # One worker: hypothesis on Python 3.11 crashed in ast.parse with two threads.
                "--workers",
                "1",
                "--seed",
                "20261130",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-6000:]
        assert not SERVER_ERROR.search(server.logs())


# Values at and past every documented limit (bounds.py): the range's own edges, the instants
# that overflow when converted to UTC, and what datetime cannot hold at all.
BOUNDARY_TIMES = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00",
    "1899-12-31T23:59:59Z",
    "1900-01-01T00:00:00Z",
    "2999-12-31T23:59:59.999999Z",
    "3000-01-01T00:00:00Z",
    "9999-12-31T23:59:59-05:00",
    "9999-12-31T23:59:59.999999+00:00",
]
BOUNDARY_QUERY: dict[str, list[Any]] = {
    "start_date": ["0001-01-01", "1899-12-31", "1900-01-01", "9999-12-31", *BOUNDARY_TIMES],
    "end_date": ["0001-01-01", "2999-12-31", "3000-01-01", "9999-12-31", *BOUNDARY_TIMES],
    "bins": ["1,99999999999999999999999", "0", "1,401768", "1,401769", "-1", "1," * 40],
    "cursor": [
        base64.urlsafe_b64encode(json.dumps(c).encode()).decode().rstrip("=")
        for c in (
            {"s": "-first_seen_at", "k": "2026-01-01T00:00:00+00:00", "i": 2**70},
            {"s": "-first_seen_at", "k": "9999-12-31T23:59:59-05:00", "i": 1},
            {"s": "stage", "k": 2**70, "i": 1},
        )
    ],
    "timezone": ["A" * 256, "../../etc/passwd", "Etc/GMT+12"],
    "limit": [0, 2**63, 2**70, -(2**70)],
}


def with_boundary_examples(schema: Any) -> Any:
    """The OpenAPI document with the boundary values as examples of every date-time field
    and of the query parameters that parse numbers, dates, cursors and zone names."""
    if isinstance(schema, list):
        return [with_boundary_examples(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: with_boundary_examples(value) for key, value in schema.items()}
    if out.get("format") == "date-time":
        out["examples"] = BOUNDARY_TIMES
    if out.get("in") == "query" and out.get("name") in BOUNDARY_QUERY:
        values = BOUNDARY_QUERY[str(out["name"])]
        out["examples"] = {f"edge{i}": {"value": v} for i, v in enumerate(values)}
    return out


def test_fuzz_boundary_values(engine, database_url: str, tmp_path: Path) -> None:
    """The examples phase sends each boundary value; the coverage phase adds the edges of
    every declared minimum/maximum/length. Nothing may answer 5xx."""
    with run_server(database_url, tmp_path, extra_env={"SEGMENT_WRITE_KEYS": WRITE_KEY}) as server:
        document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
        path = tmp_path / "openapi-boundaries.json"
        path.write_text(json.dumps(with_boundary_examples(document)))
        result = subprocess.run(
            [
                *_schemathesis(),
                "run",
                str(path),
                "--url",
                server.url,
                "--header",
                f"Authorization: Bearer {server.token}",
                "--exclude-path-regex",
                "^/v1/",
                "--phases",
                "examples,coverage",
                "--checks",
                "not_a_server_error",
                "--workers",
                "1",
                "--seed",
                "20261208",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-6000:]
        logs = server.logs()
        assert not SERVER_ERROR.search(logs)
        # The edges reached the parsers: some were refused as outside the range.
        assert '"status": 422' in logs
