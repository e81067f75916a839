"""Reconciliation as a job: `posomni payments reconcile` and the periodic run of a worker.

It commits between its own steps, and no transaction is open while it talks to the processor: read what we
have (short transaction), ask the processor, compare, then void each orphan and record that void in a
transaction of its own — so a crash half-way leaves every void either recorded or safe to repeat (each void
has a deterministic idempotency key). Rules and report shapes are in `reconcile.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.database import Database
from posomni.kit.errors import NotFound, PosError
from posomni.kit.time import local_date, utcnow
from posomni.logging import get_logger
from posomni.payments import reconcile as rules
from posomni.payments.errors import ReconciliationUnsupported
from posomni.payments.gateway import CardStatus, PaymentGateway, PaymentStateError
from posomni.payments.models import Payment, PaymentStatus
from posomni.payments.reconcile import (
    SALE_KEEPS_AUTHORIZATION,
    Mismatch,
    MismatchKind,
    Orphan,
    PaymentLister,
    ProcessorPayment,
    ReconciliationReport,
)
from posomni.payments.service import apply_card_result
from posomni.sales.models import SaleStatus
from posomni.security.crypto import EncryptionService

log = get_logger(__name__)

DEFAULT_ORPHAN_AGE = timedelta(minutes=60)
DEFAULT_INTERVAL_SECONDS = 900.0
ACTOR = Actor.system("reconciliation")


@dataclass(frozen=True)
class _Candidate:
    reference: str
    payment_id: int | None
    sale_id: int | None
    amount_cents: int
    authorized_at: datetime


async def reconcile(
    database: Database,
    gateway: PaymentGateway,
    crypto: EncryptionService,
    *,
    business_date: date | None = None,
    store_code: str | None = None,
    void_older_than: timedelta | None = DEFAULT_ORPHAN_AGE,
    dry_run: bool = False,
    now: datetime | None = None,
) -> list[ReconciliationReport]:
    """One report per store (or the one store named): the business day defaults to each store's today.
    `void_older_than=None` reports without voiding anything, as does `dry_run`."""
    if not isinstance(gateway, PaymentLister):
        raise ReconciliationUnsupported()
    moment = now or utcnow()
    async with database.sessionmaker() as session:
        targets = [(s.id, s.code, s.timezone) for s in await rules.stores(session, store_code)]
    if store_code is not None and not targets:
        raise NotFound("No store has that code.", details={"store": store_code})
    seen: set[str] = set()
    reports = []
    for store_id, code, timezone in targets:
        day = business_date or local_date(timezone, moment)
        start, end = rules.business_day_window(timezone, day)
        report = ReconciliationReport(code, day, start, end)
        found = await gateway.list_payments(created_from=start, created_to=end)
        report.processor_count = len(found)
        listed = {p.reference: p for p in found}
        await _compare_day(database, gateway, report, store_id, listed, seen)
        if void_older_than is not None:
            await _void_orphans(database, gateway, crypto, report, store_id, listed, moment - void_older_than, dry_run)
        if not report.clean:
            log.warning(
                "reconciliation_mismatches",
                store=code,
                business_date=day.isoformat(),
                mismatches=[m.as_dict() for m in report.mismatches],
            )
        reports.append(report)
    return reports


async def _compare_day(
    database: Database,
    gateway: PaymentGateway,
    report: ReconciliationReport,
    store_id: int,
    listed: dict[str, ProcessorPayment],
    seen: set[str],
) -> None:
    async with database.sessionmaker() as session:
        local = await rules.local_payments(session, gateway.name, store_id, report.window_start, report.window_end)
        local_refs = {p.provider_reference for p in local if p.provider_reference}
        others = await rules.payments_by_reference(session, gateway.name, [r for r in listed if r not in local_refs])
        owners = await rules.sale_statuses(session, {p.sale_id for p in others.values()})
    report.local_count = len(local)
    unlisted: list[Payment] = []
    for payment in local:
        reference = payment.provider_reference
        if reference is None:
            # Never reached the processor (refused before, or still being sent): only a problem when the row
            # claims money moved.
            if payment.status not in ("pending", "failed", "voided"):
                report.mismatches.append(rules.missing_at_processor(payment))
            continue
        seen.add(reference)
        if reference in listed:
            report.mismatches.extend(rules.compare(payment, listed[reference]))
        else:
            unlisted.append(payment)
    for reference, found in listed.items():
        if reference in local_refs or reference in seen:
            continue
        row = others.get(reference)
        if row is not None:
            # Ours, recorded on another day (a payment started just before midnight) or at another store.
            if owners.get(row.sale_id, ("", store_id))[1] == store_id:
                seen.add(reference)
                report.mismatches.extend(rules.compare(row, found))
            continue
        if found.metadata.get("store_id") not in (None, str(store_id)):
            continue
        seen.add(reference)
        report.mismatches.append(rules.missing_locally(found))
    for payment in unlisted:
        # Created locally on this day but listed on another one at the processor: look it up on its own.
        assert payment.provider_reference is not None
        try:
            result = await gateway.retrieve(payment.provider_reference)
        except PaymentStateError:
            report.mismatches.append(rules.missing_at_processor(payment))
            continue
        # A single lookup does not report refunds: compare status and amounts only.
        single = ProcessorPayment(
            reference=result.reference,
            status=result.status,
            amount_cents=result.amount_authorized_cents,
            captured_cents=result.amount_captured_cents,
            refunded_cents=payment.refunded_cents,
            currency="",
            created_at=payment.created_at,
        )
        report.mismatches.extend(rules.compare(payment, single))


async def _void_orphans(
    database: Database,
    gateway: PaymentGateway,
    crypto: EncryptionService,
    report: ReconciliationReport,
    store_id: int,
    listed: dict[str, ProcessorPayment],
    cutoff: datetime,
    dry_run: bool,
) -> None:
    async with database.sessionmaker() as session:
        stale = await rules.stale_authorizations(session, gateway.name, store_id, cutoff)
        held = [p for p in listed.values() if p.status is CardStatus.AUTHORIZED and p.created_at < cutoff]
        rows = await rules.payments_by_reference(session, gateway.name, [p.reference for p in held])
        candidates: dict[str, _Candidate] = {}
        for payment in stale:
            listed_as = listed.get(payment.provider_reference or "")
            # Not held at the processor any more: the day's comparison already reports the disagreement.
            if listed_as is not None and listed_as.status is not CardStatus.AUTHORIZED:
                continue
            if payment.provider_reference is not None:
                candidates[payment.provider_reference] = _Candidate(
                    payment.provider_reference, payment.id, payment.sale_id, payment.amount_cents, payment.created_at
                )
        for found in held:
            row = rows.get(found.reference)
            if found.reference not in candidates and (row is None or row.status != "captured"):
                candidates[found.reference] = _Candidate(
                    found.reference,
                    row.id if row else None,
                    row.sale_id if row else found.sale_id,
                    found.amount_cents,
                    found.created_at,
                )
        sales = await rules.sale_statuses(session, {c.sale_id for c in candidates.values() if c.sale_id})
    for candidate in candidates.values():
        sale = sales.get(candidate.sale_id) if candidate.sale_id is not None else None
        if sale is not None and sale[1] != store_id:
            continue
        if sale is None and candidate.payment_id is None and candidate.reference not in listed:
            continue
        if sale is not None and sale[0] in SALE_KEEPS_AUTHORIZATION:
            if sale[0] == SaleStatus.COMPLETED.value:
                report.mismatches.append(
                    Mismatch(
                        MismatchKind.AUTHORIZED_NOT_CAPTURED,
                        candidate.reference,
                        candidate.payment_id,
                        candidate.sale_id,
                        "authorized",
                        "authorized",
                        "the sale completed but its card payment was never captured",
                    )
                )
            continue
        report.orphans.append(await _void(database, gateway, crypto, report, store_id, candidate, listed, dry_run))


async def _void(
    database: Database,
    gateway: PaymentGateway,
    crypto: EncryptionService,
    report: ReconciliationReport,
    store_id: int,
    candidate: _Candidate,
    listed: dict[str, ProcessorPayment],
    dry_run: bool,
) -> Orphan:
    def orphan(voided: bool, error: str | None = None) -> Orphan:
        return Orphan(
            candidate.reference,
            candidate.payment_id,
            candidate.sale_id,
            candidate.amount_cents,
            candidate.authorized_at,
            voided,
            error,
        )

    if candidate.reference not in listed:
        # An authorisation of an earlier day: void it only if the processor still holds it.
        try:
            current = await gateway.retrieve(candidate.reference)
        except PosError as exc:
            return orphan(False, exc.code)
        if current.status is not CardStatus.AUTHORIZED:
            report.mismatches.append(
                Mismatch(
                    MismatchKind.STATUS_DIFFERS,
                    candidate.reference,
                    candidate.payment_id,
                    candidate.sale_id,
                    "authorized",
                    current.status.value,
                    "the statuses disagree",
                )
            )
            return orphan(False, "not_held")
    if dry_run:
        return orphan(False)
    try:
        result = await gateway.void(candidate.reference, idempotency_key=f"reconcile:{candidate.reference}:void")
    except PosError as exc:
        log.warning("orphan_void_failed", reference=candidate.reference, code=exc.code)
        return orphan(False, exc.code)
    async with database.sessionmaker() as session:
        before = None
        if candidate.payment_id is not None:
            payment = await session.get(Payment, candidate.payment_id, with_for_update=True)
            if payment is not None:
                before = payment.status
                if before == PaymentStatus.VOIDED.value:
                    # Another worker voided it first (the same idempotency key made Stripe cancel it once); it
                    # wrote the audit entry.
                    return orphan(True)
                apply_card_result(payment, result)
        await audit.record(
            session,
            crypto,
            ACTOR,
            "payment.orphan_voided",
            store_id=store_id,
            target_type="payment",
            target_id=candidate.payment_id if candidate.payment_id is not None else candidate.reference,
            details={
                "reference": candidate.reference,
                "sale_id": candidate.sale_id,
                "amount_cents": candidate.amount_cents,
                "authorized_at": candidate.authorized_at.isoformat(),
                "local_status_before": before,
                "processor_status": result.status.value,
            },
        )
        await session.commit()
    log.info("orphan_voided", reference=candidate.reference, payment_id=candidate.payment_id, store=report.store_code)
    return orphan(True)


class ReconciliationTask:
    """Run by a worker: every `interval_seconds`, reconcile each store's today and yesterday and void
    orphans older than `void_older_than`."""

    def __init__(
        self,
        database: Database,
        gateway: PaymentGateway,
        crypto: EncryptionService,
        *,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        void_older_than: timedelta = DEFAULT_ORPHAN_AGE,
    ) -> None:
        self.database = database
        self.gateway = gateway
        self.crypto = crypto
        self.interval_seconds = interval_seconds
        self.void_older_than = void_older_than

    async def run_once(self, now: datetime | None = None) -> list[ReconciliationReport]:
        moment = now or utcnow()
        reports = await reconcile(
            self.database, self.gateway, self.crypto, void_older_than=self.void_older_than, now=moment
        )
        # Yesterday too: a payment finished just after midnight belongs to the previous business day.
        for report in list(reports):
            reports.extend(
                await reconcile(
                    self.database,
                    self.gateway,
                    self.crypto,
                    business_date=report.business_date - timedelta(days=1),
                    store_code=report.store_code,
                    void_older_than=None,
                    now=moment,
                )
            )
        return reports

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except PosError as exc:
                log.warning("reconciliation_failed", code=exc.code, message=exc.message)
            except Exception:
                log.exception("reconciliation_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_seconds)
