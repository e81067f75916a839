"""`posomni rotate-key`: re-encrypt every stored secret under the current key. `posomni keys confirm-backup` and
`posomni keys drill`: record where the key is backed up, and prove it can be recovered from there."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from posomni import bootstrap
from posomni.cli.common import EnvFileOption, console, err_console, open_database, run, settings_or_exit
from posomni.config import Settings
from posomni.keys import recovery, service
from posomni.keys.service import ColumnReport
from posomni.kit.errors import PosError

keys_app = typer.Typer(
    help="Encryption keys: record where the key is backed up, and prove recovery from that backup.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.command("rotate-key")(rotate_key)
    app.add_typer(keys_app, name="keys")


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


@keys_app.command("confirm-backup")
def confirm_backup(
    by: str = typer.Option(..., "--by", help="Who backed the key up."),
    locations: str = typer.Option(
        ..., "--locations", help='Where it is kept, comma-separated, at least two: "office safe,password manager".'
    ),
    env_file: Path = EnvFileOption,
) -> None:
    """Record that AUDIT_LOG_ENCRYPTION_KEY is backed up: who, when and where (the key's id, never the key), in
    the audit log. Needed again after every key rotation."""
    settings = settings_or_exit(env_file)
    crypto = bootstrap.encryption(settings)
    try:
        places = recovery.parse_locations(locations)
    except PosError as exc:
        err_console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(code=1) from None

    async def go() -> str:
        async with open_database(settings) as database:
            return await recovery.confirm_backup(database, crypto, by=by.strip(), locations=places)

    key_id = run(go())
    console.print(f"[green]Recorded:[/] key id {key_id} backed up by {by.strip()} in: {', '.join(places)}.")
    console.print("Now prove it can be recovered: `posomni keys drill` with the key taken from one of those places.")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        return "unknown"


def _entered_key(key_file: Path | None) -> str:
    if key_file is not None:
        try:
            return key_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            err_console.print(f"[red]The key file cannot be read: {type(exc).__name__}[/]")
            raise typer.Exit(code=1) from None
    entered: str = typer.prompt("Encryption key, exactly as kept in the backup", hide_input=True)
    return entered.strip()


@keys_app.command("drill")
def drill(
    key_file: Path | None = typer.Option(
        None, "--key-file", dir_okay=False, help="Read the key from this file (else it is asked for, hidden)."
    ),
    by: str = typer.Option("", "--by", help="Who runs the drill (default: the login name)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    env_file: Path = EnvFileOption,
) -> None:
    """Recovery drill: take the key from its backup (not from the configuration) and prove it decrypts a sample
    of the stored encrypted values. The result is recorded in the audit log; `posomni preflight` needs a pass."""
    settings = settings_or_exit(env_file)
    crypto = bootstrap.encryption(settings)
    entered = _entered_key(key_file)

    async def go() -> recovery.DrillResult:
        async with open_database(settings) as database:
            return await recovery.drill(database, crypto, entered, by=by.strip() or _login_name())

    result = run(go())
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    elif result.ok:
        console.print(
            f"[green]Drill passed:[/] the key from the backup (id {result.entered_key_id}) decrypted all "
            f"{result.sampled} sampled values. Recorded in the audit log."
        )
    else:
        err_console.print(f"[red]Drill failed[/] ({result.decrypted} of {result.sampled} sampled values decrypted):")
        for problem in result.problems[:10]:
            err_console.print(f"  - {problem}", highlight=False)
        err_console.print("Find the right key before anything else: without it the encrypted records are lost.")
    if not result.ok:
        raise typer.Exit(code=1)
