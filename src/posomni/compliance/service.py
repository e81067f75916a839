"""The compliance agent: proof-of-age checks, the checkout's tender-time decision, verified customer profiles.

Every decision — passed, refused, overridden — is a `ComplianceEvent` written in the caller's transaction, with
an audit entry in the store's hash chain. Dates of birth and expiry dates are stored only encrypted; the raw
barcode, names and address never reach a column. Refusals raise a coded error after writing their record and
set `keeps_records`, so the boundary commits the record although the request fails. Nothing here commits.

Clock: every function takes the instant it decides at (`now` / `at`) and turns it into the store's local date
and time with the store's IANA zone — never the server's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.compliance import errors
from posomni.compliance.aamva import AamvaId, IdParseError, parse_aamva
from posomni.compliance.models import ComplianceEvent
from posomni.compliance.repository import (
    DEFAULT_MIN_AGE,
    covering_condition,
    decrypt_date,
    record_event,
    sale_min_age,
)
from posomni.compliance.rules import SaleHoursDecision, age_allowed_on, sale_decision_at, store_local_date
from posomni.compliance.rules import check_id as decide
from posomni.customers.models import Customer
from posomni.customers.models import dob_aad as customer_dob_aad
from posomni.kit.errors import NotFound, ValidationFailed
from posomni.kit.time import local_now
from posomni.logging import get_logger
from posomni.monitoring import metrics as monitoring_metrics
from posomni.sales.models import Sale, SaleStatus
from posomni.security.crypto import EncryptionService
from posomni.stores import service as stores
from posomni.stores.models import Store
from posomni.users.models import User

log = get_logger(__name__)

MANUAL_DOCUMENT_TYPES: Final = ("passport", "passport_card", "military_id", "driver_license", "id_card")
# Refusals no one may override: a minor, and the legal sale hours.
NEVER_OVERRIDABLE: Final = frozenset({"underage", "outside_sale_hours"})
_OPEN_SALE: Final = (SaleStatus.OPEN.value, SaleStatus.SUSPENDED.value, SaleStatus.COMPLETING.value)
_EARLIEST_DOB: Final = date(1900, 1, 1)


@dataclass(frozen=True, slots=True)
class ScanEvidence:
    """The scanner's text, as it arrived. Parsed and then dropped: it is never stored or logged."""

    raw: str


@dataclass(frozen=True, slots=True)
class ManualEvidence:
    """Typed by the cashier from a passport, a military ID or a damaged card, after comparing the photo."""

    dob: date | None
    expires: date | None
    document_type: str | None
    photo_compared: bool
    issued: date | None = None
    jurisdiction: str | None = None


@dataclass(frozen=True, slots=True)
class ProfileEvidence:
    """The customer's verified date of birth, where the store accepts a verified profile instead of an ID."""


Evidence = ScanEvidence | ManualEvidence | ProfileEvidence


@dataclass(frozen=True, slots=True)
class _Document:
    method: Literal["scan", "manual", "profile"]
    document_type: str | None
    jurisdiction: str | None
    dob: date
    expires: date | None
    issued: date | None = None
    under_21_until: date | None = None
    # Only when the store keeps ID details; written to the encrypted audit entry, never to a column.
    holder: dict[str, str | None] | None = None


@dataclass(frozen=True, slots=True)
class IdCheckResult:
    event: ComplianceEvent
    under_21_mismatch: bool
    profile_saved: bool


@dataclass(frozen=True, slots=True)
class SaleComplianceDecision:
    """The checkout's answer for one sale at tender time. It changes nothing on the sale: the checkout sets
    `sale.age_verified = decision.age_verified`, `sale.age_verified_by = decision.verified_by` and
    `sale.id_scanned = decision.id_scanned`."""

    allowed: bool
    sale_id: int
    business_date: date
    # None when the sale has no age-restricted line: no hours, clerk or ID rule applies.
    required_min_age: int | None
    # The passing, overridden or profile event that covers the sale.
    event_id: int | None
    method: str | None
    age_verified: bool
    # Who vouched for the customer's age: the clerk who checked the ID, or the manager who overrode.
    verified_by: int | None
    id_scanned: bool
    # The manager override that let a clerk below the minimum selling age complete the sale.
    clerk_override_event_id: int | None = None
    # The clerk has no birth date on file: allowed, and listed in the compliance report.
    clerk_age_unknown: bool = False

    @property
    def age_verified_by(self) -> int | None:
        return self.verified_by


