"""Stripe webhooks: verified, stored once by event id, then applied to the payment rows, forward only.

1. The signature (`Stripe-Signature`, HMAC-SHA256 with `STRIPE_WEBHOOK_SECRET`, at most 5 minutes old) is
   checked before anything else; without one, or with a wrong or stale one, the answer is 400.
2. The event is stored in `stripe_events` by its id — only a whitelist of its fields (`digest`), never card
   data. A repeat of an event already processed is acknowledged and ignored.
3. It is applied in a savepoint. If that fails, the savepoint is undone, the event keeps the error and stays
   unprocessed, and the answer is 500 so Stripe delivers it again; `posomni payments webhooks retry` processes
   what is left. Applying is idempotent: the state machine in `service.py` only moves forward, refunds only
   raise the refunded total, a dispute is stored once.

Events and their effect on the payment (found by provider "stripe" and the PaymentIntent id):

    payment_intent.amount_capturable_updated   pending → authorized
    payment_intent.succeeded                   → captured (captured amount)
    payment_intent.canceled                    → voided
    payment_intent.payment_failed              pending → failed (decline code, plain reason)
    charge.succeeded / charge.captured         brand and last 4 digits; authorized or captured
    charge.refunded                            refunded total (partially_refunded / refunded)
    charge.dispute.created                     a payment_disputes row
    terminal.reader.action_succeeded           pending → authorized (the reader's payment)
    terminal.reader.action_failed              pending → failed

Every change is audited (actor "stripe-webhook", on the sale's store chain). Other event types are stored
and marked ignored; events for payments we do not have are marked `no_payment` (reconciliation reports them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.kit.time import utcnow
from posomni.logging import get_logger
from posomni.payments.errors import WebhookNotConfigured, WebhookPayloadInvalid, WebhookProcessingFailed
from posomni.payments.gateway import CardResult, CardStatus
from posomni.payments.models import Payment, PaymentDispute, StripeEvent
from posomni.payments.service import apply_card_result, note_refunded
from posomni.payments.stripe_adapter import verify_webhook_signature
from posomni.sales.models import Sale
from posomni.security.crypto import EncryptionService
from posomni.security.pci import scrub, scrub_value

log = get_logger(__name__)

PROVIDER = "stripe"
MAX_ATTEMPTS_LISTED = 100


# Fields kept from each kind of object; anything else (billing details, expiry dates, fingerprints …) is
# dropped before the event is stored.
def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_KEEP: dict[str, tuple[str, ...]] = {
    "payment_intent": _names(
        "id object status amount amount_capturable amount_received currency capture_method created "
        "latest_charge metadata cancellation_reason"
    ),
    "charge": _names(
        "id object status amount amount_captured amount_refunded captured refunded currency payment_intent "
        "failure_code created disputed"
    ),
    "dispute": _names("id object amount currency charge payment_intent reason status created"),
    "refund": _names("id object amount status payment_intent charge currency created"),
    "terminal.reader": _names("id object label status device_type"),
}


# Reader failures that say nothing about the card: the payment's own events tell what happened to it.
_NOT_THE_CARD = frozenset({"payment_intent_canceled", "intent_invalid_state"})


@dataclass(frozen=True)
class WebhookReceipt:
    event_id: str
    type: str
    duplicate: bool
    outcome: str | None


def _id_of(value: Any) -> Any:
    return value.get("id") if isinstance(value, Mapping) else value


def _object_digest(obj: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(obj.get("object", ""))
    kept: dict[str, Any] = {k: obj[k] for k in _KEEP.get(kind, ("id", "object")) if k in obj}
    for key in ("latest_charge", "payment_intent", "charge"):
        if key in kept:
            kept[key] = _id_of(kept[key])
    if kind == "payment_intent" and isinstance(obj.get("last_payment_error"), Mapping):
        error = obj["last_payment_error"]
        kept["last_payment_error"] = {k: error.get(k) for k in ("type", "code", "decline_code")}
    if kind == "charge" and isinstance(obj.get("payment_method_details"), Mapping):
        details = obj["payment_method_details"]
        card = details.get("card") or details.get("card_present") or {}
        kept["card"] = {"brand": card.get("brand"), "last4": card.get("last4")}
    if kind == "dispute" and isinstance(obj.get("evidence_details"), Mapping):
        kept["evidence_due_by"] = obj["evidence_details"].get("due_by")
    if kind == "terminal.reader" and isinstance(obj.get("action"), Mapping):
        action = obj["action"]
        process = action.get("process_payment_intent") or {}
        kept["action"] = {
            "type": action.get("type"),
            "status": action.get("status"),
            "failure_code": action.get("failure_code"),
            "failure_message": action.get("failure_message"),
            "payment_intent": _id_of(process.get("payment_intent")) if isinstance(process, Mapping) else None,
        }
    return kept


def digest(event: Mapping[str, Any]) -> dict[str, Any]:
    """What is stored of an event: its identity and a whitelist of its object's fields, card-like numbers
    masked (metadata is free text)."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    raw_request = event.get("request")
    request: Mapping[str, Any] = raw_request if isinstance(raw_request, Mapping) else {}
    kept = {
        "id": event.get("id"),
        "type": event.get("type"),
        "created": event.get("created"),
        "livemode": event.get("livemode"),
        "api_version": event.get("api_version"),
        "request": {"id": request.get("id"), "idempotency_key": request.get("idempotency_key")},
        "object": _object_digest(obj) if isinstance(obj, Mapping) else {},
    }
    cleaned: dict[str, Any] = scrub_value(kept)
    return cleaned


