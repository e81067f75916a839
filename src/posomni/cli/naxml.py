"""`posomni naxml export | import-pricebook` and `posomni backoffice pull-pricebook`: data exchange with the back
office (docs/back-office.md)."""

from __future__ import annotations

import getpass
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import NoReturn

import typer
from prometheus_client.registry import CollectorRegistry

from posomni import bootstrap
from posomni.auth.principal import Actor
from posomni.backoffice.client import build_backoffice_client
from posomni.backoffice.naxml import export
from posomni.backoffice.naxml.adapter import where
from posomni.backoffice.naxml.export import MovementType
from posomni.backoffice.naxml.parse import MAX_BYTES, PricebookRefused, check_size, parse_maintenance
from posomni.backoffice.naxml.pricebook import PricebookReport, apply_pricebook
from posomni.backoffice.pricebook_pull import PullReport, pull_pricebook
from posomni.cache.service import CacheService
from posomni.cli.common import EnvFileOption, console, err_console, open_database, run, settings_or_exit, unit_of_work
from posomni.config import Settings
from posomni.kit.errors import PosError

app = typer.Typer(help="NAXML files for the back office: movement reports out, the pricebook in.", no_args_is_help=True)
backoffice_app = typer.Typer(help="The back office over REST: pull the pricebook.", no_args_is_help=True)

# Problems printed before "… and N more" (the report still counts them all).
SHOWN = 200

TaxStrategyOption = typer.Option(
    [], "--tax-strategy", help="Map a back-office TaxStrategyID to a tax class: 101=standard (repeatable)."
)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (use YYYY-MM-DD)", param_hint="--date") from None


def _tax_map(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise typer.BadParameter(f"{pair!r} is not ID=CLASS", param_hint="--tax-strategy")
        mapping[key.strip()] = value.strip()
    return mapping


def _refuse(exc: PosError) -> NoReturn:
    err_console.print(f"[red]{exc.message}[/]", highlight=False)
    raise typer.Exit(code=1)


@app.command("export")
def export_command(
    kind: MovementType = typer.Option(..., "--type", case_sensitive=False, help="ISM (items) or MCM (departments)."),
    day: str = typer.Option(..., "--date", help="The business date, YYYY-MM-DD."),
    store: str = typer.Option("", help="Store code (default: the only store)."),
    output: Path | None = typer.Option(None, "--output", "-o", dir_okay=False, help="Write here, not to stdout."),
    as_json: bool = typer.Option(False, "--json", help="The JSON document for the REST API instead of XML."),
    env_file: Path = EnvFileOption,
) -> None:
    """Write one business day's item (ISM) or department (MCM) movement of one store."""
    settings = settings_or_exit(env_file)
    business_date = _date(day)

    async def go() -> bytes:
        async with open_database(settings) as database, database.sessionmaker() as session:
            found = await export.resolve_store(session, store or None)
            movement = await export.load(session, found, business_date)
        if as_json:
            text = json.dumps(export.render_json(movement, kind), indent=2, ensure_ascii=False) + "\n"
            return text.encode()
        return export.render_xml(movement, kind)

    try:
        data = run(go())
    except PosError as exc:
        _refuse(exc)
    if output is None:
        # Bytes go to the binary stream as they are: the XML declares its own encoding.
        typer.echo(data, nl=False)
        return
    output.write_bytes(data)
    err_console.print(f"Wrote {kind.value} for {business_date} to {output}.", highlight=False)


def _print(report: PricebookReport, skip_invalid: bool, dry_run: bool) -> None:
    for warning in report.warnings:
        err_console.print(f"[yellow]warning[/] {warning}", highlight=False)
    for error in report.errors[:SHOWN]:
        if not error.position:
            at = "pricebook"
        elif report.source == "naxml":
            at = f"{where(report.source, error.record, error.position)} {error.record}"
        else:
            at = where(report.source, error.record, error.position)
        key = f" ({error.key})" if error.key else ""
        err_console.print(f"{at}{key}: [red]{error.code}[/] {error.message}", highlight=False)
    if len(report.errors) > SHOWN:
        err_console.print(f"… and {len(report.errors) - SHOWN} more problems")
    if report.applied:
        console.print(
            f"Applied {report.items} item and {report.departments} department records ({report.skipped} skipped): "
            f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.deactivated} deactivated; {report.price_changes} price changes; departments "
            f"{report.departments_created} created, {report.departments_updated} updated, "
            f"{report.departments_deleted} deleted.",
            highlight=False,
        )
    elif dry_run and not report.errors:
        console.print(f"All {report.items + report.departments} records are valid (dry run: nothing imported).")
    elif dry_run:
        err_console.print(f"[red]{report.skipped} invalid record(s)[/] (dry run: nothing imported).", highlight=False)
    else:
        hint = "" if skip_invalid else " Fix them, or pass --skip-invalid to apply the valid records only."
        err_console.print(f"[red]{report.skipped} invalid record(s): nothing imported.[/]{hint}", highlight=False)