def clerk_of(actor: Actor) -> int:
    if actor.user_id is None:
        raise ValidationFailed("An ID check is made by a signed-in clerk.")
    return actor.user_id


async def resolve_store(session: AsyncSession, actor: Actor, *, store_id: int | None, sale_id: int | None) -> Store:
    """The store a check belongs to: a store-bound clerk's own store; for chain-wide users the store named, or
    the sale's store."""
    if actor.store_id is not None:
        if store_id is not None and store_id != actor.store_id:
            raise NotFound("No such store.", details={"store_id": store_id})
        return await stores.get_store(session, actor.store_id)
    if store_id is not None:
        return await stores.get_store(session, store_id)
    if sale_id is not None:
        sale = await session.get(Sale, sale_id)
        if sale is None:
            raise NotFound("No such sale.", details={"sale_id": sale_id})
        return await stores.get_store(session, sale.store_id)
    raise ValidationFailed("Name the store the check is made in.", details={"field": "store_id"})


async def _open_sale(session: AsyncSession, store: Store, sale_id: int) -> Sale:
    sale = await session.get(Sale, sale_id)
    if sale is None or sale.store_id != store.id:
        raise NotFound("No such sale in this store.", details={"sale_id": sale_id})
    if sale.status not in _OPEN_SALE:
        raise errors.SaleNotOpen(details={"sale_id": sale_id, "status": sale.status})
    return sale


async def _customer(session: AsyncSession, customer_id: int) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("No such customer.", details={"customer_id": customer_id})
    return customer


def _holder(card: AamvaId) -> dict[str, str | None]:
    return {
        "first": card.first,
        "middle": card.middle,
        "last": card.last,
        "suffix": card.suffix,
        "full_name": card.full_name,
        "document_number": card.document_number,
    }


def manual_problems(evidence: ManualEvidence, on: date) -> list[dict[str, str]]:
    problems = []
    if evidence.dob is None:
        problems.append({"field": "dob", "message": "enter the date of birth from the document"})
    elif not _EARLIEST_DOB <= evidence.dob <= on:
        problems.append({"field": "dob", "message": "the date of birth must be a past date after 1900"})
    if evidence.expires is None:
        problems.append({"field": "expires", "message": "enter the expiry date from the document"})
    if evidence.document_type not in MANUAL_DOCUMENT_TYPES:
        problems.append({"field": "document_type", "message": f"one of {', '.join(MANUAL_DOCUMENT_TYPES)}"})
    if not evidence.photo_compared:
        problems.append({"field": "photo_compared", "message": "compare the photo with the customer, then confirm"})
    return problems


async def _profile_document(
    session: AsyncSession, crypto: EncryptionService, store: Store, customer: Customer | None
) -> _Document:
    if customer is None:
        raise errors.ProfileNotAccepted("Name the customer whose verified profile to use.")
    if not stores.policies_of(store).verified_profile_skips_scan:
        raise errors.ProfileNotAccepted("This store does not accept verified profiles instead of an ID check.")
    dob = decrypt_date(
        crypto, customer.date_of_birth_encrypted, customer_dob_aad(customer.id), f"customer {customer.id} date of birth"
    )
    if not customer.age_verified or dob is None:
        raise errors.ProfileNotAccepted("This customer's age has not been verified; check an ID.")
    return _Document(method="profile", document_type="profile", jurisdiction=None, dob=dob, expires=None)


