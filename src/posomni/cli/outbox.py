"""`posomni outbox …`: what waits for the back office, and sending messages again."""

from __future__ import annotations

import getpass
from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from posomni import bootstrap
from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.cli.common import EnvFileOption, console, err_console, open_database, run, settings_or_exit
from posomni.config import Settings
from posomni.kit.errors import PosError
from posomni.outbox import service
from posomni.outbox.schemas import DeadMessage, OutboxStatus
from posomni.security.crypto import EncryptionService

app = typer.Typer(help="Back-office outbox: status, retry dead messages, replay a period.", no_args_is_help=True)


def _fail(action: str, exc: Exception) -> None:
    if isinstance(exc, PosError):
        err_console.print(f"[red]{action} refused:[/] {exc.message} {exc.details or ''}".rstrip())
    else:
        original = getattr(exc, "orig", None) or exc
        first_line = str(original).splitlines()[0][:300] if str(original) else ""
        err_console.print(f"[red]{action} failed:[/] {type(original).__name__}: {first_line}")
    raise typer.Exit(code=1)


def _actor() -> Actor:
    return Actor.system(f"cli:{getpass.getuser()}")


async def _audit_retried(session: AsyncSession, crypto: EncryptionService, actor: Actor, parked: DeadMessage) -> None:
    # The same entry as a retry from the back-office screen, in the retry's transaction; `by` names the
    # shell user, since a system actor has no user id.
    details: dict[str, Any] = {
        "topic": parked.topic, "aggregate_id": parked.aggregate_id, "idempotency_key": parked.idempotency_key,
        "attempts": parked.attempts, "last_error": parked.last_error, "by": actor.name,
    }  # fmt: skip
    await audit.record(
        session, crypto, actor, "outbox.retried", store_id=parked.store_id, target_type="outbox_message",
        target_id=parked.id, details=details,
    )  # fmt: skip


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (use YYYY-MM-DD)", param_hint=option) from None


async def _status(settings: Settings, limit: int) -> OutboxStatus:
    async with open_database(settings) as database, database.sessionmaker() as session:
        return await service.status(session, dead_limit=limit)


def _print_status(report: OutboxStatus, settings: Settings) -> None:
    if settings.conexxus_api_url is None:
        console.print("[yellow]No back office configured (CONEXXUS_API_URL): messages stay pending.[/]")
    age = report.oldest_pending_age_seconds
    console.print(
        f"pending: {report.pending} (failing: {report.failing})"
        + (f", oldest waiting {age:.0f}s" if age is not None else "")
    )
    console.print(f"delivered: {report.delivered}")
    style = "red" if report.dead else "green"
    console.print(f"dead: [{style}]{report.dead}[/]")
    if not report.dead_messages:
        return
    table = Table(title="Dead messages (retry with `posomni outbox retry ID` or `--all-dead`)")
    for column in ("id", "store", "topic", "aggregate", "attempts", "last error"):
        table.add_column(column, overflow="fold")
    for m in report.dead_messages:
        store = str(m.store_id) if m.store_id is not None else "-"
        table.add_row(str(m.id), store, m.topic, m.aggregate_id, str(m.attempts), m.last_error or "")
    console.print(table)


@app.command("status")
def status_command(
    env_file: Path = EnvFileOption,
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
    limit: int = typer.Option(20, "--limit", min=0, help="How many dead messages to list."),
) -> None:
    """Depth and age of the queue, delivered count and the dead messages."""
    settings = settings_or_exit(env_file)
    try:
        report = run(_status(settings, limit))
    except (SQLAlchemyError, OSError) as exc:
        _fail("Status", exc)
        return
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print_status(report, settings)


@app.command("retry")
def retry_command(
    message_id: int | None = typer.Argument(None, help="The id of a dead message."),
    all_dead: bool = typer.Option(False, "--all-dead", help="Retry every dead message."),
    env_file: Path = EnvFileOption,
) -> None:
    """Put dead messages back in their store's queue, at their original place, with a fresh attempt budget."""
    if (message_id is None) == (not all_dead):
        raise typer.BadParameter("give a message ID or --all-dead (not both)")
    settings = settings_or_exit(env_file)
    crypto = bootstrap.encryption(settings)
    actor = _actor()

    async def go() -> int:
        async with open_database(settings) as database, database.unit_of_work() as session:
            if message_id is not None:
                parked = [await service.retry(session, message_id)]
            else:
                parked = await service.retry_all_dead(session)
            # One entry per message, in its store's audit chain, committed with the requeue or not at all.
            for message in parked:
                await _audit_retried(session, crypto, actor, message)
            return len(parked)

    try:
        count = run(go())
    except (PosError, SQLAlchemyError, OSError) as exc:
        _fail("Retry", exc)
        return
    console.print(f"[green]{count} message(s) back in the queue.[/]")


@app.command("replay")
def replay_command(
    start: str = typer.Option(..., "--from", help="First business date to send again (YYYY-MM-DD)."),
    end: str | None = typer.Option(None, "--to", help="Last business date, inclusive (default: up to now)."),
    store: str | None = typer.Option(None, "--store", help="Only this store (its code)."),
    env_file: Path = EnvFileOption,
) -> None:
    """Send a period again: its delivered messages go back to pending with their idempotency keys, so the
    back office drops what it already has. Dates are each store's local dates."""
    first = _date(start, "--from")
    last = _date(end, "--to") if end is not None else None
    settings = settings_or_exit(env_file)
    crypto = bootstrap.encryption(settings)
    actor = _actor()

    async def go() -> int:
        async with open_database(settings) as database, database.unit_of_work() as session:
            lanes = await service.replay(
                session, start=first, end=last, store_code=store, default_timezone=settings.store_timezone
            )
            # One entry per store whose messages go back (the chain-wide ones in the chain-wide audit chain),
            # in the replay's transaction.
            for lane in lanes:
                if lane.count:
                    await audit.record(
                        session, crypto, actor, "outbox.replayed", store_id=lane.store_id,
                        target_type="store" if lane.store_id is not None else None, target_id=lane.store_id,
                        details={"from": first.isoformat(), "to": last.isoformat() if last else None,
                                 "store": lane.store_code, "messages": lane.count, "by": actor.name},
                    )  # fmt: skip
            return sum(lane.count for lane in lanes)

    try:
        count = run(go())
    except (PosError, SQLAlchemyError, OSError) as exc:
        _fail("Replay", exc)
        return
    console.print(f"[green]{count} delivered message(s) queued to be sent again.[/]")
