"""CLI commands of the sync engine: ``sync``, ``sources list|add|disable``, ``scheduler``.

The other ``sources`` commands (edit, enable, remove, check) are in ``cli_sources``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from signup_sync.bounds import DATE_RANGE, utc_in_range
from signup_sync.errors import DomainError
from signup_sync.settings import Settings, SettingsError, load_settings
from signup_sync.sources.access import SourceAccess
from signup_sync.sync.runner import Factory, SyncProgress
from signup_sync.sync.schemas import (
    SourceIn,
    SourceOut,
    SourceSyncResult,
    SyncAccepted,
    SyncRequest,
)

T = TypeVar("T")

sources_app = typer.Typer(help="Configured sources.", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"[red]Configuration error[/red] {exc}")
        raise typer.Exit(code=2) from None


def _run(settings: Settings, work: Callable[[Factory], Awaitable[T]]) -> T:
    """Open the database (migrating the embedded one), run ``work``, close; errors exit 2."""
    from signup_sync.db.session import create_engine, create_session_factory
    from signup_sync.upgrade import upgrade as upgrade_schema

    async def _main() -> T:
        engine = create_engine(settings)
        try:
            if settings.should_auto_migrate:
                await upgrade_schema(engine)
            return await work(create_session_factory(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(_main())
    except DomainError as exc:
        where = f" ({exc.field})" if exc.field else ""
        err.print(f"[red]Error{where}:[/red] {exc.message}")
        raise typer.Exit(code=2) from None


def _moment(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    try:
        return utc_in_range(datetime.fromisoformat(raw.strip()))
    except ValueError:
        err.print(
            f"[red]Error ({name}):[/red] expected YYYY-MM-DD or an ISO 8601 date-time "
            f"from {DATE_RANGE}"
        )
        raise typer.Exit(code=2) from None


RESULT_COLUMNS = (
    "Source", "Status", "Read", "New", "Updated", "Unchanged", "Skipped", "Errors",
    "Seconds", "Log",
)  # fmt: skip


def result_table(results: Sequence[SourceSyncResult]) -> Table:
    """One row per source; Read = New + Updated + Unchanged + Skipped, as the caption says."""
    table = Table(
        title="Sync result",
        caption="Read = New + Updated + Unchanged + Skipped. A record that failed to map is "
        "skipped; Errors counts problems (those records and run errors), not extra records.",
    )
    for column in RESULT_COLUMNS:
        table.add_column(column, justify="left" if column in ("Source", "Status") else "right")
    colours = {"success": "green", "partial": "yellow", "failed": "red", "skipped": "dim"}
    for r in results:
        # Tally.unchanged, from the same four numbers, so the row adds up by construction.
        unchanged = r.leads_processed - r.leads_created - r.leads_updated - r.leads_skipped
        table.add_row(
            f"{r.source_name} (#{r.source_id})",
            f"[{colours.get(r.status, 'white')}]{r.status}[/]",
            str(r.leads_processed),
            str(r.leads_created),
            str(r.leads_updated),
            str(unchanged),
            str(r.leads_skipped),
            str(r.errors_count),
            f"{r.duration_seconds or 0:.1f}",
            str(r.sync_log_id or "-"),
        )
    return table


class _BarOrSpinner(ProgressColumn):
    """A bar where the source said how many records there are, a spinner where it did not."""

    def __init__(self) -> None:
        super().__init__()
        self.bar, self.spinner = BarColumn(bar_width=30), SpinnerColumn()

    def render(self, task: Task) -> Any:
        return self.spinner.render(task) if task.total is None else self.bar.render(task)


class _Records(ProgressColumn):
    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text(f"{int(task.completed)} records")
        return Text(f"{int(task.completed)}/{int(task.total)} records")


class _Eta(ProgressColumn):
    """Time left, only where there is a total to measure it against."""

    def __init__(self) -> None:
        super().__init__()
        self.remaining = TimeRemainingColumn()

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        return Text.assemble("ETA ", self.remaining.render(task))


def sync_command(
    source_type: Annotated[str, typer.Argument(help="easyappointments, zoom, eventbrite, ...")],
    force: Annotated[bool, typer.Option("--force", help="ignore the cursor")] = False,
    since: Annotated[str | None, typer.Option(help="backfill from (ISO date/time, UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="backfill until (ISO date/time, UTC)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report, write nothing")] = False,
    source_id: Annotated[int | None, typer.Option(help="only this source")] = None,
    file: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="upload for file sources")
    ] = None,
) -> None:
    """Sync every active source of a type now, with live progress and a result table."""
    from signup_sync.logs import configure_logging
    from signup_sync.sync.service import sync_sources

    settings = _settings()
    # The progress display tells the story; logs only for what goes wrong.
    configure_logging(
        "warning" if settings.log_level == "info" else settings.log_level, settings.log_format
    )
    request = SyncRequest(
        force_sync=force,
        since=_moment(since, "since"),
        until=_moment(until, "until"),
        dry_run=dry_run,
        source_id=source_id,
    )
    upload = file.read_bytes() if file else None
    columns = (
        _BarOrSpinner(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.fields[pages]} pages"),
        _Records(),
        TextColumn("{task.fields[rate]:.0f} records/s"),
        TimeElapsedColumn(),
        _Eta(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        tasks: dict[int, TaskID] = {}

        def on_page(p: SyncProgress) -> None:
            if p.source_id not in tasks:
                tasks[p.source_id] = progress.add_task(p.source_name, total=None, pages=0, rate=0.0)
            # A total can trail the records read (a listing's count changed mid-run).
            total = None if p.total is None else max(p.total, p.records)
            progress.update(
                tasks[p.source_id],
                total=total,
                completed=p.records,
                pages=p.pages,
                rate=p.records_per_second,
            )

        result = _run(
            settings,
            lambda factory: sync_sources(
                factory, source_type, request, settings=settings, upload=upload, progress=on_page
            ),
        )
        assert not isinstance(result, SyncAccepted)
        with_total = {t.id for t in progress.tasks if t.total is not None}
        for done in result.summary.sources:
            task = tasks.get(done.source_id or 0)
            if task in with_total and done.status == "success":
                # Read to the end: what a total promised but a filter dropped is not left over.
                progress.update(task, total=done.leads_processed, completed=done.leads_processed)
    if result.summary.sources:
        out.print(result_table(result.summary.sources))
    for message in result.error_messages:
        out.print(f"[red]error[/red] {message}")
    out.print(f"{result.status}: {result.summary.message}")
    if dry_run:
        out.print("Dry run: nothing was written.")
    if result.status in ("partial", "failed"):
        raise typer.Exit(code=1)


def scheduler_command(
    once: Annotated[bool, typer.Option("--once", help="run the due syncs once and exit")] = False,
) -> None:
    """Run the daily schedule in this process (replicas coordinate through the database)."""
    from signup_sync.logs import configure_logging
    from signup_sync.sync.scheduler import run_due_syncs, scheduler_loop

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    if once:
        results = _run(settings, lambda factory: run_due_syncs(factory, settings=settings))
        if results:
            out.print(result_table(results))
        out.print(f"{len(results)} scheduled sync(s) ran")
        return
    err.print(
        f"Scheduler running (tick every {settings.sync_scheduler_interval_seconds:.0f}s, "
        f"default schedule '{settings.sync_default_schedule}' UTC); Ctrl-C stops it."
    )
    try:
        _run(settings, lambda factory: scheduler_loop(factory, settings))
    except KeyboardInterrupt:
        err.print("Scheduler stopped.")


def worker_command(
    once: Annotated[
        bool, typer.Option("--once", help="process what is due now, then exit")
    ] = False,
) -> None:
    """Process the webhook inbox in this process (as many workers as you like may run)."""
    from signup_sync.logs import configure_logging
    from signup_sync.webhooks.worker import WebhookWorker, WorkerOptions, process_due

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    options = WorkerOptions.from_settings(settings)
    if once:

        async def drain(factory: Factory) -> list[tuple[int, str]]:
            handled: list[tuple[int, str]] = []
            while batch := await process_due(factory, options):
                handled.extend(batch)
                if all(status in ("failed", "lost") for _, status in batch):
                    break  # only retries left: they are due later
            return handled

        handled = _run(settings, drain)
        counts: dict[str, int] = {}
        for _, status in handled:
            counts[status] = counts.get(status, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
        out.print(f"{len(handled)} webhook deliveries processed: {summary}")
        return
    err.print(
        f"Webhook worker running (poll every {options.poll_interval_seconds:g}s); Ctrl-C stops it."
    )
    try:
        _run(settings, lambda factory: WebhookWorker(factory, options).run())
    except KeyboardInterrupt:
        err.print("Worker stopped.")


def _source_table(found: Sequence[SourceOut]) -> Table:
    table = Table(title="Sources")
    for column in ("ID", "Type", "Name", "Active", "Schedule", "Last sync", "Leads", "Secrets"):
        table.add_column(column, justify="right" if column in ("ID", "Leads") else "left")
    for s in found:
        last = (
            f"{s.last_sync_at:%Y-%m-%d %H:%M} {s.last_sync_status}" if s.last_sync_at else "never"
        )
        secrets = ", ".join(
            f"{ref.env} ({'set' if ref.set else '[red]missing[/red]'})"
            for ref in s.secrets.values()
        )
        table.add_row(
            str(s.id),
            s.source_type,
            s.name,
            "yes" if s.is_active else "[dim]no[/dim]",
            s.schedule or "daily (default)",
            last,
            str(s.total_leads_captured),
            secrets or "-",
        )
    return table


@sources_app.command("list")
def sources_list(
    source_type: Annotated[str | None, typer.Option("--type", help="only this type")] = None,
    all_: Annotated[bool, typer.Option("--all", help="include inactive sources")] = False,
) -> None:
    """List configured sources."""
    from signup_sync.sync.sources_service import list_sources

    settings = _settings()

    async def work(factory: Factory) -> list[SourceOut]:
        async with factory() as session:
            return await list_sources(
                session,
                source_type=source_type,
                active=None if all_ else True,
                access=SourceAccess.from_settings(settings),
            )

    out.print(_source_table(_run(settings, work)))


def _parse_sets(pairs: Sequence[str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            err.print(f"[red]Error (--set):[/red] expected key=value, got {key!r}")
            raise typer.Exit(code=2)
        try:
            config[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            config[key.strip()] = raw
    return config


@sources_app.command("add")
def sources_add(
    source_type: Annotated[str, typer.Argument(help="easyappointments, zoom, eventbrite, ...")],
    name: Annotated[str, typer.Argument(help="a name, unique per type")],
    config: Annotated[str | None, typer.Option(help="config as a JSON object")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="config key=value (repeatable)")
    ] = None,
    schedule: Annotated[str | None, typer.Option(help="cron (UTC) or 'off'")] = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="add it switched off")] = False,
) -> None:
    """Configure a source. Secrets go in environment variables named by *_env keys."""
    from pydantic import ValidationError

    from signup_sync.db.session import unit_of_work
    from signup_sync.sync.sources_service import create_source

    settings = _settings()
    try:
        values = json.loads(config) if config else {}
    except json.JSONDecodeError:
        err.print("[red]Error (--config):[/red] not valid JSON")
        raise typer.Exit(code=2) from None
    if not isinstance(values, dict):
        err.print("[red]Error (--config):[/red] must be a JSON object")
        raise typer.Exit(code=2)
    values.update(_parse_sets(set_ or []))
    try:
        body = SourceIn(
            source_type=source_type,
            name=name,
            schedule=schedule,
            config=values,
            is_active=not inactive,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        err.print(f"[red]Error ({where}):[/red] {first['msg']}")
        raise typer.Exit(code=2) from None

    async def work(factory: Factory) -> SourceOut:
        async with unit_of_work(factory) as session:
            return await create_source(session, body, SourceAccess.from_settings(settings))

    created = _run(settings, work)
    out.print(_source_table([created]))
    out.print(f"Added source #{created.id}. Sync it now: signup-sync sync {created.source_type}")
    warn_missing(created)


def warn_missing(source: SourceOut) -> None:
    """On stderr: each secret a sync of this source would miss now (names, never values)."""
    if not source.warnings:
        return
    err.print(f"[yellow]Warning:[/yellow] source #{source.id} cannot sync yet:")
    for line in source.warnings:
        err.print(f"  {line}")
    err.print(f"Set them, then try it: signup-sync sources check {source.id}")


@sources_app.command("disable")
def sources_disable(source_id: Annotated[int, typer.Argument(help="the source's id")]) -> None:
    """Deactivate a source (its history is kept)."""
    from signup_sync.db.session import unit_of_work
    from signup_sync.sync.sources_service import deactivate_source

    settings = _settings()

    async def work(factory: Factory) -> SourceOut:
        async with unit_of_work(factory) as session:
            return await deactivate_source(session, source_id, SourceAccess.from_settings(settings))

    done = _run(settings, work)
    out.print(f"Source #{done.id} ({done.source_type} {done.name!r}) is now inactive.")