async def record_verified_profile(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    customer: Customer,
    *,
    dob: date,
    method: str,
    event_id: int,
    store_id: int,
    now: datetime,
) -> None:
    """Keep a verified date of birth on the customer's profile (encrypted, bound to the customer's row)."""
    previous = decrypt_date(
        crypto, customer.date_of_birth_encrypted, customer_dob_aad(customer.id), f"customer {customer.id} date of birth"
    )
    customer.date_of_birth_encrypted = crypto.encrypt(dob.isoformat(), aad=customer_dob_aad(customer.id))
    customer.age_verified = True
    customer.age_verified_by = clerk_of(actor)
    customer.age_verified_at = now
    customer.age_verified_method = method
    await session.flush()
    await audit.record(
        session, crypto, actor, "customer.age_verified", store_id=store_id, target_type="customer",
        target_id=customer.id,
        details={"method": method, "event_id": event_id, "date_of_birth_changed": previous not in (None, dob)},
    )  # fmt: skip


async def check_id(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    *,
    store: Store,
    evidence: Evidence,
    now: datetime,
    sale_id: int | None = None,
    customer_id: int | None = None,
    min_age: int | None = None,
    save_to_profile: bool = False,
) -> IdCheckResult:
    """Check a proof of age on the store-local date of `now`, record the decision, raise a coded refusal.

    The age checked is `min_age` (default 21); with a sale, never less than the sale's own requirement.
    """
    required = None
    if sale_id is not None:
        await _open_sale(session, store, sale_id)
        required = await sale_min_age(session, sale_id)
    checked_min_age = max(min_age or 0, required or 0) or DEFAULT_MIN_AGE
    customer = await _customer(session, customer_id) if customer_id is not None else None
    if save_to_profile and (customer is None or isinstance(evidence, ProfileEvidence)):
        raise ValidationFailed("Saving to a profile needs a customer and an ID.", details={"field": "save_to_profile"})
    return await _check(
        session, crypto, actor, store=store, evidence=evidence, now=now, sale_id=sale_id, customer=customer,
        checked_min_age=checked_min_age, save_to_profile=save_to_profile,
    )  # fmt: skip


async def _check(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    *,
    store: Store,
    evidence: Evidence,
    now: datetime,
    sale_id: int | None,
    customer: Customer | None,
    checked_min_age: int,
    save_to_profile: bool,
) -> IdCheckResult:
    clerk_id = clerk_of(actor)
    on = store_local_date(now, store.timezone)
    if isinstance(evidence, ManualEvidence) and (problems := manual_problems(evidence, on)):
        raise errors.ManualEntryIncomplete(details={"problems": problems})
    event = ComplianceEvent(
        occurred_at=now, business_date=on, store_id=store.id, register_id=actor.register_id, clerk_id=clerk_id,
        customer_id=customer.id if customer else None, sale_id=sale_id, checked_min_age=checked_min_age,
    )  # fmt: skip
    document = await _document(session, crypto, actor, store, customer, evidence, event)
    decision = decide(
        dob=document.dob,
        # A profile has no document to expire: its date of birth was verified from one already.
        expires=date.max if document.method == "profile" else document.expires,
        on=on,
        minimum_age=checked_min_age,
        issued=document.issued,
        under_21_until=document.under_21_until,
    )
    event.method = document.method
    event.document_type = document.document_type
    event.jurisdiction = document.jurisdiction
    event.result = decision.outcome
    event.reason = decision.reason
    extra: dict[str, Any] = {"reasons": list(decision.reasons), "under_21_mismatch": decision.under_21_mismatch}
    if document.holder is not None and stores.policies_of(store).keep_id_details:
        extra["id_details"] = document.holder
    await record_event(session, crypto, actor, event, dob=document.dob, expires=document.expires, extra=extra)
    monitoring_metrics.age_check(event.method, event.result, event.reason)
    if decision.under_21_mismatch:
        # The later date has been applied already; the mismatch may point at a forged or misprinted card.
        log.warning("id_under_21_date_mismatch", event_id=event.id, store_id=store.id)
    if not decision.passed:
        assert decision.reason is not None
        raise errors.REFUSALS_BY_REASON[decision.reason](details=refusal_details(event, list(decision.reasons)))
    saved = False
    if save_to_profile and customer is not None and document.method != "profile":
        await record_verified_profile(
            session,
            crypto,
            actor,
            customer,
            dob=document.dob,
            method=document.method,
            event_id=event.id,
            store_id=store.id,
            now=now,
        )
        saved = True
    return IdCheckResult(event=event, under_21_mismatch=decision.under_21_mismatch, profile_saved=saved)


