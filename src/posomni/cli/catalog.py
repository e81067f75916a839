"""`posomni catalog import | export`: move a catalog in and out as CSV."""

from __future__ import annotations

import getpass
from pathlib import Path

import typer
from prometheus_client.registry import CollectorRegistry
from sqlalchemy import select

from posomni import bootstrap
from posomni.auth.principal import Actor
from posomni.cache.service import CacheService
from posomni.catalog.import_writer import ImportReport, export_catalog, import_catalog
from posomni.catalog.importer import read_file
from posomni.cli.common import EnvFileOption, console, err_console, run, settings_or_exit, unit_of_work
from posomni.config import Settings
from posomni.stores.models import Store

app = typer.Typer(help="The product catalog: import from another system, export.", no_args_is_help=True)

# Problems printed before "… and N more" (the report still counts them all).
SHOWN = 200


async def _store_id(settings: Settings, code: str) -> int | None:
    if not code:
        return None
    async with unit_of_work(settings) as session:
        store_id = await session.scalar(select(Store.id).where(Store.code == code))
    if store_id is None:
        err_console.print(f"[red]No store with code {code!r}.[/]")
        raise typer.Exit(code=1)
    return int(store_id)


def _print(report: ImportReport, skip_invalid: bool, dry_run: bool) -> None:
    for warning in report.warnings:
        err_console.print(f"[yellow]warning[/] {warning}", highlight=False)
    for error in report.errors[:SHOWN]:
        sku = f" ({error.sku})" if error.sku else ""
        err_console.print(
            f"line {error.line}{sku}: {error.field}: [red]{error.code}[/] {error.message}", highlight=False
        )
    if len(report.errors) > SHOWN:
        err_console.print(f"… and {len(report.errors) - SHOWN} more problems")
    if report.imported:
        console.print(
            f"Imported {report.rows - report.skipped} of {report.rows} rows: {report.created} created, "
            f"{report.updated} updated, {report.unchanged} unchanged, {report.skipped} skipped; "
            f"{report.price_changes} price changes, {report.stock_changes} stock movements.",
            highlight=False,
        )
    elif dry_run and not report.errors:
        console.print(f"All {report.rows} rows are valid (dry run: nothing imported).")
    else:
        bad = len({e.line for e in report.errors})
        hint = "" if skip_invalid else " Fix them, or pass --skip-invalid to import the valid rows only."
        err_console.print(f"[red]{bad} invalid row(s): nothing imported.[/]{hint}", highlight=False)


@app.command("import")
def import_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="The CSV file."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Import the valid rows, report the others."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate only."),
    store: str = typer.Option("", help="Store code the stock column is for (needed with several stores)."),
    env_file: Path = EnvFileOption,
) -> None:
    """Create or update products by SKU from a CSV file; every row is checked first."""
    settings = settings_or_exit(env_file)
    crypto = bootstrap.encryption(settings)
    try:
        text = read_file(file)
    except UnicodeDecodeError:
        err_console.print("[red]The file is not UTF-8 text.[/]")
        raise typer.Exit(code=1) from None

    async def go() -> ImportReport:
        store_id = await _store_id(settings, store)
        cache = CacheService.from_settings(settings, namespace=settings.redis_namespace, registry=CollectorRegistry())
        try:
            async with unit_of_work(settings) as session:
                return await import_catalog(
                    session, cache, crypto, Actor.system(f"cli:{getpass.getuser()}"), text, store_id=store_id,
                    skip_invalid=skip_invalid, dry_run=dry_run, source=file.name,
                )  # fmt: skip
        finally:
            await cache.close()

    report = run(go())
    _print(report, skip_invalid, dry_run)
    if report.errors and not skip_invalid:
        raise typer.Exit(code=1)
    if not report.imported and not dry_run:
        raise typer.Exit(code=1)


@app.command("export")
def export_command(
    file: Path = typer.Argument(..., dir_okay=False, help="The CSV file to write."),
    store: str = typer.Option("", help="Store code whose stock to include (default: the only store, if one)."),
    env_file: Path = EnvFileOption,
) -> None:
    """Write the catalog as CSV, in the format `catalog import` reads."""
    settings = settings_or_exit(env_file)

    async def go() -> int:
        store_id = await _store_id(settings, store)
        async with unit_of_work(settings) as session:
            if store_id is None:
                stores = list(await session.scalars(select(Store.id).limit(2)))
                store_id = stores[0] if len(stores) == 1 else None
            with file.open("w", encoding="utf-8", newline="") as out:
                return await export_catalog(session, out, store_id=store_id)

    count = run(go())
    console.print(f"Exported {count} products to {file}.")
