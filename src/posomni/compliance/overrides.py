"""Manager override of a refused check: a second credential (a manager's PIN or password, entered at the
register, never the cashier's session) plus a reason unlocks one specific refusal.

Never for an underage date of birth and never for the legal sale hours. Every override is its own compliance
event pointing at the refusal it unlocks; every failed or refused attempt is audited. A wrong manager PIN counts
toward that manager's PIN lock-out and the sign-in rate limits exactly as a wrong PIN at sign-in does: the
counters, limits and lock durations are the auth service's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.auth.service import AuthAdapters, ManagerCredentials, verify_manager
from posomni.compliance import errors, repository
from posomni.compliance import service as compliance
from posomni.compliance.models import ComplianceEvent
from posomni.compliance.rules import age_allowed_on, store_local_date
from posomni.kit.errors import NotFound
from posomni.stores import service as stores

UNDERAGE = "The customer is under age: an underage sale can never be overridden."


@dataclass(frozen=True, slots=True)
class ManualDates:
    """What the manager reads off the card when the refused check has no date of birth (an unreadable scan)."""

    dob: date | None = None
    expires: date | None = None
    document_type: str | None = None


async def _refuse(
    session: AsyncSession,
    adapters: AuthAdapters,
    actor: Actor,
    refused: ComplianceEvent,
    why: str,
    message: str,
) -> errors.OverrideNotAllowed:
    await audit.record(
        session, adapters.crypto, actor, "compliance.override_refused", store_id=refused.store_id,
        target_type="compliance_event", target_id=refused.id,
        details={"event_id": refused.id, "refused_reason": refused.reason, "why": why},
    )  # fmt: skip
    return errors.OverrideNotAllowed(message, details={"event_id": refused.id, "reason": refused.reason, "why": why})


async def override(
    session: AsyncSession,
    adapters: AuthAdapters,
    actor: Actor,
    *,
    event_id: int,
    credentials: ManagerCredentials,
    reason: str,
    now: datetime,
    client_address: str,
    manual: ManualDates | None = None,
) -> ComplianceEvent:
    """Unlock the refused check `event_id` and record the override as its own event.

    The rules are checked before the credentials, so a manager is never asked to approve what cannot be
    approved. An unreadable scan is overridden only with the date of birth the manager read off the card,
    and that date must show the customer of age.
    """
    crypto = adapters.crypto
    refused = await session.get(ComplianceEvent, event_id)
    if refused is None or (actor.store_id is not None and refused.store_id != actor.store_id):
        raise NotFound("No such ID check.", details={"event_id": event_id})
    if refused.result != "refused":
        raise errors.OverrideNotAllowed("Only a refused check can be overridden.", details={"event_id": event_id})
    done = await session.scalar(select(ComplianceEvent.id).where(ComplianceEvent.overrides_event_id == refused.id))
    if done is not None:
        raise errors.AlreadyOverridden(details={"event_id": event_id, "override_event_id": done})
    store = await stores.get_store(session, refused.store_id)
    on = store_local_date(now, store.timezone)
    why = refused.reason or ""
    if why == "underage":
        raise await _refuse(session, adapters, actor, refused, "underage", UNDERAGE)
    if why not in repository.ID_OVERRIDABLE and why != "clerk_too_young":
        raise await _refuse(session, adapters, actor, refused, why, "Sale hours are the law: never overridden.")
    if refused.business_date != on:
        raise await _refuse(session, adapters, actor, refused, "other_day", "Override a refusal on its own day only.")

    dob = expires = None
    document_type = refused.document_type
    if why != "clerk_too_young":
        dob = repository.event_dob(crypto, refused)
        expires = repository.event_expiry(crypto, refused)
        if dob is None:
            dates = manual or ManualDates()
            problems = _manual_problems(dates, on)
            if problems:
                raise errors.ManualEntryIncomplete(
                    "The ID could not be read: enter the date of birth, the expiry and the document type from it.",
                    details={"problems": problems},
                )
            dob, expires, document_type = dates.dob, dates.expires, dates.document_type
        assert dob is not None
        min_age = refused.checked_min_age or repository.DEFAULT_MIN_AGE
        if on < age_allowed_on(dob, min_age):
            raise await _refuse(session, adapters, actor, refused, "underage", UNDERAGE)

    manager = await verify_manager(
        session, adapters, actor, credentials, store_id=store.id, client_address=client_address,
        failure_action="compliance.override_failed", details={"event_id": refused.id},
        # A clerk too young to sell cannot approve their own sale.
        not_user_id=refused.clerk_id if why == "clerk_too_young" else None,
    )  # fmt: skip
    event = ComplianceEvent(
        occurred_at=now, business_date=on, store_id=store.id, register_id=actor.register_id,
        clerk_id=compliance.clerk_of(actor), customer_id=refused.customer_id, sale_id=refused.sale_id,
        method="override", document_type=document_type, jurisdiction=refused.jurisdiction, result="overridden",
        reason=refused.reason, checked_min_age=refused.checked_min_age, override_manager_id=manager.id,
        override_reason=reason.strip(), overrides_event_id=refused.id,
    )  # fmt: skip
    return await repository.record_event(
        session, crypto, actor, event, dob=dob, expires=expires, action="compliance.override"
    )


def _manual_problems(dates: ManualDates, on: date) -> list[dict[str, str]]:
    evidence = compliance.ManualEvidence(
        dob=dates.dob, expires=dates.expires, document_type=dates.document_type, photo_compared=True
    )
    return compliance.manual_problems(evidence, on)
