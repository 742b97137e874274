"""The ``signup-sync`` command line."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from signup_sync import __version__, cli_sources, cli_sync
from signup_sync.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from signup_sync.imports.schemas import ImportOptions, ImportOut, RowResult
    from signup_sync.imports.service import Chunk


KEEP_ALIVE_SECONDS = 75
app = typer.Typer(help="SignUp_Sync: multi-source funnel tracking.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(cli_sources.sources_app, name="sources")
app.command("sync")(cli_sync.sync_command)
app.command("scheduler")(cli_sync.scheduler_command)
app.command("worker")(cli_sync.worker_command)
console = Console(stderr=True, soft_wrap=True)
# Results a script reads (import-csv's summary) go to stdout; progress and errors to stderr.
out = Console(soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"signup-sync {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """SignUp_Sync: multi-source funnel tracking."""


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails the way uvicorn's own bind would (same options)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _port_taken(host: str, port: int) -> typer.Exit:
    console.print(
        f"Port {port} on {host} is already in use: stop the other server "
        "or choose another with --port or PORT.",
        markup=False,
        highlight=False,
    )
    return typer.Exit(code=1)


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

    from signup_sync.app import TOKEN_ENV, generate_token
    from signup_sync.db.health import SchemaState, schema_state
    from signup_sync.db.session import create_engine
    from signup_sync.upgrade import upgrade as upgrade_schema

    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    # Before anything is printed or migrated: a second `serve` must not look like it started.
    if port_in_use(host, port):
        raise _port_taken(host, port)
    generated = not settings.service_tokens
    if generated:
        # Set before the workers start so that every worker accepts the same token.
        os.environ[TOKEN_ENV] = generate_token()
    token = os.environ[TOKEN_ENV].split(",")[0].strip() if generated else None

    async def _schema() -> SchemaState | None:
        engine = create_engine(settings)
        try:
            if settings.should_auto_migrate:
                await upgrade_schema(engine)  # PostgreSQL: under the advisory lock
                return None
            try:
                return await schema_state(engine)
            except Exception:  # unreachable now: start anyway, /health says why (503)
                return None
        finally:
            await engine.dispose()

    state = asyncio.run(_schema())
    if state is not None and state.behind:
        # AUTO_MIGRATE=false: the operator migrates; serving now would answer 500s.
        console.print(
            f"Not starting: the database {state.describe()} (AUTO_MIGRATE=false)", markup=False
        )
        raise typer.Exit(code=1)

    from signup_sync.exposition import prepare_multiprocess_dir

    # Several workers share one /metrics view through files (prometheus_client multiprocess).
    metrics_dir = prepare_multiprocess_dir(1 if reload else workers)

    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    console.print(f"\n  SignUp_Sync on [bold]http://{shown_host}:{port}[/bold]  (docs: /docs)")
    console.print(f"  Database: {'SQLite (embedded)' if settings.is_sqlite else 'PostgreSQL'}")
    if token:
        console.print(f"  Token (generated for this run): [bold]{token}[/bold]")
        console.print("  Set SIGNUP_SYNC_SERVICE_TOKEN to keep a fixed token.")
    else:
        console.print("  Token: the one(s) in SIGNUP_SYNC_SERVICE_TOKEN")
    if metrics_dir:
        console.print(
            f"  Metrics: /metrics sums the workers (PROMETHEUS_MULTIPROC_DIR={metrics_dir})"
        )
    console.print(
        f"  Try: curl -H 'Authorization: Bearer {token or '<token>'}' "
        f"http://{shown_host}:{port}/analytics/funnel-metrics\n"
    )
    try:
        _run_uvicorn(host, port, workers, reload)
    except SystemExit as exc:
        # Taken between the check and uvicorn's bind: uvicorn exits with its startup-failure
        # code; say the one plain line instead.
        if exc.code not in (None, 0) and port_in_use(host, port):
            raise _port_taken(host, port) from None
        raise


def _run_uvicorn(host: str, port: int, workers: int, reload: bool) -> None:
    import uvicorn

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
        # Longer than the idle timeout of the proxies in front (Railway's and common load
        # balancers' 60 s): the client side closes an idle connection first, so no request
        # is ever sent on one we are closing (a reset, or a 502 from the proxy). Uvicorn's
        # default is 5 s.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        loop="auto",
        http="auto",
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply the database migrations."""
    from signup_sync.db import migrate
    from signup_sync.db.session import create_engine
    from signup_sync.upgrade import upgrade as upgrade_schema

    settings = _settings()

    async def _run() -> str | None:
        engine = create_engine(settings)
        try:
            await upgrade_schema(engine, revision)
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


