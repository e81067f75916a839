"""`posomni compliance report`: ID checks, refusals, overrides and unverified age-restricted sales."""

from __future__ import annotations

import enum
import json
from datetime import date, datetime
from pathlib import Path

import typer
from rich.table import Table

from posomni.cli.common import EnvFileOption, console, err_console, open_database, run, settings_or_exit
from posomni.compliance import reports
from posomni.compliance.schemas import SummaryOut, UnverifiedSalesOut
from posomni.kit.errors import PosError
from posomni.stores import service as stores

app = typer.Typer(help="Alcohol compliance: ID-check reports.", no_args_is_help=True)


class ReportFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


async def _report(
    env_file: Path, date_from: date, date_to: date, store_code: str
) -> tuple[SummaryOut, UnverifiedSalesOut]:
    settings = settings_or_exit(env_file)
    async with open_database(settings) as database, database.sessionmaker() as session:
        store_id = (await stores.store_by_code(session, store_code)).id if store_code else None
        scope = reports.ReportScope(date_from, date_to, store_id)
        return await reports.summary(session, scope), await reports.unverified_sales(session, scope)


def _table(summary: SummaryOut, unverified: UnverifiedSalesOut) -> None:
    totals = summary.totals
    console.print(
        f"ID checks {summary.date_from} to {summary.date_to}: {totals.checks} "
        f"(passed {totals.passed}, refused {totals.refused}, overridden {totals.overridden})"
    )
    for title, rows in (
        ("By day", [(str(d.business_date), d) for d in summary.by_day]),
        ("By clerk", [(c.clerk, c) for c in summary.by_clerk]),
    ):
        table = Table(title=title)
        for name in ("", "checks", "passed", "refused", "overridden"):
            table.add_column(name)
        for label, c in rows:
            table.add_row(label, str(c.checks), str(c.passed), str(c.refused), str(c.overridden))
        console.print(table)
    refusals = Table(title="Refusals")
    for name in ("event", "date", "clerk", "method", "reason", "overridden by"):
        refusals.add_column(name)
    for r in summary.refusals:
        by = str(r.overridden_by_event_id or "")
        refusals.add_row(str(r.event_id), str(r.business_date), r.clerk, r.method, r.reason or "", by)
    console.print(refusals)
    overrides = Table(title="Overrides")
    for name in ("event", "date", "clerk", "manager", "refusal", "reason"):
        overrides.add_column(name, overflow="fold")
    for o in summary.overrides:
        overrides.add_row(
            str(o.event_id), str(o.business_date), o.clerk, o.manager or "", o.reason or "", o.override_reason or ""
        )
    console.print(overrides)
    for clerk in summary.clerks_without_birth_date:
        console.print(f"[yellow]No birth date on file[/] for {clerk.clerk} ({clerk.age_restricted_sales} sales)")
    if unverified.count:
        console.print(f"[red]{unverified.count} age-restricted sale(s) without a passing ID check:[/]")
        for s in unverified.sales:
            console.print(
                f"  sale {s.sale_id} receipt {s.receipt_number} on {s.business_date} (needs {s.required_min_age}+)"
            )
    else:
        console.print("[green]Every age-restricted sale has a passing ID check.[/]")


@app.command("report")
def report(
    date_from: datetime = typer.Option(..., "--from", formats=["%Y-%m-%d"], help="First business date."),
    date_to: datetime = typer.Option(..., "--to", formats=["%Y-%m-%d"], help="Last business date (inclusive)."),
    store: str = typer.Option("", "--store", help="A store's code (default: every store)."),
    output: ReportFormat = typer.Option(ReportFormat.TABLE, "--format", help="table, json or csv."),
    fail_on_unverified: bool = typer.Option(
        False, "--fail-on-unverified", help="Exit 2 when any age-restricted sale lacks a passing check."
    ),
    env_file: Path = EnvFileOption,
) -> None:
    """Checks per day and clerk, refusals and overrides with reasons, and age-restricted sales without a
    passing check (must be none)."""
    try:
        summary, unverified = run(_report(env_file, date_from.date(), date_to.date(), store))
    except PosError as exc:
        err_console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(code=1) from None
    if output is ReportFormat.JSON:
        document = {"summary": summary.model_dump(mode="json"), "unverified_sales": unverified.model_dump(mode="json")}
        typer.echo(json.dumps(document, indent=2))
    elif output is ReportFormat.CSV:
        rows = reports.summary_rows(summary, unverified)
        typer.echo(reports.to_csv(reports.SUMMARY_COLUMNS, rows), nl=False)
    else:
        _table(summary, unverified)
    if fail_on_unverified and unverified.count:
        raise typer.Exit(code=2)