def refusal_details(event: ComplianceEvent, reasons: list[str] | None = None) -> dict[str, Any]:
    reason = event.reason or ""
    return {
        "event_id": event.id,
        "reason": reason,
        "reasons": reasons or [reason],
        "overridable": reason not in NEVER_OVERRIDABLE,
    }


async def _document(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    store: Store,
    customer: Customer | None,
    evidence: Evidence,
    event: ComplianceEvent,
) -> _Document:
    if isinstance(evidence, ProfileEvidence):
        return await _profile_document(session, crypto, store, customer)
    if isinstance(evidence, ManualEvidence):
        assert evidence.dob is not None and evidence.document_type is not None
        jurisdiction = evidence.jurisdiction.upper() if evidence.jurisdiction else None
        return _Document(
            "manual", evidence.document_type, jurisdiction, evidence.dob, evidence.expires, evidence.issued
        )
    try:
        card = parse_aamva(evidence.raw)
    except IdParseError as exc:
        # Never an approval: the attempt is recorded as refused, and the cashier is sent to manual entry. Only
        # the parser's code is kept, never its input.
        event.method, event.result, event.reason = "scan", "refused", errors.IdUnreadable.reason
        await record_event(session, crypto, actor, event, extra={"parse_error": exc.code})
        monitoring_metrics.age_check(event.method, event.result, event.reason)
        raise errors.IdUnreadable(details={**refusal_details(event), "parse_error": exc.code}) from None
    return _Document(
        method="scan",
        document_type=card.document_type,
        jurisdiction=card.jurisdiction,
        dob=card.dob,
        expires=card.expires,
        issued=card.issued,
        under_21_until=card.under_21_until,
        holder=_holder(card),
    )


# --- the checkout's step -----------------------------------------------------------------------------------


def sale_hours_at(store: Store, at: datetime) -> SaleHoursDecision:
    """May alcohol be tendered in this store at the instant `at`? Read on the store's own wall clock."""
    return sale_decision_at(stores.policies_of(store).sale_hours, local_now(store.timezone, at))


