"""The Dockerfile and railway.json keep their promises (no Docker engine here: read them)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.12-slim" in text
    assert "USER app" in text
    assert "HEALTHCHECK" in text and "/health" in text
    cmd = next(line for line in text.splitlines() if line.startswith("CMD"))
    assert "signup-sync db upgrade" in cmd and "signup-sync serve" in cmd and "${PORT" in cmd


def test_railway_json() -> None:
    config = json.loads((ROOT / "railway.json").read_text())
    assert config["deploy"]["healthcheckPath"] == "/health"
    assert config["build"]["builder"] == "DOCKERFILE"
    assert (
        "$PORT" in config["deploy"]["startCommand"] or "${PORT" in config["deploy"]["startCommand"]
    )


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash\n")[1:3]]
    assert "signup-sync serve" in blocks[0]
    assert "pytest" in blocks[1]
    assert blocks[1] in (ROOT / ".ci" / "run").read_text()
