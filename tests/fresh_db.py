"""A database of its own for tests that change the schema (rename a table, leave it behind)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import PG_URL, _create_database, _drop_database, _with_database, run_async


@contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables) of ``backend``, dropped afterwards; yields its URL."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / f'fresh-{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"signup_sync_fresh_{uuid.uuid4().hex[:12]}"
    run_async(_create_database(name))
    try:
        yield _with_database(PG_URL, name)
    finally:
        run_async(_drop_database(name))
