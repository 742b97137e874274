"""The README and docs/connectors.md keep up with the code they describe."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from signup_sync import sources
from signup_sync.cli import app
from signup_sync.sync.schemas import SyncRequest

ROOT = Path(__file__).resolve().parent.parent


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = text.find("\n## ", start + len(heading))
    return text[start : following if following != -1 else None]


@pytest.mark.parametrize("source_type", sorted(sources.REGISTRY))
def test_connectors_doc_lists_every_config_key(source_type: str) -> None:
    doc = (ROOT / "docs" / "connectors.md").read_text()
    section = _section(doc, f"## {source_type}\n")
    documented = set(re.findall(r"`([a-z_0-9]+)`", section))
    keys = set(sources.REGISTRY[source_type].config_model.model_fields)
    assert keys <= documented, f"undocumented {source_type} keys: {sorted(keys - documented)}"


def test_readme_documents_syncs_sources_cli_dashboard_and_demo() -> None:
    readme = (ROOT / "README.md").read_text()
    for endpoint in ("POST /sync/{", "POST /sync/all", "/sync/status/{source_type}", "/sources"):
        assert endpoint in readme, endpoint
    for field in SyncRequest.model_fields:
        assert f"`{field}`" in readme, field
    commands = set(getattr(typer.main.get_command(app), "commands", {}))
    for command in ("sync", "sources", "scheduler", "import-csv", "demo"):
        assert command in commands
        assert f"signup-sync {command}" in readme, command
    assert "/dashboard" in readme and "docs/connectors.md" in readme
    demo = _section(readme, "## See a living dashboard")
    assert (
        demo.index("signup-sync demo") < demo.index("signup-sync serve") < demo.index("/dashboard")
    )
