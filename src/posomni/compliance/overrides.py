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
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.permissions import Permission, allows
from posomni.auth.principal import Actor
from posomni.auth.service import (
    PIN_ATTEMPTS_BEFORE_LOCK,
    AuthAdapters,
    PinLocked,
    _count_failure,
    _pin_lock_duration,
    _throttle,
    normalise_username,
)
from posomni.compliance import errors, repository
from posomni.compliance import service as compliance
from posomni.compliance.models import ComplianceEvent
from posomni.compliance.rules import age_allowed_on, store_local_date
from posomni.kit.errors import NotFound
from posomni.kit.time import utcnow
from posomni.security.passwords import MIN_BCRYPT_COST, verify_or_dummy, verify_password, verify_pin
from posomni.stores import service as stores
from posomni.users.models import User

UNDERAGE = "The customer is under age: an underage sale can never be overridden."


@dataclass(frozen=True, slots=True)
class ManagerCredentials:
    username: str
    pin: str | None = None
    password: str | None = None


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


async def verify_manager(
    session: AsyncSession,
    adapters: AuthAdapters,
    actor: Actor,
    credentials: ManagerCredentials,
    *,
    store_id: int,
    client_address: str,
    not_user_id: int | None,
    event_id: int,
) -> User:
    """The manager whose credentials these are, allowed to override in this store; otherwise record the failure
    (and count it toward their lock-out) and raise `ManagerApprovalFailed`."""
    name = normalise_username(credentials.username)
    using_pin = credentials.pin is not None
    secret = credentials.pin if credentials.pin is not None else credentials.password or ""
    scope = "pin" if using_pin else "login"
    manager = await session.scalar(select(User).where(func.lower(User.username) == name))
    # Lock-outs run on real time, whatever instant the check is decided at.
    now = utcnow()
    if using_pin and manager is not None and manager.pin_locked_until is not None and manager.pin_locked_until > now:
        raise PinLocked("That manager's PIN is locked; the manager may use the password instead.")
    await _throttle(adapters, scope, name, client_address)
    eligible = (
        manager is not None
        and manager.is_active
        and allows(manager.role, Permission.OVERRIDE)
        and manager.store_id in (None, store_id)
        and manager.id != not_user_id
    )
    stored = None
    if manager is not None and eligible:
        stored = manager.pin_hash if using_pin else manager.password_hash
    if stored is None:
        # The same bcrypt time as a real check: timing must not tell which usernames are managers.
        verify_or_dummy(None, secret, cost=adapters.hash_cost, allow_insecure_cost=adapters.hash_cost < MIN_BCRYPT_COST)
        ok = False
    else:
        ok = verify_pin(stored, secret) if using_pin else verify_password(stored, secret)
    if ok and manager is not None:
        if using_pin:
            manager.failed_pin_attempts = 0
            manager.pin_locked_until = None
        return manager
    await _count_failure(adapters, scope, name, client_address)
    credential = "pin" if using_pin else "password"
    why = "unknown_user" if manager is None else ("not_allowed" if not eligible else f"wrong_{credential}")
    details: dict[str, Any] = {"event_id": event_id, "manager": name, "credential": credential}
    if manager is not None and eligible and stored is not None:
        if using_pin:
            manager.failed_pin_attempts += 1
            details["attempts"] = manager.failed_pin_attempts
        else:
            manager.failed_login_attempts += 1
    await audit.record(
        session, adapters.crypto, actor, "compliance.override_failed", store_id=store_id,
        target_type="user", target_id=manager.id if manager else None, details={**details, "why": why},
    )  # fmt: skip
    if manager is not None and using_pin and manager.failed_pin_attempts >= PIN_ATTEMPTS_BEFORE_LOCK:
        manager.pin_locked_until = now + _pin_lock_duration(manager.failed_pin_attempts)
        await audit.record(
            session, adapters.crypto, Actor(user_id=manager.id, role=manager.role, request_id=actor.request_id),
            "auth.pin_locked", store_id=manager.store_id, target_type="user", target_id=manager.id,
            details={"until": manager.pin_locked_until.isoformat(), "attempts": manager.failed_pin_attempts},
        )  # fmt: skip
        raise PinLocked()
    raise errors.ManagerApprovalFailed()


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
        # A clerk too young to sell cannot approve their own sale.
        not_user_id=refused.clerk_id if why == "clerk_too_young" else None, event_id=refused.id,
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
