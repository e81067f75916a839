"""`posomni users …`: staff accounts from the shell (the first admin of a production install)."""

from __future__ import annotations

import getpass
from datetime import date
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import select

from posomni import bootstrap
from posomni.auth.principal import Actor
from posomni.cli.common import EnvFileOption, console, err_console, run, settings_or_exit, unit_of_work
from posomni.config import Settings
from posomni.kit.errors import PosError
from posomni.stores.models import Store
from posomni.users import service
from posomni.users.models import Role
from posomni.users.schemas import UserCreate

app = typer.Typer(help="Staff accounts: create, list, disable, reset passwords.", no_args_is_help=True)


def _actor() -> Actor:
    return Actor.system(f"cli:{getpass.getuser()}")


def _ask_secret(label: str, given: str) -> str:
    if given:
        return given
    first: str = typer.prompt(label, hide_input=True)
    second: str = typer.prompt(f"{label} (again)", hide_input=True)
    if first != second:
        err_console.print("[red]The two entries differ.[/]")
        raise typer.Exit(code=1)
    return first


def _fail(exc: PosError) -> None:
    err_console.print(f"[red]{exc.message}[/]")
    for problem in exc.details.get("problems", []):
        err_console.print(f"  - {problem['message']}")
    raise typer.Exit(code=1)


async def _store_id(settings: Settings, code: str) -> int | None:
    if not code:
        return None
    async with unit_of_work(settings) as session:
        store_id = await session.scalar(select(Store.id).where(Store.code == code))
    if store_id is None:
        err_console.print(f"[red]No store with code {code!r}.[/]")
        raise typer.Exit(code=1)
    return int(store_id)


@app.command("create")
def create(
    username: str = typer.Option(..., help="Sign-in name (letters, digits, . _ -)."),
    role: Role = typer.Option(..., help="cashier, manager, admin or auditor."),
    full_name: str = typer.Option(..., "--full-name"),
    store: str = typer.Option("", help="Store code (required for cashiers and managers)."),
    password: str = typer.Option("", help="Asked for when not given (recommended: keeps it out of shell history)."),
    pin: str = typer.Option("", help="Numeric PIN for fast switching at a register (optional)."),
    birth_date: str = typer.Option("", help="YYYY-MM-DD, for the minimum age to sell alcohol."),
    env_file: Path = EnvFileOption,
) -> None:
    """Create a staff account."""
    settings = settings_or_exit(env_file)
    secret = _ask_secret("Password", password)
    crypto = bootstrap.encryption(settings)

    async def go() -> int:
        store_id = await _store_id(settings, store)
        data = UserCreate(
            username=username, full_name=full_name, role=role, store_id=store_id, password=secret,
            pin=pin or None, birth_date=date.fromisoformat(birth_date) if birth_date else None,
        )  # fmt: skip
        async with unit_of_work(settings) as session:
            user = await service.create(session, crypto, _actor(), data, service.Hashing(settings.password_hash_cost))
            return user.id

    try:
        user_id = run(go())
    except PosError as exc:
        _fail(exc)
        return
    console.print(f"[green]Created[/] {username} ({role.value}), id {user_id}.")


@app.command("list")
def list_users(env_file: Path = EnvFileOption) -> None:
    """List every account."""
    settings = settings_or_exit(env_file)

    async def go() -> list[list[str]]:
        async with unit_of_work(settings) as session:
            return [
                [str(u.id), u.username, u.full_name, u.role, str(u.store_id or "-"), "yes" if u.is_active else "no",
                 u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "-"]
                for u in await service.list_users(session)
            ]  # fmt: skip

    table = Table(title="Users")
    for name in ("id", "username", "name", "role", "store", "active", "last sign-in"):
        table.add_column(name)
    for row in run(go()):
        table.add_row(*row)
    console.print(table)


@app.command("disable")
def disable(username: str = typer.Argument(...), env_file: Path = EnvFileOption) -> None:
    """Disable an account and end all of its sessions at once."""
    settings = settings_or_exit(env_file)
    crypto = bootstrap.encryption(settings)

    async def go() -> None:
        async with unit_of_work(settings) as session:
            user = await service.by_username(session, username)
            await service.set_active(session, crypto, _actor(), user.id, False)

    try:
        run(go())
    except PosError as exc:
        _fail(exc)
    console.print(f"Disabled {username}; its sessions are ended.")


@app.command("reset-password")
def reset_password(
    username: str = typer.Argument(...),
    password: str = typer.Option("", help="Asked for when not given."),
    env_file: Path = EnvFileOption,
) -> None:
    """Set a new password (and end the account's sessions)."""
    settings = settings_or_exit(env_file)
    secret = _ask_secret("New password", password)
    crypto = bootstrap.encryption(settings)

    async def go() -> None:
        async with unit_of_work(settings) as session:
            user = await service.by_username(session, username)
            await service.reset_password(
                session, crypto, _actor(), user.id, secret, service.Hashing(settings.password_hash_cost)
            )

    try:
        run(go())
    except PosError as exc:
        _fail(exc)
    console.print(f"Password of {username} reset; its sessions are ended.")