@app.command("import-csv")
def import_csv_command(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file")
    ],
    source: Annotated[
        str, typer.Option("--source", help="Source type: manual, referral, direct_signup, ...")
    ],
    event_type: Annotated[
        str | None, typer.Option("--event-type", help="Default: per source (manual: lead_captured)")
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="COLUMN=FIELD (repeatable), e.g. --map 'Correo=email'"),
    ] = None,
    timezone: Annotated[str, typer.Option(help="Zone of dates without an offset")] = "UTC",
    region: Annotated[str, typer.Option(help="Country of phones written without +")] = "US",
    date_format: Annotated[
        str | None, typer.Option(help="strptime format, e.g. %d/%m/%Y (default ISO or US)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON")] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Exit 1 when any row is rejected (the valid rows are still imported)"
        ),
    ] = False,
) -> None:
    """Import funnel events from a CSV file (idempotent: re-importing adds nothing).

    The summary goes to stdout (with --json: only the JSON result); exit 0, or 1 when the
    file cannot be imported or, with --strict, when any row is rejected.
    """
    from signup_sync.errors import InvalidInput
    from signup_sync.imports.service import parse_options

    columns: dict[str, str] = {}
    for item in mapping or []:
        column, sep, field = item.rpartition("=")
        if not sep or not column.strip() or not field.strip():
            raise typer.BadParameter(f"{item!r}: write COLUMN=FIELD", param_hint="--map")
        columns[column.strip()] = field.strip()
    settings = _settings()
    try:
        options = parse_options(
            {
                "source_type": source,
                "event_type": event_type,
                "columns": columns,
                "timezone": timezone,
                "default_region": region,
                "date_format": date_format,
            }
        )
        result = asyncio.run(_import_file(settings, file, options))
    except InvalidInput as exc:
        console.print(f"[red]Import failed[/red] {exc.message}")
        raise typer.Exit(code=1) from None
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        _print_import(file, result)
    if strict and result.rejected:
        console.print(f"[red]--strict: {result.rejected} row(s) rejected[/red]")
        raise typer.Exit(code=1)


def _print_import(file: Path, result: ImportOut) -> None:
    out.print(
        f"{escape(file.name)}: {result.rows} rows -> [green]{result.accepted} accepted[/green], "
        f"{result.duplicates} duplicates, [red]{result.rejected} rejected[/red] "
        f"({result.source_type.value} / {result.event_type.value})"
    )
    for row in result.results:
        if row.status == "rejected":
            reasons = "; ".join(f"{e.field}: {e.message}" for e in row.errors)
            out.print(f"  row {row.row}: {reasons}", markup=False)


async def _import_file(settings: Settings, path: Path, options: ImportOptions) -> ImportOut:
    """Stream the file in chunks, committing each chunk (re-running resumes idempotently)."""
    from signup_sync.db.session import create_engine, create_session_factory, run_in_transaction
    from signup_sync.imports.service import import_chunk, open_csv, summarise
    from signup_sync.sources.csv_import import DEFAULT_CHUNK_ROWS, CsvFormatError, text_from_path
    from signup_sync.upgrade import upgrade as upgrade_schema

    engine = create_engine(settings)
    try:
        if settings.should_auto_migrate:
            await upgrade_schema(engine)
        factory = create_session_factory(engine)
        rows = open_csv(text_from_path(path), options)
        results: list[RowResult] = []
        try:
            while chunk := rows.chunk(DEFAULT_CHUNK_ROWS):

                async def work(session: AsyncSession, chunk: Chunk = chunk) -> list[RowResult]:
                    return await import_chunk(session, chunk, options, rows)

                results.extend(await run_in_transaction(factory, work))
        except CsvFormatError as exc:
            from signup_sync.errors import InvalidInput

            raise InvalidInput(f"Cannot import this file: {exc}", field="file") from None
        finally:
            rows.close()
        return summarise(options, rows, results)
    finally:
        await engine.dispose()


