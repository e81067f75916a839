"""`posomni worker` and `posomni sagas recover`."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import typer

from posomni import bootstrap, worker
from posomni.backoffice.client import build_backoffice_client
from posomni.cache.service import CacheService
from posomni.cli.common import EnvFileOption, console, open_database, run, settings_or_exit
from posomni.config import Settings
from posomni.logging import configure_logging
from posomni.sales.refund_saga import Refunds
from posomni.sales.saga import Checkout

sagas = typer.Typer(help="Sales and refunds interrupted half-way.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("worker")(run_worker)
    app.add_typer(sagas, name="sagas")


async def _work(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    cache = CacheService.from_settings(settings, namespace=settings.redis_namespace)
    await cache.start()
    gateway = bootstrap.card_gateway(settings)
    backoffice = build_backoffice_client(settings)
    try:
        async with open_database(settings) as database:
            await worker.run(database, bootstrap.encryption(settings), gateway, backoffice, cache, stop, settings)
    finally:
        await backoffice.close()
        if gateway is not None:
            await gateway.close()
        await cache.close()


def run_worker(env_file: Path = EnvFileOption) -> None:
    """Deliver the back-office outbox, finish interrupted sales and refunds, reconcile card payments with Stripe,
    take scheduled backups and tidy up — until stopped."""
    settings = settings_or_exit(env_file)
    configure_logging(settings.log_level, settings.log_format)
    console.print("POS-Omni worker running; stop with Ctrl-C.")
    run(_work(settings))


@sagas.command("recover")
def recover(
    env_file: Path = EnvFileOption,
    all_: bool = typer.Option(
        False, "--all", help="Also take over sales another process is still working on (only when none runs)."
    ),
) -> None:
    """Complete sales whose money was captured and compensate the rest; finish half-done refunds."""
    settings = settings_or_exit(env_file)

    async def go() -> tuple[list[tuple[int, str]], list[int]]:
        gateway = bootstrap.card_gateway(settings)
        crypto = bootstrap.encryption(settings)
        try:
            async with open_database(settings) as database:
                results = await Checkout(database, crypto, gateway).recover(include_live=all_)
                finished = await Refunds(database, crypto, gateway).finish_pending()
                return results, finished
        finally:
            if gateway is not None:
                await gateway.close()

    results, finished = run(go())
    if not results and not finished:
        console.print("Nothing to recover.")
    for sale_id, outcome in results:
        console.print(f"sale {sale_id}: {outcome}")
    for refund_id in finished:
        console.print(f"refund {refund_id}: finished")
