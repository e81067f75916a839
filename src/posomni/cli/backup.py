"""`posomni backup create|list|verify|restore|prune`."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.table import Table

from posomni import bootstrap
from posomni.backups import restore as restoring
from posomni.backups import service, verification
from posomni.backups.models import BackupRecord
from posomni.cli.common import EnvFileOption, console, err_console, open_database, run, settings_or_exit
from posomni.config import Settings
from posomni.database import Database
from posomni.kit.errors import PosError
from posomni.kit.time import utcnow
from posomni.logging import configure_logging

T = TypeVar("T")

app = typer.Typer(
    help="Database backups: create, list, verify by restoring into a scratch database, restore, prune.",
    no_args_is_help=True,
)

JsonOption = typer.Option(False, "--json", help="Print the result as JSON.")


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _with_database(settings: Settings, work: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
    # Logs go to stderr in the configured format (JSON in production, for journald and log shipping), so a
    # scheduled run leaves a trace and --json output on stdout stays clean.
    configure_logging(settings.log_level, settings.log_format)

    async def go() -> T:
        async with open_database(settings) as database:
            return await work(database)

    try:
        return run(go())
    except PosError as exc:
        err_console.print(f"[red]{exc.message}[/]", highlight=False)
        raise typer.Exit(code=1) from None


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        return "unknown"


def _record_dict(record: BackupRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "status": record.status,
        "method": record.method,
        "started_at": record.started_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "size_bytes": record.size_bytes,
        "sha256": record.sha256,
        "location": record.location or None,
        "verified_at": record.verified_at.isoformat() if record.verified_at else None,
        "verify_error": record.verify_error,
        "error": record.error,
        "pruned_at": record.pruned_at.isoformat() if record.pruned_at else None,
    }


@app.command("create")
def create(
    no_prune: bool = typer.Option(False, "--no-prune", help="Keep every older backup this time."),
    as_json: bool = JsonOption,
    env_file: Path = EnvFileOption,
) -> None:
    """Back up the database into BACKUP_DIR (pg_dump custom format, or SQLite's online backup API), with a
    SHA-256 checksum and a metadata file; then apply retention (BACKUP_KEEP_DAILY, BACKUP_KEEP_WEEKLY)."""
    settings = settings_or_exit(env_file)
    result = _with_database(settings, lambda db: service.create_backup(db, settings, prune=not no_prune))
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    console.print(
        f"[green]Backup {result.record_id} written[/]: {result.file} ({_size(result.size_bytes)}, "
        f"{sum(result.row_counts.values())} rows in {len(result.row_counts)} tables, revision {result.revision}, "
        f"{result.seconds:.2f} s)\nSHA-256 {result.sha256}",
        highlight=False,
    )
    if result.pruned:
        console.print(f"Retention removed backup(s) {', '.join(map(str, result.pruned))}.")
    console.print("Prove it restores: `posomni backup verify --latest`. Copy BACKUP_DIR offsite (docs/deploy.md).")


@app.command("list")
def list_(
    include_pruned: bool = typer.Option(False, "--all", help="Include backups removed by retention."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000),
    as_json: bool = JsonOption,
    env_file: Path = EnvFileOption,
) -> None:
    """Backups, newest first: status, size, age and whether `backup verify` proved them restorable."""
    settings = settings_or_exit(env_file)
    records = _with_database(settings, lambda db: service.list_backups(db, include_pruned=include_pruned, limit=limit))
    if as_json:
        typer.echo(json.dumps([_record_dict(r) for r in records], indent=2))
        return
    table = Table(title=f"Backups in {settings.backup_dir}")
    for name in ("id", "started (UTC)", "status", "kind", "size", "age", "verified", "file"):
        table.add_column(name)
    now = utcnow()
    for r in records:
        age = f"{(now - r.finished_at).total_seconds() / 3600:.1f} h" if r.finished_at else "-"
        if r.pruned_at:
            verified = "pruned"
        elif r.verify_error:
            verified = "[red]FAILED[/]"
        else:
            verified = r.verified_at.strftime("%Y-%m-%d %H:%M") if r.verified_at else "no"
        status = r.status if r.status != "failed" else f"[red]failed[/] {(r.error or '')[:60]}"
        table.add_row(
            str(r.id), r.started_at.strftime("%Y-%m-%d %H:%M:%S"), status, r.method, _size(r.size_bytes), age,
            verified, Path(r.location).name if r.location else "-",
        )  # fmt: skip
    console.print(table)
    if not records:
        console.print("No backup yet: `posomni backup create`.")


@app.command("verify")
def verify(
    backup_id: int | None = typer.Argument(None, help="The backup's id (see `backup list`)."),
    latest: bool = typer.Option(False, "--latest", help="The newest successful backup (the default)."),
    file: Path | None = typer.Option(None, "--file", dir_okay=False, help="A backup file, e.g. an offsite copy."),
    as_json: bool = JsonOption,
    env_file: Path = EnvFileOption,
) -> None:
    """Restore a backup into a scratch database and check it: checksum, row counts against the metadata,
    migration revision (and that it migrates to head), every audit chain with the app's keys. The scratch
    database is dropped afterwards. PostgreSQL: the database user needs the CREATEDB privilege."""
    if backup_id is not None and (latest or file is not None):
        err_console.print("[red]Give an id, --latest or --file, not several.[/]")
        raise typer.Exit(code=2)
    settings = settings_or_exit(env_file)
    crypto = bootstrap.encryption(settings)

    async def work(database: Database) -> verification.VerifyReport:
        backup = await service.resolve(database, settings, record_id=backup_id, file=file)
        return await verification.verify_backup(database, settings, crypto, backup)

    report = _with_database(settings, work)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        table = Table(title=f"Verification of {report.file.name}")
        for name in ("check", "result", "detail"):
            table.add_column(name)
        for step in report.steps:
            table.add_row(step.name, "[green]pass[/]" if step.ok else "[red]FAIL[/]", step.detail)
        console.print(table)
        verdict = "[green]The backup restores and checks out.[/]" if report.ok else "[red]The backup is NOT good.[/]"
        console.print(f"{verdict} ({report.seconds:.2f} s)")
    if not report.ok:
        raise typer.Exit(code=1)


@app.command("restore")
def restore(
    backup_id: int | None = typer.Argument(None, help="The backup's id (see `backup list`)."),
    file: Path | None = typer.Option(
        None, "--file", dir_okay=False, help="A backup file (when the database holding the list is lost)."
    ),
    yes: bool = typer.Option(False, "--yes", help="Confirm replacing the current database (required in scripts)."),
    no_safety_copy: bool = typer.Option(
        False, "--no-safety-copy", help="Do not copy the current database to BACKUP_DIR first."
    ),
    as_json: bool = JsonOption,
    env_file: Path = EnvFileOption,
) -> None:
    """REPLACE the configured database with a backup. Stop the app and the worker first. The checksum is checked
    first, and the current database is first copied to BACKUP_DIR/pre-restore-…; afterwards the database is
    migrated to head if the backup is older, and the restore is written to the audit log."""
    if (backup_id is None) == (file is None):
        err_console.print("[red]Give exactly one of: a backup id, or --file.[/]")
        raise typer.Exit(code=2)
    settings = settings_or_exit(env_file)
    if not yes:
        if not sys.stdin.isatty():
            err_console.print("[red]Refusing to replace the database without --yes (not an interactive terminal).[/]")
            raise typer.Exit(code=1)
        target = f"backup {backup_id}" if backup_id is not None else str(file)
        if not typer.confirm(
            f"Replace the {settings.database_kind} database {settings.database_url_display} with {target}?"
        ):
            raise typer.Exit(code=1)
    crypto = bootstrap.encryption(settings)
    actor = f"cli:{_login_name()}"

    async def work(database: Database) -> restoring.RestoreResult:
        backup = await service.resolve(database, settings, record_id=backup_id, file=file)
        return await restoring.restore_backup(
            database, settings, crypto, backup, safety_copy=not no_safety_copy, actor_name=actor
        )

    result = _with_database(settings, work)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    console.print(f"[green]Restored[/] {result.file.name} (revision {result.revision}) in {result.seconds:.2f} s.")
    if result.migrated_to:
        console.print(f"Migrated to head {result.migrated_to}.")
    if result.safety_copy:
        console.print(f"The database as it was before: {result.safety_copy}")
    console.print("Check it with `posomni audit verify`, then start the app and the worker again.")


@app.command("prune")
def prune(
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be removed; remove nothing."),
    as_json: bool = JsonOption,
    env_file: Path = EnvFileOption,
) -> None:
    """Apply retention now: keep the newest backup of each of the last BACKUP_KEEP_DAILY days and
    BACKUP_KEEP_WEEKLY weeks (plus the newest and the newest verified one); delete the other files."""
    settings = settings_or_exit(env_file)
    removed = _with_database(settings, lambda db: service.apply_retention(db, settings, dry_run=dry_run))
    if as_json:
        typer.echo(json.dumps({"dry_run": dry_run, "removed": [r.id for r in removed]}))
        return
    verb = "Would remove" if dry_run else "Removed"
    console.print(f"{verb} {len(removed)} backup(s){': ' + ', '.join(str(r.id) for r in removed) if removed else ''}.")
