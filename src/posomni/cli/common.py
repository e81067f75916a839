"""What every command shares: the console, settings loading with readable errors, running async code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.config import DEFAULT_ENV_FILE, ConfigurationError, Problem, Settings, load_settings
from posomni.database import Database

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

EnvFileOption = typer.Option(
    Path(DEFAULT_ENV_FILE), "--env-file", help="The .env file to read (the environment takes priority)."
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        style = "red" if problem.severity == "error" else "yellow"
        err_console.print(
            f"[{style}]{problem.severity.upper():7}[/] [bold]{problem.variable}[/] {problem.message}"
            f"\n          fix: {problem.fix}",
            highlight=False,
        )


def settings_or_exit(env_file: Path) -> Settings:
    try:
        return load_settings(env_file)
    except ConfigurationError as exc:
        err_console.print("[red]The configuration is not valid:[/]")
        print_problems(exc.problems)
        raise typer.Exit(code=1) from None


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_url.get_secret_value(), pool_size=2)
    try:
        yield database
    finally:
        await database.dispose()


@asynccontextmanager
async def unit_of_work(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A command's transaction: committed when the command's work ends without an error."""
    async with open_database(settings) as database, database.unit_of_work() as session:
        yield session