@app.command()
def demo(
    leads: Annotated[int, typer.Option(min=1, max=5_000_000, help="How many people")] = 3000,
    seed: Annotated[int, typer.Option(help="Same seed, same data")] = 42,
    reset: Annotated[
        bool, typer.Option(help="First delete earlier demo leads (emails ending .demo.example)")
    ] = False,
    end_date: Annotated[
        str | None, typer.Option(help="Last day of the data, YYYY-MM-DD (default today, UTC)")
    ] = None,
    days: Annotated[int, typer.Option(min=7, max=3650, help="Days of history")] = 182,
) -> None:
    """Fill the database with a realistic synthetic funnel across all seven sources.

    Written through the real ingestion path, so leads, stages and attribution are what a
    real sync would produce. Rerunning with the same options adds nothing new.
    """
    from datetime import UTC, date, datetime, time, timedelta

    from rich.progress import Progress
    from rich.table import Table

    from signup_sync import demo as demo_data
    from signup_sync.analytics.repository import CohortFilter
    from signup_sync.analytics.schemas import FunnelMetrics, GroupBy
    from signup_sync.analytics.service import funnel_metrics
    from signup_sync.db.session import create_engine, create_session_factory, unit_of_work
    from signup_sync.db.types import utcnow
    from signup_sync.demo_sources import add_demo_sources
    from signup_sync.upgrade import upgrade as upgrade_schema

    settings = _settings()
    end = None
    if end_date:
        try:
            day = date.fromisoformat(end_date)
        except ValueError:
            console.print("[red]--end-date[/red] must be YYYY-MM-DD")
            raise typer.Exit(code=2) from None
        end = datetime.combine(day, time(), tzinfo=UTC) + timedelta(days=1)

    async def _run() -> tuple[int, demo_data.StoreResult, FunnelMetrics]:
        engine = create_engine(settings)
        try:
            # Always: the demo writes to every table, so a database behind would crash it.
            await upgrade_schema(engine)
            factory = create_session_factory(engine)
            removed = 0
            if reset:
                async with unit_of_work(factory) as session:
                    removed = await demo_data.reset(session)
            totals = demo_data.StoreResult()
            people = demo_data.generate(leads, seed, end=end, days=days)
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("Writing demo leads", total=leads)
                for batch in demo_data.batches(people):
                    async with unit_of_work(factory) as session:
                        totals.add(await demo_data.store(session, batch))
                    progress.advance(task, len(batch))
            async with unit_of_work(factory) as session:
                # Inactive source rows with a last sync: the dashboard's sync panel.
                await add_demo_sources(
                    session, min(end or utcnow(), utcnow()), demo_data.DEMO_EMAIL_SUFFIX
                )
            async with factory() as session:
                metrics = await funnel_metrics(session, CohortFilter(), GroupBy.SOURCE_TYPE)
            return removed, totals, metrics
        finally:
            await engine.dispose()

    removed, totals, metrics = asyncio.run(_run())
    if reset:
        console.print(f"Removed {removed:,} earlier demo leads")
    console.print(
        f"Demo data (seed {seed}): {totals.events_accepted:,} events stored, "
        f"{totals.events_duplicate:,} already there; {totals.conversions_recorded:,} "
        f"conversions recorded, {totals.conversions_duplicate:,} already there"
    )
    table = Table(title="Leads by first-touch source (whole database)")
    for column in ("source", "leads", "converted", "rate"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for group in metrics.groups:
        table.add_row(
            group.group or "(none)",
            f"{group.leads:,}",
            f"{group.conversions:,}",
            f"{group.conversion_rate:.1%}",
        )
    console.print(table)
    console.print(
        f"See it: run `signup-sync serve`, open http://127.0.0.1:{settings.port}/dashboard "
        "and sign in with the service token."
    )


@app.command()
def token() -> None:
    """Print a new random service token."""
    from signup_sync.app import generate_token

    sys.stdout.write(generate_token() + "\n")


@app.command("secrets-key")
def secrets_key() -> None:
    """Print a new key for SIGNUP_SYNC_SECRETS_KEY (encrypts secret values of sources)."""
    from signup_sync.credentials.vault import new_key

    sys.stdout.write(new_key() + "\n")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
