"""The benchmark suite still runs end to end (tiny sizes, one run): it cannot rot unnoticed.

No timing is asserted: only that every measure produced a row and the table was written.
Needs the local PostgreSQL, wrk and dlt[postgres] (scripts/install-bench-deps.sh).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]


def _missing() -> list[str]:
    missing = [] if shutil.which("wrk") else ["wrk"]
    missing += [m for m in ("dlt", "psycopg2") if importlib.util.find_spec(m) is None]
    return missing


def test_smoke_run_writes_every_row(tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        message = f"benchmark tools missing: {missing}; run scripts/install-bench-deps.sh"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    output = tmp_path / "BENCHMARKS.md"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    text = output.read_text()
    assert "<!-- bench:results:start -->" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    measures = [r for r in rows if not r.startswith("| measure")]
    assert len(measures) == 8, text
    assert "python -m bench --smoke" in text