async def authorize_sale(
    session: AsyncSession,
    crypto: EncryptionService,
    *,
    store: Store,
    sale_id: int,
    clerk: User,
    required_min_age: int | None,
    customer_id: int | None,
    at: datetime,
    register_id: int | None,
) -> SaleComplianceDecision:
    """May this sale be tendered at `at`? Called by the checkout for a sale with age-restricted lines
    (`required_min_age`: the highest line minimum; None when there is no such line).

    In order: the store's sale hours at `at` (store-local), the clerk's age against `min_clerk_age` (or a manager
    override for this sale today), no underage refusal on this sale today, and a passing or overridden ID check
    for this sale on today's business date covering `required_min_age` — or, where the store allows it, the
    customer's verified profile. Refusals write their event and raise `OutsideSaleHours`, `ClerkTooYoung` or
    `Underage` (all `keeps_records`); a missing check raises `AgeVerificationRequired` and writes nothing.
    Does not commit.
    """
    on = store_local_date(at, store.timezone)
    if required_min_age is None:
        return SaleComplianceDecision(True, sale_id, on, None, None, None, False, None, False)
    policy = stores.policies_of(store)
    actor = Actor(user_id=clerk.id, role=clerk.role, store_id=store.id, register_id=register_id, name=clerk.username)

    def tender_event(reason: str) -> ComplianceEvent:
        return ComplianceEvent(
            occurred_at=at, business_date=on, store_id=store.id, register_id=register_id, clerk_id=clerk.id,
            customer_id=customer_id, sale_id=sale_id, method="tender", result="refused", reason=reason,
            checked_min_age=required_min_age,
        )  # fmt: skip

    local = local_now(store.timezone, at)
    hours = sale_hours_at(store, at)
    if not hours.allowed:
        event = await record_event(
            session, crypto, actor, tender_event("outside_sale_hours"), action="compliance.tender_check",
            extra={"hours": hours.reason, "local_time": local.strftime("%H:%M:%S")},
        )  # fmt: skip
        raise errors.OutsideSaleHours(details={**refusal_details(event), "hours": hours.reason})

    today = (
        ComplianceEvent.sale_id == sale_id,
        ComplianceEvent.store_id == store.id,
        ComplianceEvent.business_date == on,
    )
    clerk_override: int | None = None
    if clerk.birth_date is not None and on < age_allowed_on(clerk.birth_date, policy.min_clerk_age):
        clerk_override = await session.scalar(
            select(func.max(ComplianceEvent.id)).where(
                *today, ComplianceEvent.result == "overridden", ComplianceEvent.reason == "clerk_too_young"
            )
        )
        if clerk_override is None:
            event = await record_event(
                session, crypto, actor, tender_event("clerk_too_young"), action="compliance.tender_check",
                extra={"min_clerk_age": policy.min_clerk_age},
            )  # fmt: skip
            raise errors.ClerkTooYoung(details={**refusal_details(event), "min_clerk_age": policy.min_clerk_age})
    elif clerk.birth_date is None:
        log.warning("clerk_birth_date_unknown", clerk_id=clerk.id, sale_id=sale_id)

    # Anyone in the purchase found under age blocks the sale for good: a later passing check (a friend's ID)
    # must not launder it. The cashier voids the sale.
    minor = await session.scalar(
        select(func.max(ComplianceEvent.id)).where(
            *today,
            ComplianceEvent.result == "refused",
            ComplianceEvent.reason == "underage",
            ComplianceEvent.checked_min_age <= required_min_age,
        )
    )
    if minor is not None:
        raise errors.Underage(details={"event_id": minor, "reason": "underage", "overridable": False})

    covering = await session.scalar(
        select(ComplianceEvent)
        .where(*today, covering_condition(), ComplianceEvent.checked_min_age >= required_min_age)
        .order_by(ComplianceEvent.id.desc())
        .limit(1)
    )
    if covering is None and customer_id is not None and policy.verified_profile_skips_scan:
        covering = await _profile_for_sale(session, crypto, actor, store, customer_id, sale_id, required_min_age, at)
    if covering is None:
        raise errors.AgeVerificationRequired(details={"sale_id": sale_id, "required_min_age": required_min_age})
    verified_by, id_scanned = await _verification_of(session, covering)
    return SaleComplianceDecision(
        allowed=True,
        sale_id=sale_id,
        business_date=on,
        required_min_age=required_min_age,
        event_id=covering.id,
        method=covering.method,
        age_verified=True,
        verified_by=verified_by,
        id_scanned=id_scanned,
        clerk_override_event_id=clerk_override,
        clerk_age_unknown=clerk.birth_date is None,
    )


async def _profile_for_sale(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    store: Store,
    customer_id: int,
    sale_id: int,
    required_min_age: int,
    at: datetime,
) -> ComplianceEvent | None:
    customer = await session.get(Customer, customer_id)
    if customer is None or not customer.age_verified or customer.date_of_birth_encrypted is None:
        return None
    # Not check_id: the sale is already past the point where ID checks are added (it is completing).
    result = await _check(
        session, crypto, actor, store=store, evidence=ProfileEvidence(), now=at, sale_id=sale_id, customer=customer,
        checked_min_age=required_min_age, save_to_profile=False,
    )  # fmt: skip
    return result.event


async def _verification_of(session: AsyncSession, event: ComplianceEvent) -> tuple[int | None, bool]:
    if event.method != "override":
        return event.clerk_id, event.method == "scan"
    refused = await session.get(ComplianceEvent, event.overrides_event_id) if event.overrides_event_id else None
    scanned = refused is not None and refused.method == "scan" and refused.reason != "unreadable"
    return event.override_manager_id, scanned
