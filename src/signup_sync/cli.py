"""The ``signup-sync`` command line."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Annotated

import typer
from rich.console import Console

from signup_sync import cli_sync
from signup_sync.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="SignUp_Sync: multi-source funnel tracking.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(cli_sync.sources_app, name="sources")
app.command("sync")(cli_sync.sync_command)
app.command("scheduler")(cli_sync.scheduler_command)
console = Console(stderr=True, soft_wrap=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        console.print(f"[red]Configuration error[/red] {exc}")
        raise typer.Exit(code=2) from None


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default HOST or 0.0.0.0)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PORT or 8001)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
) -> None:
    """Run the HTTP service (migrating the embedded SQLite database first)."""
    import uvicorn

    from signup_sync.app import TOKEN_ENV, generate_token
    from signup_sync.db import migrate
    from signup_sync.db.session import create_engine

    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    generated = not settings.service_tokens
    if generated:
        # Set before the workers start so that every worker accepts the same token.
        os.environ[TOKEN_ENV] = generate_token()
    token = os.environ[TOKEN_ENV].split(",")[0].strip() if generated else None

    if settings.should_auto_migrate:

        async def _migrate() -> None:
            engine = create_engine(settings)
            try:
                await migrate.upgrade(engine)
            finally:
                await engine.dispose()

        asyncio.run(_migrate())

    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    console.print(f"\n  SignUp_Sync on [bold]http://{shown_host}:{port}[/bold]  (docs: /docs)")
    console.print(f"  Database: {'SQLite (embedded)' if settings.is_sqlite else 'PostgreSQL'}")
    if token:
        console.print(f"  Token (generated for this run): [bold]{token}[/bold]")
        console.print("  Set SIGNUP_SYNC_SERVICE_TOKEN to keep a fixed token.")
    else:
        console.print("  Token: the one(s) in SIGNUP_SYNC_SERVICE_TOKEN")
    console.print(
        f"  Try: curl -H 'Authorization: Bearer {token or '<token>'}' "
        f"http://{shown_host}:{port}/analytics/funnel-metrics\n"
    )
    uvicorn.run(
        "signup_sync.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        loop="auto",
        http="auto",
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply the database migrations."""
    from signup_sync.db import migrate
    from signup_sync.db.session import create_engine

    settings = _settings()

    async def _run() -> str | None:
        engine = create_engine(settings)
        try:
            await migrate.upgrade(engine, revision)
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    current = asyncio.run(_run())
    console.print(f"Database at revision [bold]{current}[/bold]")


@db_app.command("current")
def db_current() -> None:
    """Show the database's revision and the newest one shipped."""
    from signup_sync.db import migrate
    from signup_sync.db.session import create_engine

    settings = _settings()

    async def _run() -> str | None:
        engine = create_engine(settings)
        try:
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    console.print(f"current: {asyncio.run(_run())}  head: {migrate.head_revision()}")


@app.command()
def token() -> None:
    """Print a new random service token."""
    from signup_sync.app import generate_token

    sys.stdout.write(generate_token() + "\n")


def main() -> None:
    app()
