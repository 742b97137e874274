"""``signup-sync sources edit|enable|remove|check``: the rest of the ``sources`` group.

``list``, ``add`` and ``disable`` live in ``cli_sync``; this module adds its commands to the
same group (``sources_app``), which ``cli`` mounts. Each command calls the service the
matching endpoint calls, so the command line and the API behave alike.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from signup_sync.cli_sync import (
    _parse_sets,
    _run,
    _settings,
    _source_table,
    err,
    out,
    sources_app,
    warn_missing,
)
from signup_sync.sources.access import SourceAccess
from signup_sync.sync.check import SourceCheck
from signup_sync.sync.runner import Factory
from signup_sync.sync.schemas import SourceOut, SourcePatch

__all__ = ["sources_app"]

SourceIdArg = Annotated[int, typer.Argument(help="the source's id (signup-sync sources list)")]


def _patch(source_id: int, patch: SourcePatch) -> SourceOut:
    """``PATCH /sources/{id}`` from the command line."""
    from signup_sync.db.session import unit_of_work
    from signup_sync.sync.sources_service import update_source

    settings = _settings()

    async def work(factory: Factory) -> SourceOut:
        async with unit_of_work(factory) as session:
            return await update_source(
                session, source_id, patch, SourceAccess.from_settings(settings)
            )

    return _run(settings, work)


def _build_patch(**fields: Any) -> SourcePatch:
    from pydantic import ValidationError

    try:
        return SourcePatch(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        err.print(f"[red]Error ({where}):[/red] {first['msg']}")
        raise typer.Exit(code=2) from None


@sources_app.command("edit")
def sources_edit(
    source_id: SourceIdArg,
    name: Annotated[str | None, typer.Option(help="a new name, unique per type")] = None,
    schedule: Annotated[
        str | None, typer.Option(help="cron (UTC), 'off', or 'default' for the daily default")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="config key=value, merged into the config (repeatable)"),
    ] = None,
    unset: Annotated[
        list[str] | None, typer.Option("--unset", help="remove a config key (repeatable)")
    ] = None,
    reset_cursor: Annotated[
        bool, typer.Option("--reset-cursor", help="the next sync re-reads everything")
    ] = False,
) -> None:
    """Change a source: config keys are merged one by one, like PATCH /sources/{id}."""
    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if schedule is not None:
        fields["schedule"] = None if schedule.strip().lower() == "default" else schedule
    config: dict[str, Any] = dict(_parse_sets(set_ or []))
    for key in unset or []:
        config[key.strip()] = None
    if config:
        fields["config"] = config
    if reset_cursor:
        fields["reset_cursor"] = True
    if not fields:
        err.print("[red]Error:[/red] nothing to change: give --name, --schedule, --set or --unset")
        raise typer.Exit(code=2)
    changed = _patch(source_id, _build_patch(**fields))
    out.print(_source_table([changed]))
    out.print(f"Source #{changed.id} updated.")
    warn_missing(changed)


@sources_app.command("enable")
def sources_enable(source_id: SourceIdArg) -> None:
    """Switch a source back on (after disable or remove): it syncs on its schedule again."""
    done = _patch(source_id, _build_patch(is_active=True))
    out.print(f"Source #{done.id} ({done.source_type} {done.name!r}) is now active.")
    warn_missing(done)


@sources_app.command("remove")
def sources_remove(source_id: SourceIdArg) -> None:
    """Remove a source like DELETE /sources/{id}: it stops syncing, its history is kept."""
    from signup_sync.db.session import unit_of_work
    from signup_sync.sync.sources_service import deactivate_source

    settings = _settings()

    async def work(factory: Factory) -> SourceOut:
        async with unit_of_work(factory) as session:
            return await deactivate_source(session, source_id, SourceAccess.from_settings(settings))

    done = _run(settings, work)
    out.print(
        f"Source #{done.id} ({done.source_type} {done.name!r}) removed: it no longer syncs; "
        f"its leads, events and sync history are kept. "
        f"Undo with: signup-sync sources enable {done.id}"
    )


def check_table(result: SourceCheck) -> Table:
    table = Table(title=f"Check of {result.source_type} source {result.source_name!r}")
    table.add_column("Check")
    table.add_column("Result")
    table.add_column("Detail")
    for item in result.checks:
        if item.skipped:
            mark = "[dim]skipped[/dim]" if item.ok else "[yellow]not tried[/yellow]"
        else:
            mark = "[green]ok[/green]" if item.ok else "[red]failed[/red]"
        table.add_row(item.name, mark, item.detail)
    return table


def _print_check(result: SourceCheck, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    out.print(check_table(result))
    if result.missing_secrets:
        out.print("Missing: " + ", ".join(result.missing_secrets))
    out.print(
        f"[green]Source #{result.source_id} works.[/green]"
        if result.ok
        else f"[red]Source #{result.source_id} does not work yet.[/red]"
    )


@sources_app.command("check")
def sources_check(
    source_id: SourceIdArg,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Try a source without syncing it: config, every secret, addresses, one page.

    Writes nothing. Exit code 0 when everything works, 1 when something does not.
    """
    from signup_sync.sync.check import load_target, run_check

    settings = _settings()

    async def work(factory: Factory) -> SourceCheck:
        async with factory() as session:
            target = await load_target(session, source_id)
        return await run_check(target, SourceAccess.from_settings(settings))

    result = _run(settings, work)
    _print_check(result, as_json)
    if not result.ok:
        raise typer.Exit(code=1)
