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
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisError
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from posomni.cli.common import EnvFileOption, console, err_console, print_problems, run
from posomni.config import (
    DEFAULT_ENV_FILE,
    Environment,
    Settings,
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
        "STRIPE_WEBHOOK_SECRET",
        "REDIS_PASSWORD",
        "SENTRY_DSN",
        "DATABASE_URL",
        "METRICS_TOKEN",
        "CONEXXUS_API_KEY",
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
        # The first characters tell keys apart (sk_live_ or sk_test_); a short secret shows none of them.
        return (value[:4] if len(value) >= 12 else "") + "…" + f" ({len(value)} chars)"
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


async def _test_sentinel(sentinels: list[tuple[str, int]], master_name: str, password: str | None) -> str | None:
    timeouts = {"socket_timeout": 2, "socket_connect_timeout": 2}
    # As the app connects: the sentinels without a password, the master they name with REDIS_PASSWORD.
    sentinel = Sentinel(sentinels, sentinel_kwargs=timeouts, password=password, **timeouts)  # type: ignore[no-untyped-call]
    try:
        await sentinel.discover_master(master_name)
        master = sentinel.master_for(master_name)
        try:
            await master.ping()
        finally:
            await master.aclose()
    except (RedisError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await sentinel.aclose()
    return None


def _ask(label: str, default: str, validate: Callable[[str], str | None] | None = None, secret: bool = False) -> str:
    """Ask until the answer passes `validate` (an empty answer too: required variables refuse it)."""
    while True:
        value: str = typer.prompt(label, default=default, show_default=not secret, hide_input=secret)
        value = value.strip()
        problem = validate(value) if validate else None
        if problem is None:
            return value
        err_console.print(f"[red]{problem}[/] — try again.")


def _rule(variable: str, env: Environment, **context: str) -> Callable[[str], str | None]:
    """The start-up rules of `variable` as a prompt's check; `context` holds the variables the rule depends on."""

    def problem(value: str) -> str | None:
        _, problems = check(from_mapping({"POS_ENV": env.value, **context, variable: value}))
        bad = [p for p in problems if p.variable == variable and p.severity == "error"]
        return f"{variable}: {bad[0].message}" if bad else None

    return problem


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
    stripe_webhook_secret: str = typer.Option("", help="whsec_… signing secret of the Stripe webhook (optional)."),
    redis_host: str = typer.Option("", help="Redis host (empty: in-memory fallback)."),
    redis_port: int = typer.Option(6379, help="Redis port."),
    redis_password: str = typer.Option("", help="Redis password, also of the servers behind Sentinel (empty: none)."),
    redis_sentinel: bool = typer.Option(
        False, "--redis-sentinel/--no-redis-sentinel", help="Find the Redis master through Sentinel (not --redis-host)."
    ),
    redis_sentinel_master_name: str = typer.Option("", help="Sentinel's name of the master, e.g. mymaster."),
    redis_sentinels: str = typer.Option("", help="The sentinels: host:port,host:port,…"),
    sentry_dsn: str = typer.Option("", help="Sentry DSN (optional)."),
    sentry_environment: str = typer.Option("", help="Sentry's environment name (empty: the POS environment)."),
    sentry_traces_sample_rate: str = typer.Option("", help="Share of requests traced, 0–1 (empty: default)."),
    sentry_profiles_sample_rate: str = typer.Option("", help="Share of traces profiled, 0–1 (empty: 0)."),
    conexxus_api_url: str = typer.Option("", help="Back-office (Conexxus) API address (optional)."),
    conexxus_api_key: str = typer.Option("", help="Back-office API key (required with --conexxus-api-url)."),
    conexxus_timeout_seconds: str = typer.Option("", help="Back-office request timeout, 0.5–30 s (empty: 5)."),
    store_timezone: str = typer.Option("America/New_York", help="IANA timezone of the store."),
    check_connections: bool = typer.Option(
        True, "--check-connections/--no-check-connections", help="Test the database (and Redis) before writing."
    ),
) -> None:
    """Create the .env file: generates the encryption key and JWT secret; asks for the database, the origins,
    Stripe, Redis (standalone or Sentinel), Sentry, the back office and the store's timezone, checking every
    answer by the start-up rules (optional settings are skipped with Enter); tests the database and Redis
    connections, shows a summary and writes the file with mode 0600, every value quoted so it reads back exactly."""
    if output.exists() and not force:
        if non_interactive:
            err_console.print(f"[red]{output} already exists.[/] Pass --force to replace it (a backup is kept).")
            raise typer.Exit(code=1)
        if not typer.confirm(f"{output} exists. Replace it (a backup copy is kept)?", default=False):
            err_console.print("Nothing written.")
            raise typer.Exit(code=1)
    if redis_sentinel and redis_host:
        err_console.print("[red]--redis-host and --redis-sentinel exclude each other:[/] choose one.")
        raise typer.Exit(code=1)

    given = {
        "DATABASE_URL": database_url,
        "ALLOWED_ORIGINS": allowed_origins,
        "STRIPE_SECRET_KEY": stripe_secret_key,
        "STRIPE_WEBHOOK_SECRET": stripe_webhook_secret,
        "REDIS_HOST": redis_host,
        "REDIS_PORT": str(redis_port),
        "REDIS_PASSWORD": redis_password,
        "REDIS_SENTINEL_ENABLED": "true" if redis_sentinel else "",
        "REDIS_SENTINEL_MASTER_NAME": redis_sentinel_master_name,
        "REDIS_SENTINELS": redis_sentinels,
        "SENTRY_DSN": sentry_dsn,
        "SENTRY_ENVIRONMENT": sentry_environment,
        "SENTRY_TRACES_SAMPLE_RATE": sentry_traces_sample_rate,
        "SENTRY_PROFILES_SAMPLE_RATE": sentry_profiles_sample_rate,
        "CONEXXUS_API_URL": conexxus_api_url,
        "CONEXXUS_API_KEY": conexxus_api_key,
        "CONEXXUS_TIMEOUT_SECONDS": conexxus_timeout_seconds,
        "STORE_TIMEZONE": store_timezone,
    }
    if non_interactive:
        answers = dict(given)
        if environment is not Environment.PRODUCTION:
            answers["ALLOWED_ORIGINS"] = allowed_origins or DEV_ORIGINS
    else:
        console.print(f"[bold]POS-Omni setup[/] — writing {output} for [bold]{environment.value}[/].")
        console.print("Press Enter to accept a default or skip an optional setting. Secrets are generated for you.\n")
        answers = _prompt(given, environment)
    # Only what the answers use: no port without a host, no Sentinel list without Sentinel.
    if not answers["REDIS_HOST"]:
        answers["REDIS_PORT"] = ""
    if not answers["REDIS_HOST"] and not answers["REDIS_SENTINEL_ENABLED"]:
        answers["REDIS_PASSWORD"] = ""
    if not answers["REDIS_SENTINEL_ENABLED"]:
        answers["REDIS_SENTINEL_MASTER_NAME"] = answers["REDIS_SENTINELS"] = ""

    values: dict[str, str] = {
        "POS_ENV": environment.value,
        "AUDIT_LOG_ENCRYPTION_KEY": generate_key(),
        "JWT_SECRET": secrets.token_urlsafe(48),
        "ALLOWED_ORIGINS": answers.pop("ALLOWED_ORIGINS"),
        "DATABASE_URL": answers.pop("DATABASE_URL"),
        **answers,
    }
    settings, problems = check(from_mapping({k: v for k, v in values.items() if v}))
    print_problems(problems)
    if settings is None:
        err_console.print("[red]Not written:[/] fix the errors above and run setup-env again.")
        raise typer.Exit(code=1)

    if check_connections:
        _connection_checks(settings)

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


def _prompt(given: dict[str, str], env: Environment) -> dict[str, str]:
    """Ask for every setting, offering `given` (the flags) as defaults; optional ones are skipped with Enter."""
    production = env is Environment.PRODUCTION
    answers = dict.fromkeys(given, "")

    def ask(variable: str, label: str = "", default: str | None = None, secret: bool = False, **context: str) -> str:
        answers[variable] = _ask(
            label or variable,
            given[variable] if default is None else default,
            _rule(variable, env, **context),
            secret=secret,
        )
        return answers[variable]

    hint = "postgresql://user:password@host:5432/posomni" if production else "empty: SQLite file under var/"
    ask("DATABASE_URL", f"DATABASE_URL ({hint})")
    ask(
        "ALLOWED_ORIGINS",
        default=given["ALLOWED_ORIGINS"] or ("https://pos.example.com" if production else DEV_ORIGINS),
    )
    if ask("STRIPE_SECRET_KEY", "STRIPE_SECRET_KEY (empty: card payments disabled)", secret=True):
        ask("STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET (whsec_…; empty: none)", secret=True)

    sentinel = typer.confirm(
        "Use Redis Sentinel (Redis servers with automatic failover)?", default=bool(given["REDIS_SENTINEL_ENABLED"])
    )
    if sentinel:
        answers["REDIS_SENTINEL_ENABLED"] = "true"
        master = ask(
            "REDIS_SENTINEL_MASTER_NAME",
            default=given["REDIS_SENTINEL_MASTER_NAME"] or "mymaster",
            REDIS_SENTINEL_ENABLED="true",
            REDIS_SENTINELS="sentinel:26379",
        )
        ask(
            "REDIS_SENTINELS",
            "REDIS_SENTINELS (host:port,host:port,…)",
            REDIS_SENTINEL_ENABLED="true",
            REDIS_SENTINEL_MASTER_NAME=master,
        )
        ask("REDIS_PASSWORD", "REDIS_PASSWORD of the Redis servers (empty: none)", secret=True)
    elif ask("REDIS_HOST", "REDIS_HOST (empty: in-memory fallback)"):
        ask("REDIS_PORT")
        ask("REDIS_PASSWORD", "REDIS_PASSWORD (empty: none)", secret=True)

    if ask("SENTRY_DSN", "SENTRY_DSN (empty: no error tracking)", secret=True):
        ask("SENTRY_ENVIRONMENT", default=given["SENTRY_ENVIRONMENT"] or env.value)
        traces_default = "0.1" if production else "0"
        ask(
            "SENTRY_TRACES_SAMPLE_RATE",
            "SENTRY_TRACES_SAMPLE_RATE (0–1)",
            given["SENTRY_TRACES_SAMPLE_RATE"] or traces_default,
        )
        ask(
            "SENTRY_PROFILES_SAMPLE_RATE",
            "SENTRY_PROFILES_SAMPLE_RATE (0–1)",
            given["SENTRY_PROFILES_SAMPLE_RATE"] or "0",
        )

    if ask("CONEXXUS_API_URL", "CONEXXUS_API_URL (back office; empty: none)", CONEXXUS_API_KEY="key"):
        ask("CONEXXUS_API_KEY", secret=True, CONEXXUS_API_URL=answers["CONEXXUS_API_URL"])
        ask("CONEXXUS_TIMEOUT_SECONDS", "CONEXXUS_TIMEOUT_SECONDS (0.5–30)", given["CONEXXUS_TIMEOUT_SECONDS"] or "5")

    ask("STORE_TIMEZONE")
    return answers


def _connection_checks(settings: Settings) -> None:
    error = run(_test_database(settings.database_url.get_secret_value()))
    if error is not None:
        err_console.print(f"[red]Database connection failed:[/] {error}")
        raise typer.Exit(code=1)
    console.print("[green]Database connection OK.[/]")
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    if settings.redis_sentinel_enabled:
        assert settings.redis_sentinel_master_name is not None  # required with Sentinel
        sentinels = [(s.host, s.port) for s in settings.redis_sentinels]
        redis_error = run(_test_sentinel(sentinels, settings.redis_sentinel_master_name, password))
        what = "Redis through Sentinel"
    elif settings.redis_host:
        redis_error = run(_test_redis(settings.redis_host, settings.redis_port, password))
        what = "Redis"
    else:
        return
    if redis_error is None:
        console.print(f"[green]{what} connection OK.[/]")
    else:
        # Redis is optional: the app falls back to memory, so this is a warning, not a refusal.
        err_console.print(f"[yellow]{what} not reachable now ({redis_error}); the app will fall back.[/]")
