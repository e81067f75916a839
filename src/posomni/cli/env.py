"""`validate-env`, `setup-env` and `keygen`: configuration from the shell."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

import redis.asyncio as aioredis
import typer
from redis.exceptions import RedisError
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from posomni.cli.common import EnvFileOption, console, err_console, print_problems, run
from posomni.config import (
    DEFAULT_ENV_FILE,
    Environment,
    check,
    from_mapping,
    mask_url,
    normalise_database_url,
    read_environment,
)
from posomni.database import create_engine
from posomni.kit.time import utcnow
from posomni.security.crypto import generate_key

DEV_ORIGINS = "http://127.0.0.1:8000,http://localhost:8000"
SECRET_VARIABLES = frozenset(
    {
        "AUDIT_LOG_ENCRYPTION_KEY",
        "JWT_SECRET",
        "STRIPE_SECRET_KEY",
        "REDIS_PASSWORD",
        "SENTRY_DSN",
        "DATABASE_URL",
        "METRICS_TOKEN",
    }
)


def register(app: typer.Typer) -> None:
    app.command("validate-env")(validate_env)
    app.command("setup-env")(setup_env)
    app.command("keygen")(keygen)


def validate_env(
    env_file: Path = EnvFileOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document (for CI pipelines)."),
) -> None:
    """Validate the configuration without starting anything; exit 0 when valid, 1 when not."""
    settings, problems = check(read_environment(env_file))
    if as_json:
        document = {
            "valid": settings is not None,
            "environment": settings.env.value if settings else None,
            "errors": [p.as_dict() for p in problems if p.severity == "error"],
            "warnings": [p.as_dict() for p in problems if p.severity == "warning"],
        }
        typer.echo(json.dumps(document, indent=2))
    else:
        print_problems(problems)
        if settings is not None:
            console.print(
                f"[green]Configuration valid[/] for [bold]{settings.env.value}[/] "
                f"(database: {settings.database_url_display}; {len(problems)} warning(s))",
                highlight=False,
            )
        else:
            errors = sum(1 for p in problems if p.severity == "error")
            err_console.print(f"[red]Configuration invalid:[/] {errors} error(s).")
    raise typer.Exit(code=0 if settings is not None else 1)


def keygen(
    jwt: bool = typer.Option(False, "--jwt", help="Print a JWT signing secret instead of an encryption key."),
) -> None:
    """Print a new random AUDIT_LOG_ENCRYPTION_KEY (base64 of 32 bytes), or a JWT secret with --jwt."""
    typer.echo(secrets.token_urlsafe(48) if jwt else generate_key())


# --- setup-env ---------------------------------------------------------------------------------------


def _masked(name: str, value: str) -> str:
    if name in SECRET_VARIABLES and value:
        if name == "DATABASE_URL":
            return mask_url(value)
        return value[:4] + "…" + f" ({len(value)} chars)"
    return value


async def _test_database(url: str) -> str | None:
    try:
        engine = create_engine(normalise_database_url(url), pool_size=1)
    except (ValueError, SQLAlchemyError) as exc:
        return str(exc)
    try:
        async with asyncio.timeout(10):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        original = getattr(exc, "orig", None) or exc
        return f"{type(original).__name__}: {str(original).splitlines()[0][:200] if str(original) else ''}"
    finally:
        await engine.dispose()
    return None


async def _test_redis(host: str, port: int, password: str | None) -> str | None:
    client = aioredis.Redis(host=host, port=port, password=password, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.aclose()
    return None


def _ask(label: str, default: str, validate: Callable[[str], str | None] | None = None, secret: bool = False) -> str:
    while True:
        value: str = typer.prompt(label, default=default, show_default=not secret, hide_input=secret)
        value = value.strip()
        problem = validate(value) if validate and value else None
        if problem is None:
            return value
        err_console.print(f"[red]{problem}[/] — try again.")


def _stripe_problem(value: str) -> str | None:
    _, problems = check(from_mapping({"STRIPE_SECRET_KEY": value}))
    bad = [p for p in problems if p.variable == "STRIPE_SECRET_KEY" and p.severity == "error"]
    return f"STRIPE_SECRET_KEY {bad[0].message}" if bad else None


def _origins_problem(value: str) -> str | None:
    _, problems = check(from_mapping({"ALLOWED_ORIGINS": value}))
    bad = [p for p in problems if p.variable == "ALLOWED_ORIGINS" and p.severity == "error"]
    return f"ALLOWED_ORIGINS: {bad[0].message}" if bad else None


def env_line(name: str, value: str) -> str:
    r"""`NAME="value"` that python-dotenv (the reader behind pydantic-settings) reads back as exactly `value`.

    Unquoted, a value ends at ` #` and loses its surrounding spaces; in double quotes only `\\`, `\"` and the
    control escapes (`\n`, `\r`, `\t`, …) are decoded, so backslashes, quotes and line breaks are escaped and
    `#`, `'`, spaces and non-ASCII text stay as they are. `${NAME}` is expanded in every value, quoted or not,
    and has no escape of its own: `${:-$}` (a variable with an empty name, which never exists, defaulting to
    `$`) reads as one `$`, so each `${` is written `${:-$}{`. A lone `$` is plain text.
    """
    escaped = (
        value.replace("\\", "\\\\")  # first: the backslashes added below must not be doubled again
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("${", "${:-$}{")
    )
    return f'{name}="{escaped}"'


def _render(values: dict[str, str], env: Environment) -> str:
    lines = [
        "# POS-Omni configuration, written by `posomni setup-env` on " + utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        "# Keep this file private (mode 0600). Back up AUDIT_LOG_ENCRYPTION_KEY in two safe places:",
        "# without it, the encrypted audit and compliance records can never be read again.",
    ]
    if env is Environment.PRODUCTION:
        lines.append("# Production: rotate keys with `posomni rotate-key`; never commit this file.")
    for name, value in values.items():
        if value != "":
            lines.append(env_line(name, value))
    return "\n".join(lines) + "\n"


def _write_env_file(path: Path, content: str) -> Path | None:
    backup: Path | None = None
    if path.exists():
        backup = path.with_name(f"{path.name}.bak.{utcnow().strftime('%Y%m%d%H%M%S')}")
        shutil.copy2(path, backup)
        backup.chmod(0o600)
    # Create with 0600 from the first byte: the file holds the encryption key.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(content)
    path.chmod(0o600)
    return backup


def setup_env(
    non_interactive: bool = typer.Option(
        False, "--non-interactive", help="Ask nothing: take the flags and defaults (for scripts and `make run`)."
    ),
    environment: Environment = typer.Option(Environment.DEVELOPMENT, "--env", help="The environment the file is for."),
    output: Path = typer.Option(Path(DEFAULT_ENV_FILE), "--output", "-o", help="Where to write the file."),
    force: bool = typer.Option(
        False, "--force", help="Replace an existing file without asking (a timestamped backup is kept)."
    ),
    database_url: str = typer.Option("", help="postgresql://… (required for production) or sqlite:///…"),
    allowed_origins: str = typer.Option("", help="Comma-separated web origins of the registers."),
    stripe_secret_key: str = typer.Option("", help="sk_live_… / sk_test_… (empty: card payments disabled)."),
    redis_host: str = typer.Option("", help="Redis host (empty: in-memory fallback)."),
    redis_port: int = typer.Option(6379, help="Redis port."),
    redis_password: str = typer.Option("", help="Redis password (empty: none)."),
    sentry_dsn: str = typer.Option("", help="Sentry DSN (optional)."),
    store_timezone: str = typer.Option("America/New_York", help="IANA timezone of the store."),
    check_connections: bool = typer.Option(
        True, "--check-connections/--no-check-connections", help="Test the database (and Redis) before writing."
    ),
) -> None:
    """Create the .env file: generates the encryption key and JWT secret, checks what you enter, tests the
    database and Redis connections, shows a summary and writes the file with mode 0600."""
    if output.exists() and not force:
        if non_interactive:
            err_console.print(f"[red]{output} already exists.[/] Pass --force to replace it (a backup is kept).")
            raise typer.Exit(code=1)
        if not typer.confirm(f"{output} exists. Replace it (a backup copy is kept)?", default=False):
            err_console.print("Nothing written.")
            raise typer.Exit(code=1)

    production = environment is Environment.PRODUCTION
    if non_interactive:
        db_url = database_url
        origins = allowed_origins or ("" if production else DEV_ORIGINS)
        stripe_key, r_host, dsn, tz = stripe_secret_key, redis_host, sentry_dsn, store_timezone
        r_password = redis_password
    else:
        console.print(f"[bold]POS-Omni setup[/] — writing {output} for [bold]{environment.value}[/].")
        console.print("Press Enter to accept a default. Secrets are generated for you.\n")
        hint = "postgresql://user:password@host:5432/posomni" if production else "empty: SQLite file under var/"
        db_url = _ask(f"DATABASE_URL ({hint})", database_url)
        origins = _ask(
            "ALLOWED_ORIGINS",
            allowed_origins or ("https://pos.example.com" if production else DEV_ORIGINS),
            _origins_problem,
        )
        stripe_key = _ask(
            "STRIPE_SECRET_KEY (empty: card payments disabled)", stripe_secret_key, _stripe_problem, secret=True
        )
        r_host = _ask("REDIS_HOST (empty: in-memory fallback)", redis_host)
        r_password = ""
        if r_host:
            redis_port = int(_ask("REDIS_PORT", str(redis_port), lambda v: None if v.isdigit() else "not a port"))
            r_password = _ask("REDIS_PASSWORD (empty: none)", redis_password, secret=True)
        dsn = _ask("SENTRY_DSN (optional)", sentry_dsn, secret=True)
        tz = _ask("STORE_TIMEZONE", store_timezone)

    values: dict[str, str] = {
        "POS_ENV": environment.value,
        "AUDIT_LOG_ENCRYPTION_KEY": generate_key(),
        "JWT_SECRET": secrets.token_urlsafe(48),
        "ALLOWED_ORIGINS": origins,
        "DATABASE_URL": db_url,
        "STRIPE_SECRET_KEY": stripe_key,
        "REDIS_HOST": r_host,
        "REDIS_PORT": str(redis_port) if r_host else "",
        "REDIS_PASSWORD": r_password if r_host else "",
        "SENTRY_DSN": dsn,
        "STORE_TIMEZONE": tz,
    }
    settings, problems = check(from_mapping({k: v for k, v in values.items() if v}))
    print_problems(problems)
    if settings is None:
        err_console.print("[red]Not written:[/] fix the errors above and run setup-env again.")
        raise typer.Exit(code=1)

    if check_connections:
        _connection_checks(settings.database_url.get_secret_value(), r_host, redis_port, r_password or None)

    table = Table(title=f"{output} ({environment.value})", show_lines=False)
    table.add_column("variable")
    table.add_column("value")
    for name, value in values.items():
        table.add_row(name, _masked(name, value) if value else "[dim](not set)[/]")
    console.print(table)
    if not non_interactive and not typer.confirm("Write this file?", default=True):
        err_console.print("Nothing written.")
        raise typer.Exit(code=1)
    backup = _write_env_file(output, _render(values, environment))
    if backup is not None:
        console.print(f"Previous file kept as {backup}.")
    console.print(f"[green]Wrote {output}[/] (mode 0600). Back up AUDIT_LOG_ENCRYPTION_KEY now.")


def _connection_checks(db_url: str, redis_host: str, redis_port: int, redis_password: str | None) -> None:
    error = run(_test_database(db_url))
    if error is not None:
        err_console.print(f"[red]Database connection failed:[/] {error}")
        raise typer.Exit(code=1)
    console.print("[green]Database connection OK.[/]")
    if redis_host:
        redis_error = run(_test_redis(redis_host, redis_port, redis_password))
        if redis_error is None:
            console.print("[green]Redis connection OK.[/]")
        else:
            # Redis is optional: the app falls back to memory, so this is a warning, not a refusal.
            err_console.print(f"[yellow]Redis not reachable now ({redis_error}); the app will fall back.[/]")
