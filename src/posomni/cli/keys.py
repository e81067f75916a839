"""`posomni rotate-key`: re-encrypt every stored secret under the current key."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from posomni import bootstrap
from posomni.cli.common import EnvFileOption, console, err_console, open_database, run, settings_or_exit
from posomni.config import Settings
from posomni.keys import service
from posomni.keys.service import ColumnReport


def register(app: typer.Typer) -> None:
    app.command("rotate-key")(rotate_key)


def _table(title: str, reports: list[ColumnReport]) -> Table:
    table = Table(title=title)
    for name in ("column", "values", "re-encrypted", "already current", "unreadable"):
        table.add_column(name)
    for r in reports:
        table.add_row(r.name, str(r.total), str(r.rotated), str(r.already_current), str(len(r.unreadable)))
    return table


async def _rotate(settings: Settings, batch_size: int, dry_run: bool) -> tuple[list[ColumnReport], list[ColumnReport]]:
    crypto = bootstrap.encryption(settings)
    async with open_database(settings) as database:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console, transient=True
        ) as progress:
            tasks: dict[str, TaskID] = {}

            def advance(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = progress.add_task(name, total=total)
                progress.update(tasks[name], completed=done, total=total)

            reports = await service.rotate(database, crypto, batch_size=batch_size, dry_run=dry_run, progress=advance)
        if dry_run:
            return reports, []
        verified = await service.verify_current_key_only(database, settings.audit_log_encryption_key.get_secret_value())
        if not any(r.unreadable for r in reports + verified):
            await service.record_rotation(database, crypto, reports)
        return reports, verified


def rotate_key(
    env_file: Path = EnvFileOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be re-encrypted; change nothing."),
    batch_size: int = typer.Option(500, "--batch-size", min=1, max=10_000, help="Rows per transaction."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Re-encrypt every encrypted value under AUDIT_LOG_ENCRYPTION_KEY, reading old values with
    OLD_AUDIT_LOG_ENCRYPTION_KEY. Each batch is its own transaction; after a crash, run it again to finish.
    Succeeds only when every value reads back with the new key alone."""
    settings = settings_or_exit(env_file)
    if settings.old_audit_log_encryption_key is None and not dry_run:
        console.print("OLD_AUDIT_LOG_ENCRYPTION_KEY is not set: values under an older key cannot be read.")
    reports, verified = run(_rotate(settings, batch_size, dry_run))
    failed = [u for r in reports + verified for u in r.unreadable]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "dry_run": dry_run,
                    "rotation": [r.as_dict() for r in reports],
                    "verification": [r.as_dict() for r in verified],
                    "ok": not failed,
                },
                indent=2,
            )
        )
    else:
        console.print(_table("Dry run: would re-encrypt" if dry_run else "Key rotation", reports))
        if verified:
            console.print(_table("Verification with the new key only", verified))
    if failed:
        err_console.print(f"[red]{len(failed)} value(s) could not be read:[/]")
        for line in failed[:20]:
            err_console.print(f"  {line}")
        raise typer.Exit(code=1)
    if not dry_run:
        console.print(
            "[green]Every value reads with the new key alone.[/] You may now remove OLD_AUDIT_LOG_ENCRYPTION_KEY."
        )
