"""`posomni audit …`: verify the hash chains, list entries, purge past the retention period."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from posomni import bootstrap
from posomni.audit import service
from posomni.audit.models import AuditEntry
from posomni.auth.principal import Actor
from posomni.cli.common import EnvFileOption, console, err_console, open_database, run, settings_or_exit
from posomni.kit.errors import PosError

app = typer.Typer(help="Audit log: verify, list, purge.", no_args_is_help=True)


@app.command("verify")
def verify(
    env_file: Path = EnvFileOption,
    store_id: int = typer.Option(0, "--store", help="Only this store's chain (default: every chain)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Walk every chain; report the first broken link. Exit 0 when all chains hold, 1 otherwise."""
    settings = settings_or_exit(env_file)
    crypto = bootstrap.encryption(settings)

    async def go() -> list[service.ChainReport]:
        async with open_database(settings) as database, database.sessionmaker() as session:
            return await service.verify_all(session, crypto, store_id if store_id else service.ALL_CHAINS)

    reports = run(go())
    ok = all(r.ok for r in reports)
    if as_json:
        typer.echo(json.dumps({"ok": ok, "chains": [r.as_dict() for r in reports]}, indent=2))
    else:
        table = Table(title="Audit chains")
        for name in ("chain", "entries", "last", "result"):
            table.add_column(name)
        for r in reports:
            result = "[green]intact[/]" if r.ok else f"[red]broken at #{r.first_broken_seq}: {r.problem}[/]"
            table.add_row(r.chain, str(r.entries_checked), str(r.last_seq), result)
        console.print(table)
        if not reports:
            console.print("No audit entries yet.")
    raise typer.Exit(code=0 if ok else 1)


@app.command("list")
def list_entries(
    env_file: Path = EnvFileOption,
    action: str = typer.Option("", help="An action, or a family ending in '.', e.g. 'auth.'."),
    limit: int = typer.Option(50, min=1, max=1000),
) -> None:
    """Show the newest entries with their decrypted details."""
    settings = settings_or_exit(env_file)
    crypto = bootstrap.encryption(settings)

    async def go() -> list[tuple[AuditEntry, Any]]:
        async with open_database(settings) as database, database.sessionmaker() as session:
            return await service.list_entries(session, crypto, service.AuditFilter(action=action or None, limit=limit))

    table = Table(title="Audit log (newest first)")
    for name in ("time", "chain#seq", "actor", "action", "target", "details"):
        table.add_column(name, overflow="fold")
    for e, details in run(go()):
        table.add_row(
            e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{e.chain}#{e.seq}",
            f"{e.actor_id or '-'} {e.actor_role or ''}",
            e.action,
            f"{e.target_type or ''} {e.target_id or ''}",
            json.dumps(details, ensure_ascii=False)[:200],
        )
    console.print(table)


@app.command("purge")
def purge(
    before: datetime = typer.Option(..., "--before", formats=["%Y-%m-%d"], help="Remove entries older than DATE."),
    env_file: Path = EnvFileOption,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Remove entries older than DATE — refused unless DATE is past the retention period (AUDIT_RETENTION_YEARS,
    default 7). Each chain keeps an anchor and records the purge, so it stays verifiable."""
    settings = settings_or_exit(env_file)
    crypto = bootstrap.encryption(settings)
    moment = before.replace(tzinfo=UTC)
    cutoff = service.retention_cutoff(settings.audit_retention_years)
    if moment > cutoff:
        # Refused before asking: nothing younger than the retention period may be removed.
        err_console.print(
            f"[red]Refused:[/] only entries older than {cutoff.date().isoformat()} "
            f"({settings.audit_retention_years} years) may be purged."
        )
        raise typer.Exit(code=1)
    if not yes:
        typer.confirm(f"Permanently remove audit entries older than {moment.date()}?", abort=True)

    async def go() -> list[service.PurgeResult]:
        async with open_database(settings) as database, database.unit_of_work() as session:
            return await service.purge(
                session, crypto, Actor.system(f"cli:{getpass.getuser()}"), before=moment,
                retention_years=settings.audit_retention_years,
            )  # fmt: skip

    try:
        results = run(go())
    except PosError as exc:
        err_console.print(f"[red]Refused:[/] {exc.message}")
        raise typer.Exit(code=1) from None
    if not results:
        console.print("Nothing older than that date.")
    for result in results:
        console.print(f"{result.chain}: removed {result.deleted} entries (anchor #{result.anchor_seq}).")
