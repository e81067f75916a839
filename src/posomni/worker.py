"""Background work: deliver the outbox, finish interrupted sales and refunds, tidy expired revocations,
reconcile card payments with Stripe (voiding orphan authorisations) every RECONCILE_INTERVAL_MINUTES, and
take the daily backup when BACKUP_SCHEDULE is set.

Runs as its own process (`posomni worker`) or inside `posomni serve --with-worker` for a one-machine store.
Several worker processes are safe on PostgreSQL; on SQLite run one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

from posomni.auth.revocation import RevocationStore
from posomni.backoffice.client import BackOfficeClient
from posomni.backups import tasks as backups
from posomni.cache.service import CacheService
from posomni.config import Settings
from posomni.database import Database
from posomni.logging import get_logger
from posomni.outbox.worker import OutboxWorker
from posomni.payments.gateway import PaymentGateway
from posomni.payments.tasks import ReconciliationTask
from posomni.sales.refund_saga import Refunds
from posomni.sales.saga import Checkout
from posomni.security.crypto import EncryptionService

log = get_logger(__name__)

RECOVERY_INTERVAL_S = 60.0
TIDY_INTERVAL_S = 3600.0


async def _every(seconds: float, stop: asyncio.Event, name: str, job: Callable[[], Awaitable[object]]) -> None:
    while not stop.is_set():
        try:
            await job()
        except Exception:  # one failed round must not stop the loop; it is logged and retried
            log.exception("background_job_failed", job=name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)


def outbox_worker(database: Database, backoffice: BackOfficeClient, settings: Settings | None) -> OutboxWorker:
    """The outbox worker as configured: OUTBOX_MAX_ATTEMPTS failed deliveries park a message."""
    if settings is None:
        return OutboxWorker(database, backoffice)
    return OutboxWorker(database, backoffice, max_attempts=settings.outbox_max_attempts)


async def run(
    database: Database,
    crypto: EncryptionService,
    gateway: PaymentGateway | None,
    backoffice: BackOfficeClient,
    cache: CacheService,
    stop: asyncio.Event,
    settings: Settings | None = None,
) -> None:
    checkout = Checkout(database, crypto, gateway)
    refunds = Refunds(database, crypto, gateway)
    revocations = RevocationStore(cache)

    async def recover() -> None:
        results = await checkout.recover()
        finished = await refunds.finish_pending()
        if results or finished:
            log.info("recovered", sales=results, refunds=finished)

    async def tidy() -> None:
        async with database.unit_of_work() as session:
            removed = await revocations.purge_expired(session)
        if removed:
            log.info("expired_revocations_removed", count=removed)

    jobs: list[Awaitable[object]] = [
        outbox_worker(database, backoffice, settings).run_forever(stop),
        _every(RECOVERY_INTERVAL_S, stop, "recovery", recover),
        _every(TIDY_INTERVAL_S, stop, "tidy", tidy),
    ]
    schedule = settings.backup_schedule if settings is not None else None
    if settings is not None and schedule is not None:
        configured = settings

        async def backup() -> None:
            await backups.run_if_due(database, configured, crypto)

        jobs.append(_every(backups.CHECK_INTERVAL_S, stop, "backup", backup))
    # Only Stripe keeps a record to reconcile against; the simulated processor has none.
    reconcile_every = 0
    if settings is not None and settings.card_processor == "stripe" and gateway is not None:
        reconcile_every = settings.reconcile_interval_minutes
        if reconcile_every > 0:
            reconciliation = ReconciliationTask(
                database,
                gateway,
                crypto,
                interval_seconds=reconcile_every * 60.0,
                void_older_than=timedelta(minutes=settings.reconcile_orphan_age_minutes),
            )
            jobs.append(reconciliation.run_forever(stop))
    log.info(
        "worker_started",
        backoffice=backoffice.configured,
        backup_schedule=str(schedule) if schedule else "off",
        reconciliation=f"every {reconcile_every} min" if reconcile_every else "off",
    )
    await asyncio.gather(*jobs)