def _cache(settings: Settings) -> CacheService:
    return CacheService.from_settings(settings, namespace=settings.redis_namespace, registry=CollectorRegistry())


@app.command("import-pricebook")
def import_pricebook_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="The NAXML maintenance file."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Apply the valid records, report the others."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check only."),
    tax_strategy: list[str] = TaxStrategyOption,
    max_bytes: int = typer.Option(MAX_BYTES, "--max-bytes", min=1, help="Refuse larger files unread."),
    env_file: Path = EnvFileOption,
) -> None:
    """Add, change and deactivate items and departments from an NAXML item-maintenance file; all or nothing."""
    settings = settings_or_exit(env_file)
    crypto = bootstrap.encryption(settings)
    tax_map = _tax_map(tax_strategy)
    try:
        # Before reading a byte: a huge file is refused as it is.
        check_size(file.stat().st_size, max_bytes)
        data = file.read_bytes()
        book = parse_maintenance(data)
    except PricebookRefused as refused:
        _refuse(refused)
    actor = Actor.system(f"cli:{getpass.getuser()}")

    async def go() -> PricebookReport:
        cache = _cache(settings)
        try:
            async with unit_of_work(settings) as session:
                return await apply_pricebook(
                    session, cache, crypto, actor, book, sha256=hashlib.sha256(data).hexdigest(),
                    source_name=file.name, skip_invalid=skip_invalid, dry_run=dry_run, tax_strategies=tax_map,
                )  # fmt: skip
        finally:
            await cache.close()

    report = run(go())
    _print(report, skip_invalid, dry_run)
    if (report.errors and not skip_invalid) or not (report.applied or dry_run):
        raise typer.Exit(code=1)


@backoffice_app.command("pull-pricebook")
def pull_pricebook_command(
    store: str = typer.Option("", help="Store code (default: the only store)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Apply the valid records, report the others."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Fetch and check only."),
    force: bool = typer.Option(False, "--force", help="Apply even if it is the pricebook applied last time."),
    env_file: Path = EnvFileOption,
) -> None:
    """GET the store's pricebook from the back office (CONEXXUS_API_URL) and apply it if it changed."""
    settings = settings_or_exit(env_file)
    if settings.conexxus_api_url is None:
        err_console.print("[red]No back office configured: set CONEXXUS_API_URL and CONEXXUS_API_KEY.[/]")
        raise typer.Exit(code=1)
    crypto = bootstrap.encryption(settings)
    actor = Actor.system(f"cli:{getpass.getuser()}")

    async def go() -> PullReport:
        cache, client = _cache(settings), build_backoffice_client(settings)
        try:
            async with open_database(settings) as database:
                return await pull_pricebook(
                    database, crypto, cache, client, actor, store_code=store or None, skip_invalid=skip_invalid,
                    dry_run=dry_run, force=force,
                )  # fmt: skip
        finally:
            await client.close()
            await cache.close()

    try:
        pulled = run(go())
    except PosError as exc:
        _refuse(exc)
    if pulled.report is not None:
        _print(pulled.report, skip_invalid, dry_run)
    if pulled.status == "unchanged":
        console.print(f"The pricebook of {pulled.store} is unchanged since it was last applied.")
    elif pulled.status in ("refused", "unavailable"):
        err_console.print(f"[red]No pricebook applied for {pulled.store}:[/] {pulled.error}", highlight=False)
    if pulled.status in ("refused", "unavailable", "invalid"):
        raise typer.Exit(code=1)