def parse_event(payload: bytes) -> dict[str, Any]:
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise WebhookPayloadInvalid() from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise WebhookPayloadInvalid()
    if not isinstance(event.get("data"), dict) or not isinstance(event["data"].get("object"), dict):
        raise WebhookPayloadInvalid()
    if len(event["id"]) > 255 or len(event["type"]) > 100:
        raise WebhookPayloadInvalid()
    return event


async def receive(
    session: AsyncSession,
    crypto: EncryptionService,
    payload: bytes,
    signature: str | None,
    secret: str | None,
    *,
    request_id: str | None = None,
) -> WebhookReceipt:
    """Verify, store once and process one delivery."""
    if not secret:
        raise WebhookNotConfigured()
    verify_webhook_signature(payload, signature, secret)
    event = parse_event(payload)
    stored, fresh = await _store(session, event)
    if not fresh and stored.processed_at is not None:
        log.info("stripe_event_repeat", event_id=stored.id, type=stored.type, request_id=request_id)
        return WebhookReceipt(stored.id, stored.type, True, stored.outcome)
    event_id, event_type = stored.id, stored.type
    outcome = await process(session, crypto, stored, request_id=request_id)
    return WebhookReceipt(event_id, event_type, not fresh, outcome)


async def _store(session: AsyncSession, event: Mapping[str, Any]) -> tuple[StripeEvent, bool]:
    created = event.get("created")
    values = {
        "id": event["id"],
        "type": event["type"],
        "created": datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None,
        "received_at": utcnow(),
        "attempts": 0,
        "payload": digest(event),
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # A concurrent delivery of the same event waits here for the first one's transaction, then finds it.
    result = await session.execute(
        insert(StripeEvent).values(**values).on_conflict_do_nothing().returning(StripeEvent.id)
    )
    fresh = result.scalar_one_or_none() is not None
    stored = await session.scalar(
        select(StripeEvent)
        .where(StripeEvent.id == event["id"])
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert stored is not None
    return stored, fresh


async def process(
    session: AsyncSession, crypto: EncryptionService, stored: StripeEvent, *, request_id: str | None = None
) -> str:
    """Apply a stored event in a savepoint; on failure keep the error on the event and raise
    `WebhookProcessingFailed` (which keeps that record)."""
    event_id, event_type = stored.id, stored.type
    actor = Actor.system("stripe-webhook", request_id)
    try:
        async with session.begin_nested():
            outcome = await _apply(session, crypto, actor, event_id, event_type, stored.payload)
    except Exception as exc:
        error = scrub(f"{type(exc).__name__}: {exc}")[:500]
        log.error("stripe_event_failed", event_id=event_id, type=event_type, error=error, request_id=request_id)
        await session.execute(
            update(StripeEvent)
            .where(StripeEvent.id == event_id)
            .values(attempts=StripeEvent.attempts + 1, last_error=error)
            .execution_options(synchronize_session=False)
        )
        raise WebhookProcessingFailed(details={"event_id": event_id}) from exc
    await session.execute(
        update(StripeEvent)
        .where(StripeEvent.id == event_id)
        .values(attempts=StripeEvent.attempts + 1, last_error=None, processed_at=utcnow(), outcome=outcome)
        .execution_options(synchronize_session=False)
    )
    log.info("stripe_event_processed", event_id=event_id, type=event_type, outcome=outcome, request_id=request_id)
    return outcome


async def retry_unprocessed(
    session: AsyncSession, crypto: EncryptionService, *, event_id: str | None = None, limit: int = 500
) -> list[tuple[str, str]]:
    """Process stored events that are not processed yet (oldest first); (event id, outcome or error code)."""
    query = select(StripeEvent).where(StripeEvent.processed_at.is_(None)).order_by(StripeEvent.received_at)
    if event_id is not None:
        query = select(StripeEvent).where(StripeEvent.id == event_id)
    results: list[tuple[str, str]] = []
    for stored in list(await session.scalars(query.limit(limit))):
        if stored.processed_at is not None:
            results.append((stored.id, "already_processed"))
            continue
        try:
            results.append((stored.id, await process(session, crypto, stored)))
        except WebhookProcessingFailed as exc:
            results.append((stored.id, exc.code))
    return results


async def unprocessed(session: AsyncSession, limit: int = MAX_ATTEMPTS_LISTED) -> list[StripeEvent]:
    query = select(StripeEvent).where(StripeEvent.processed_at.is_(None)).order_by(StripeEvent.received_at)
    return list(await session.scalars(query.limit(limit)))


# --- applying one event -----------------------------------------------------------------------------------


async def _payment(session: AsyncSession, reference: Any) -> tuple[Payment, int] | None:
    if not isinstance(reference, str) or not reference:
        return None
    row = (
        await session.execute(
            select(Payment, Sale.store_id)
            .join(Sale, Sale.id == Payment.sale_id)
            .where(Payment.provider == PROVIDER, Payment.provider_reference == reference, Payment.kind == "payment")
            .with_for_update(of=Payment)
        )
    ).first()
    return None if row is None else (row[0], row[1])


def _intent_result(obj: Mapping[str, Any]) -> CardResult:
    status = {
        "requires_capture": CardStatus.AUTHORIZED,
        "succeeded": CardStatus.CAPTURED,
        "canceled": CardStatus.VOIDED,
    }.get(str(obj.get("status")), CardStatus.PENDING)
    error = obj.get("last_payment_error")
    decline_code = None
    if obj.get("status") == "requires_payment_method" and isinstance(error, Mapping):
        status = CardStatus.DECLINED
        decline_code = error.get("decline_code") or error.get("code") or "generic_decline"
    return CardResult(
        reference=str(obj.get("id")),
        status=status,
        amount_authorized_cents=int(obj.get("amount") or 0),
        amount_captured_cents=int(obj.get("amount_received") or 0),
        decline_code=decline_code,
    )


async def _apply(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    event_id: str,
    event_type: str,
    payload: Mapping[str, Any],
) -> str:
    obj: Mapping[str, Any] = payload.get("object") or {}
    if event_type == "charge.dispute.created":
        return await _dispute(session, crypto, actor, event_id, obj)
    if event_type.startswith("payment_intent."):
        if event_type not in (
            "payment_intent.amount_capturable_updated",
            "payment_intent.succeeded",
            "payment_intent.canceled",
            "payment_intent.payment_failed",
        ):
            return "ignored"
        reference, result = obj.get("id"), _intent_result(obj)
    elif event_type in ("charge.succeeded", "charge.captured", "charge.refunded"):
        reference = obj.get("payment_intent")
        card = obj.get("card") or {}
        status = CardStatus.CAPTURED if obj.get("captured") else CardStatus.AUTHORIZED
        if obj.get("status") != "succeeded":
            return "ignored"
        result = CardResult(
            reference=str(reference),
            status=status,
            amount_authorized_cents=int(obj.get("amount") or 0),
            amount_captured_cents=int(obj.get("amount_captured") or 0),
            brand=card.get("brand"),
            last4=card.get("last4"),
        )
    elif event_type in ("terminal.reader.action_succeeded", "terminal.reader.action_failed"):
        action = obj.get("action") or {}
        if action.get("type") != "process_payment_intent" or action.get("failure_code") in _NOT_THE_CARD:
            return "ignored"
        reference = action.get("payment_intent")
        succeeded = event_type.endswith("succeeded")
        result = CardResult(
            reference=str(reference),
            status=CardStatus.AUTHORIZED if succeeded else CardStatus.DECLINED,
            amount_authorized_cents=0,
            decline_code=None if succeeded else str(action.get("failure_code") or "generic_decline"),
        )
    else:
        return "ignored"
    found = await _payment(session, reference)
    if found is None:
        return "no_payment"
    payment, store_id = found
    before = (payment.status, payment.refunded_cents)
    if event_type == "charge.refunded":
        # Only refunds of captured money count; releasing an uncaptured hold is a void, reported on its own.
        changed = bool(obj.get("captured")) and note_refunded(payment, int(obj.get("amount_refunded") or 0))
    else:
        changed = apply_card_result(payment, result)
    if not changed:
        return "unchanged"
    await session.flush()
    await audit.record(
        session,
        crypto,
        actor,
        "payment.updated_by_processor",
        store_id=store_id,
        target_type="payment",
        target_id=payment.id,
        details={
            "event_id": event_id,
            "event_type": event_type,
            "reference": payment.provider_reference,
            "status_before": before[0],
            "status": payment.status,
            "refunded_cents_before": before[1],
            "refunded_cents": payment.refunded_cents,
        },
    )
    return "applied"


async def _dispute(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, event_id: str, obj: Mapping[str, Any]
) -> str:
    dispute_id = obj.get("id")
    if not isinstance(dispute_id, str):
        return "ignored"
    existing = await session.scalar(
        select(PaymentDispute.id).where(
            PaymentDispute.provider == PROVIDER, PaymentDispute.provider_dispute_id == dispute_id
        )
    )
    if existing is not None:
        return "unchanged"
    found = await _payment(session, obj.get("payment_intent"))
    due = obj.get("evidence_due_by")
    dispute = PaymentDispute(
        provider=PROVIDER,
        provider_dispute_id=dispute_id,
        provider_reference=obj.get("payment_intent") if isinstance(obj.get("payment_intent"), str) else None,
        payment_id=found[0].id if found else None,
        amount_cents=int(obj.get("amount") or 0),
        currency=str(obj.get("currency") or "")[:3],
        reason=str(obj.get("reason") or "unknown")[:64],
        status=str(obj.get("status") or "needs_response")[:32],
        evidence_due_at=datetime.fromtimestamp(due, UTC) if isinstance(due, int) else None,
    )
    session.add(dispute)
    await session.flush()
    await audit.record(
        session,
        crypto,
        actor,
        "payment.dispute_opened",
        store_id=found[1] if found else None,
        target_type="payment",
        target_id=found[0].id if found else dispute.provider_reference,
        details={
            "event_id": event_id,
            "dispute_id": dispute_id,
            "amount_cents": dispute.amount_cents,
            "reason": dispute.reason,
            "evidence_due_at": dispute.evidence_due_at.isoformat() if dispute.evidence_due_at else None,
        },
    )
    log.warning("payment_disputed", dispute_id=dispute_id, payment_id=dispute.payment_id, reason=dispute.reason)
    return "no_payment" if found is None else "applied"
