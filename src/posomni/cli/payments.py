"""`posomni payments …`: reconcile card payments with Stripe; process stored webhook events again."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from posomni import bootstrap
from posomni.cli.common import EnvFileOption, console, err_console, open_database, run, settings_or_exit
from posomni.kit.errors import PosError
from posomni.payments import tasks, webhooks
from posomni.payments.reconcile import ReconciliationReport

app = typer.Typer(help="Card payments: reconciliation with Stripe, webhook events.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Stripe webhook events stored by the server.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


def _fail(action: str, exc: Exception) -> None:
    if isinstance(exc, PosError):
        err_console.print(f"[red]{action} refused:[/] {exc.message} {exc.details or ''}".rstrip(), highlight=False)
    else:
        original = getattr(exc, "orig", None) or exc
        first_line = str(original).splitlines()[0][:300] if str(original) else ""
        err_console.print(f"[red]{action} failed:[/] {type(original).__name__}: {first_line}", highlight=False)
    raise typer.Exit(code=1)


def _print_report(report: ReconciliationReport) -> None:
    style = "green" if report.clean else "red"
    console.print(
        f"[bold]{report.store_code}[/] {report.business_date.isoformat()}: {report.local_count} local, "
        f"{report.processor_count} at the processor — [{style}]{len(report.mismatches)} mismatch(es)[/], "
        f"{sum(o.voided for o in report.orphans)} orphan(s) voided",
        highlight=False,
        soft_wrap=True,
    )
    if report.mismatches:
        table = Table(title="Mismatches")
        for column in ("kind", "reference", "payment", "sale", "local", "processor", "detail"):
            table.add_column(column, overflow="fold")
        for m in report.mismatches:
            table.add_row(
                m.kind.value,
                m.reference or "-",
                str(m.payment_id or "-"),
                str(m.sale_id or "-"),
                m.local or "-",
                m.processor or "-",
                m.detail,
            )
        console.print(table)
    if report.orphans:
        table = Table(title="Orphan authorisations")
        for column in ("reference", "payment", "sale", "amount", "authorised at", "result"):
            table.add_column(column, overflow="fold")
        for o in report.orphans:
            result = "voided" if o.voided else (f"[red]not voided: {o.error}[/]" if o.error else "would void")
            table.add_row(
                o.reference,
                str(o.payment_id or "-"),
                str(o.sale_id or "-"),
                f"{o.amount_cents / 100:.2f}",
                o.authorized_at.isoformat(timespec="seconds"),
                result,
            )
        console.print(table)


@app.command("reconcile")
def reconcile_command(
    day: str | None = typer.Option(None, "--date", help="Business date YYYY-MM-DD (default: each store's today)."),
    store: str | None = typer.Option(None, "--store", help="Only this store (its code)."),
    older_than: int | None = typer.Option(
        None,
        "--void-orphans-older-than",
        min=1,
        help="Void uncaptured authorisations older than this (minutes; default RECONCILE_ORPHAN_AGE_MINUTES, 60).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report orphans without voiding them."),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON."),
    env_file: Path = EnvFileOption,
) -> None:
    """Compare the day's card payments with Stripe and report every mismatch; void orphan authorisations.
    Exit 0 when everything matches, 1 otherwise."""
    try:
        business_date = date.fromisoformat(day) if day else None
    except ValueError:
        raise typer.BadParameter(f"{day!r} is not a date (use YYYY-MM-DD)", param_hint="--date") from None
    settings = settings_or_exit(env_file)
    gateway = bootstrap.card_gateway(settings)
    if gateway is None:
        err_console.print("[red]No card processor is configured (CARD_PROCESSOR / STRIPE_SECRET_KEY).[/]")
        raise typer.Exit(code=1)
    crypto = bootstrap.encryption(settings)
    age_minutes = older_than if older_than is not None else settings.reconcile_orphan_age_minutes

    async def go() -> list[ReconciliationReport]:
        try:
            async with open_database(settings) as database:
                return await tasks.reconcile(
                    database,
                    gateway,
                    crypto,
                    business_date=business_date,
                    store_code=store,
                    void_older_than=timedelta(minutes=age_minutes),
                    dry_run=dry_run,
                )
        finally:
            await gateway.close()

    try:
        reports = run(go())
    except (PosError, SQLAlchemyError, OSError) as exc:
        _fail("Reconciliation", exc)
        return
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in reports], indent=2))
    else:
        for report in reports:
            _print_report(report)
    if not all(r.clean for r in reports):
        raise typer.Exit(code=1)


@webhooks_app.command("status")
def webhooks_status(env_file: Path = EnvFileOption) -> None:
    """Events stored but not processed yet, with their last error."""
    settings = settings_or_exit(env_file)

    async def go() -> list[tuple[str, str, int, str]]:
        async with open_database(settings) as database, database.sessionmaker() as session:
            return [(e.id, e.type, e.attempts, e.last_error or "") for e in await webhooks.unprocessed(session)]

    try:
        rows = run(go())
    except (SQLAlchemyError, OSError) as exc:
        _fail("Status", exc)
        return
    if not rows:
        console.print("[green]Every stored event is processed.[/]")
        return
    console.print(f"[yellow]{len(rows)} unprocessed event(s)[/] (process again: posomni payments webhooks retry)")
    for event_id, event_type, attempts, error in rows:
        console.print(f"{event_id}  {event_type}  attempts={attempts}  {error}", highlight=False, soft_wrap=True)


@webhooks_app.command("retry")
def webhooks_retry(
    event_id: str | None = typer.Argument(None, help="One event id (default: every unprocessed event)."),
    env_file: Path = EnvFileOption,
) -> None:
    """Process again the stored events whose processing failed. Exit 1 when some still fail."""
    settings = settings_or_exit(env_file)
    crypto = bootstrap.encryption(settings)

    async def go() -> list[tuple[str, str]]:
        async with open_database(settings) as database, database.unit_of_work() as session:
            return await webhooks.retry_unprocessed(session, crypto, event_id=event_id)

    try:
        results = run(go())
    except (PosError, SQLAlchemyError, OSError) as exc:
        _fail("Retry", exc)
        return
    failed = [r for r in results if r[1] == "webhook_processing_failed"]
    for event, outcome in results:
        style = "red" if outcome == "webhook_processing_failed" else "green"
        console.print(f"{event}: [{style}]{outcome}[/]", highlight=False)
    console.print(f"{len(results) - len(failed)} event(s) processed, {len(failed)} still failing.")
    if failed:
        raise typer.Exit(code=1)
