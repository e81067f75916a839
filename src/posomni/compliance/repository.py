"""How compliance events are written and found. Every event is written by `record_event`, which encrypts its
dates bound to the row and appends the matching audit entry in the same transaction."""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.compliance.models import ComplianceEvent, dob_aad, expiry_aad
from posomni.sales.models import SaleLine
from posomni.security.crypto import EncryptionService

DEFAULT_MIN_AGE: Final = 21
# Refusals about the document, which a manager may override once they have looked at the customer and the card.
ID_OVERRIDABLE: Final = frozenset({"expired", "missing_expiry", "not_yet_issued", "unreadable", "missing_dob"})


async def sale_min_age(session: AsyncSession, sale_id: int) -> int | None:
    """The highest minimum age among the sale's age-restricted lines (21 where a line names none)."""
    required = await session.scalar(
        select(func.max(func.coalesce(SaleLine.min_age, DEFAULT_MIN_AGE))).where(
            SaleLine.sale_id == sale_id, SaleLine.age_restricted.is_(True)
        )
    )
    return int(required) if required is not None else None


def decrypt_date(crypto: EncryptionService, token: str | None, aad: str, label: str) -> date | None:
    if token is None:
        return None
    return date.fromisoformat(crypto.decrypt_text(token, aad=aad, label=label))


def event_dob(crypto: EncryptionService, event: ComplianceEvent) -> date | None:
    return decrypt_date(crypto, event.dob_encrypted, dob_aad(event.id), f"compliance event {event.id} date of birth")


def event_expiry(crypto: EncryptionService, event: ComplianceEvent) -> date | None:
    return decrypt_date(crypto, event.expiry_encrypted, expiry_aad(event.id), f"compliance event {event.id} expiry")


async def record_event(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    event: ComplianceEvent,
    *,
    dob: date | None = None,
    expires: date | None = None,
    action: str = "compliance.id_check",
    extra: dict[str, Any] | None = None,
) -> ComplianceEvent:
    """Write the event and its audit entry. The dates are encrypted with associated data naming the row, so the
    row needs its id first: flush, then encrypt."""
    session.add(event)
    await session.flush()
    if dob is not None:
        event.dob_encrypted = crypto.encrypt(dob.isoformat(), aad=dob_aad(event.id))
    if expires is not None:
        event.expiry_encrypted = crypto.encrypt(expires.isoformat(), aad=expiry_aad(event.id))
    await session.flush()
    details: dict[str, Any] = {
        "event_id": event.id,
        "business_date": event.business_date.isoformat(),
        "method": event.method,
        "result": event.result,
        "reason": event.reason,
        "document_type": event.document_type,
        "jurisdiction": event.jurisdiction,
        "checked_min_age": event.checked_min_age,
        "clerk_id": event.clerk_id,
        "register_id": event.register_id,
        "customer_id": event.customer_id,
        "sale_id": event.sale_id,
    }
    if event.overrides_event_id is not None:
        details |= {
            "overrides_event_id": event.overrides_event_id,
            "override_manager_id": event.override_manager_id,
            "override_reason": event.override_reason,
        }
    details |= extra or {}
    await audit.record(
        session, crypto, actor, action, store_id=event.store_id, target_type="compliance_event", target_id=event.id,
        details=details,
    )  # fmt: skip
    return event


# An ID check covers a sale when it passed (scan, manual, profile) or a manager overrode a document problem.
def covering_condition() -> ColumnElement[bool]:
    return or_(
        and_(ComplianceEvent.result == "passed", ComplianceEvent.method.in_(("scan", "manual", "profile"))),
        and_(ComplianceEvent.result == "overridden", ComplianceEvent.reason.in_(sorted(ID_OVERRIDABLE))),
    )
