"""`posomni db …`: migrations and seeding."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from posomni import migrate
from posomni.cli.common import EnvFileOption, console, err_console, open_database, run, settings_or_exit
from posomni.config import Environment, Settings
from posomni.seed.demo import DEMO_LOGINS, SeedReport, seed

app = typer.Typer(help="Database: migrate, seed, status.", no_args_is_help=True)


def _fail(action: str, exc: Exception) -> None:
    original = getattr(exc, "orig", None) or exc
    err_console.print(f"[red]{action} failed:[/] {type(original).__name__}: {str(original).splitlines()[0][:300]}")
    raise typer.Exit(code=1)


async def _migrate(settings: Settings, target: str) -> migrate.MigrationStatus:
    async with open_database(settings) as database:
        await migrate.upgrade(database.engine, target)
        return await migrate.status(database.engine)


async def _seed(settings: Settings, demo: bool) -> SeedReport:
    async with open_database(settings) as database, database.unit_of_work() as session:
        return await seed(session, demo=demo, bcrypt_cost=settings.password_hash_cost)


def _print_logins() -> None:
    table = Table(title="Demo logins (development only)")
    table.add_column("username")
    table.add_column("role")
    table.add_column("password")
    table.add_column("PIN")
    for login in DEMO_LOGINS:
        table.add_row(login.username, login.role.value, login.password, login.pin or "")
    console.print(table)


def _demo_allowed(settings: Settings) -> bool:
    return settings.env is not Environment.PRODUCTION


@app.command("migrate")
def migrate_command(
    revision: str = typer.Argument("head", help="Target revision."),
    env_file: Path = EnvFileOption,
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = settings_or_exit(env_file)
    try:
        state = run(_migrate(settings, revision))
    except (SQLAlchemyError, OSError) as exc:
        _fail("Migration", exc)
        return
    console.print(f"[green]Database at revision {state.current}[/] ({settings.database_url_display})")


@app.command("downgrade")
def downgrade_command(
    revision: str = typer.Argument(..., help="Target revision, e.g. -1 or base."),
    env_file: Path = EnvFileOption,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Revert migrations down to REVISION (developers; drops data)."""
    settings = settings_or_exit(env_file)
    if settings.is_production and not yes:
        typer.confirm("Downgrading a production database drops data. Continue?", abort=True)

    async def go() -> None:
        async with open_database(settings) as database:
            await migrate.downgrade(database.engine, revision)

    try:
        run(go())
    except (SQLAlchemyError, OSError) as exc:
        _fail("Downgrade", exc)
    console.print(f"Downgraded to {revision}.")


@app.command("status")
def status_command(env_file: Path = EnvFileOption) -> None:
    """Show the current and newest revision and the pending migrations; exit 1 when some are pending."""
    settings = settings_or_exit(env_file)

    async def go() -> migrate.MigrationStatus:
        async with open_database(settings) as database:
            return await migrate.status(database.engine)

    try:
        state = run(go())
    except (SQLAlchemyError, OSError) as exc:
        _fail("Status", exc)
        return
    console.print(f"database: {settings.database_url_display}")
    console.print(f"current:  {state.current or '(empty database)'}")
    console.print(f"head:     {state.head}")
    if state.up_to_date:
        console.print("[green]Up to date.[/]")
        return
    console.print(f"[yellow]{len(state.pending)} pending:[/]")
    for item in state.pending:
        console.print(f"  {item}")
    raise typer.Exit(code=1)


def _report(report: SeedReport) -> None:
    if report.total == 0:
        console.print("Seed: nothing new (already seeded).")
    else:
        created = ", ".join(f"{count} {kind}" for kind, count in sorted(report.created.items()))
        console.print(f"[green]Seed created[/] {created}.")


@app.command("seed")
def seed_command(
    env_file: Path = EnvFileOption,
    demo: bool = typer.Option(
        True, "--demo/--no-demo", help="Also create the demo store, users and products (never in production)."
    ),
) -> None:
    """Create reference data (and, outside production, the demo store). Safe to run again."""
    settings = settings_or_exit(env_file)
    with_demo = demo and _demo_allowed(settings)
    if demo and not with_demo:
        console.print("Production: reference data only; create the first admin with `posomni users create`.")
    try:
        report = run(_seed(settings, with_demo))
    except (SQLAlchemyError, OSError) as exc:
        _fail("Seeding", exc)
        return
    _report(report)
    if with_demo:
        _print_logins()


@app.command("setup")
def setup_command(
    env_file: Path = EnvFileOption,
    demo: bool = typer.Option(True, "--demo/--no-demo", help="Seed the demo store outside production."),
) -> None:
    """Migrate to the newest revision, then seed — one command, safe to run again."""
    settings = settings_or_exit(env_file)
    with_demo = demo and _demo_allowed(settings)
    try:
        state = run(_migrate(settings, "head"))
        console.print(f"[green]Migrated[/] to {state.current} ({settings.database_url_display}).")
        report = run(_seed(settings, with_demo))
    except (SQLAlchemyError, OSError) as exc:
        _fail("Database setup", exc)
        return
    _report(report)
    if with_demo:
        _print_logins()


@app.command("revision")
def revision_command(
    message: str = typer.Option(..., "-m", "--message", help="What the migration does."),
    autogenerate: bool = typer.Option(True, "--autogenerate/--empty", help="Compare models with the database."),
    env_file: Path = EnvFileOption,
) -> None:
    """Write a new migration file (developers). Autogenerate compares the models with the configured database,
    which must be at the newest revision."""
    settings = settings_or_exit(env_file)
    migrate.new_revision(message, settings.database_url.get_secret_value(), autogenerate=autogenerate)
