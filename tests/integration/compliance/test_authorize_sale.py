"""`authorize_sale`, the checkout's compliance step: sale hours at tender time, the clerk's age, and a check
that covers the sale's minimum age on the same business date."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import httpx
import pytest
from sqlalchemy import select

from posomni.auth.principal import Actor
from posomni.compliance import errors
from posomni.compliance import service as compliance
from posomni.compliance.models import ComplianceEvent
from posomni.customers.models import Customer
from posomni.database import Database
from posomni.security.crypto import EncryptionService
from posomni.seed.demo import DEMO_STORE_CODE
from posomni.stores.models import Store
from posomni.users.models import User
from tests.integration.compliance.support import (
    Clock,
    authorize,
    build_card,
    crypto_of,
    events,
    local,
    make_sale,
    set_birth_date,
    update_store,
    user,
)
from tests.support import PINS

DAY = date(2026, 6, 15)


@pytest.fixture
def crypto(http: httpx.AsyncClient) -> EncryptionService:
    return crypto_of(http)


async def check(
    database: Database,
    crypto: EncryptionService,
    *,
    sale_id: int | None,
    at: datetime,
    dob: date = date(1980, 1, 1),
    expires: date = date(2030, 1, 1),
    min_age: int | None = None,
    raw: str | None = None,
) -> ComplianceEvent | None:
    """An ID check by the demo cashier; a refusal's event is kept and None returned."""
    try:
        async with database.unit_of_work() as session:
            store = await session.scalar(select(Store).where(Store.code == DEMO_STORE_CODE))
            clerk = await session.scalar(select(User).where(User.username == "cashier"))
            assert store is not None
            assert clerk is not None
            actor = Actor(user_id=clerk.id, role=clerk.role, store_id=store.id)
            evidence: compliance.Evidence = (
                compliance.ScanEvidence(raw)
                if raw is not None
                else compliance.ManualEvidence(dob=dob, expires=expires, document_type="passport", photo_compared=True)
            )
            result = await compliance.check_id(
                session, crypto, actor, store=store, evidence=evidence, now=at, sale_id=sale_id, min_age=min_age
            )
            return result.event
    except errors.IdRefused:
        return None


@pytest.mark.parametrize(
    ("checked_at", "tendered_at", "allowed"),
    [
        (time(12, 0), (0, time(23, 59, 59)), True),
        (time(12, 0), (1, time(0, 0, 0)), False),
        (time(12, 0), (1, time(6, 59, 59)), False),
        (time(7, 0), (0, time(7, 0, 0)), True),
    ],
    ids=["23:59:59_allowed", "00:00:00_refused", "06:59:59_refused", "07:00:00_allowed"],
)
async def test_sale_hours_are_checked_at_tender_time(
    database: Database,
    crypto: EncryptionService,
    checked_at: time,
    tendered_at: tuple[int, time],
    allowed: bool,
) -> None:
    days, at = tendered_at
    sale = await make_sale(database, lines=[(True, 21)])
    event = await check(database, crypto, sale_id=sale, at=local(DAY + timedelta(days=days), checked_at))
    assert event is not None
    tender = local(DAY + timedelta(days=days), at)
    if allowed:
        decision = await authorize(database, crypto, sale_id=sale, at=tender)
        assert decision.allowed
        assert decision.event_id == event.id
        assert decision.age_verified
        assert decision.verified_by == (await user(database, "cashier")).id
        assert decision.id_scanned is False
        assert decision.method == "manual"
    else:
        with pytest.raises(errors.OutsideSaleHours) as refused:
            await authorize(database, crypto, sale_id=sale, at=tender)
        async with database.sessionmaker() as session:
            recorded = await session.get(ComplianceEvent, refused.value.details["event_id"])
        assert recorded is not None
        assert (recorded.method, recorded.result, recorded.reason) == ("tender", "refused", "outside_sale_hours")
        assert recorded.sale_id == sale


@pytest.mark.parametrize(("at", "allowed"), [(time(1, 59, 59), True), (time(2, 0), False), (time(6, 0), False)])
async def test_a_window_crossing_midnight(
    database: Database, crypto: EncryptionService, at: time, allowed: bool
) -> None:
    await update_store(database, settings={"sale_hours": {"default": [{"opens": "07:00", "closes": "02:00"}]}})
    sale = await make_sale(database, lines=[(True, 21)])
    night = DAY + timedelta(days=1)
    await check(database, crypto, sale_id=sale, at=local(night, time(0, 30)))
    if allowed:
        assert (await authorize(database, crypto, sale_id=sale, at=local(night, at))).allowed
    else:
        with pytest.raises(errors.OutsideSaleHours):
            await authorize(database, crypto, sale_id=sale, at=local(night, at))


async def test_a_sale_without_age_restricted_lines_needs_nothing(database: Database, crypto: EncryptionService) -> None:
    sale = await make_sale(database, lines=[(False, None)])
    decision = await authorize(database, crypto, sale_id=sale, at=local(DAY, time(3, 0)), required_min_age=None)
    assert decision.allowed
    assert decision.age_verified is False
    assert decision.event_id is None
    async with database.sessionmaker() as session:
        assert await events(session) == []


async def test_without_a_covering_check_the_cashier_is_asked_for_one(
    database: Database, crypto: EncryptionService
) -> None:
    sale = await make_sale(database, lines=[(True, 21)])
    with pytest.raises(errors.AgeVerificationRequired) as missing:
        await authorize(database, crypto, sale_id=sale, at=local(DAY))
    assert missing.value.keeps_records is False
    # A check at 18 does not cover a sale that needs 21; yesterday's check does not cover today.
    await check(database, crypto, sale_id=None, at=local(DAY), min_age=18)
    async with database.unit_of_work() as session:
        for event in await events(session):
            event.sale_id = sale
    with pytest.raises(errors.AgeVerificationRequired):
        await authorize(database, crypto, sale_id=sale, at=local(DAY))
    await check(database, crypto, sale_id=sale, at=local(DAY))
    with pytest.raises(errors.AgeVerificationRequired):
        await authorize(database, crypto, sale_id=sale, at=local(DAY + timedelta(days=1)))
    assert (await authorize(database, crypto, sale_id=sale, at=local(DAY, time(18, 0)))).allowed


async def test_a_minor_in_the_purchase_blocks_the_sale_even_after_a_passing_check(
    database: Database, crypto: EncryptionService
) -> None:
    sale = await make_sale(database, lines=[(True, 21)])
    assert await check(database, crypto, sale_id=sale, at=local(DAY), dob=date(2010, 1, 1)) is None
    assert await check(database, crypto, sale_id=sale, at=local(DAY)) is not None
    with pytest.raises(errors.Underage):
        await authorize(database, crypto, sale_id=sale, at=local(DAY))


async def test_a_clerk_below_the_minimum_age_needs_a_manager(
    http: httpx.AsyncClient, cashier: dict[str, str], clock: Clock, database: Database, crypto: EncryptionService
) -> None:
    await set_birth_date(database, "cashier", date(2009, 1, 1))  # 17 on the test day; the store's minimum is 18
    sale = await make_sale(database, lines=[(True, 21)])
    at = clock.set_local(DAY, time(15, 0))
    await check(database, crypto, sale_id=sale, at=at)
    with pytest.raises(errors.ClerkTooYoung) as refused:
        await authorize(database, crypto, sale_id=sale, at=at)
    event_id = refused.value.details["event_id"]
    async with database.sessionmaker() as session:
        recorded = await session.get(ComplianceEvent, event_id)
    assert recorded is not None
    assert (recorded.method, recorded.reason) == ("tender", "clerk_too_young")
    body = {"manager_username": "manager", "manager_pin": PINS["manager"], "reason": "Manager present at the till"}
    approved = await http.post(f"/compliance/id-checks/{event_id}/override", headers=cashier, json=body)
    assert approved.status_code == 201, approved.text
    decision = await authorize(database, crypto, sale_id=sale, at=at)
    assert decision.allowed
    assert decision.clerk_override_event_id == approved.json()["event_id"]
    # The clerk override covers the clerk, not the customer: the covering check is still the ID check.
    assert decision.method == "manual"
    # Old enough at 18: no manager needed.
    await set_birth_date(database, "cashier", date(2008, 6, 15))
    other = await make_sale(database, lines=[(True, 21)])
    await check(database, crypto, sale_id=other, at=at)
    assert (await authorize(database, crypto, sale_id=other, at=at)).clerk_override_event_id is None


async def test_a_clerk_without_a_birth_date_may_sell_and_is_flagged(
    database: Database, crypto: EncryptionService
) -> None:
    sale = await make_sale(database, lines=[(True, 21)])
    await check(database, crypto, sale_id=sale, at=local(DAY))
    assert (await authorize(database, crypto, sale_id=sale, at=local(DAY))).clerk_age_unknown is True
    await set_birth_date(database, "cashier", date(1990, 1, 1))
    assert (await authorize(database, crypto, sale_id=sale, at=local(DAY))).clerk_age_unknown is False


async def test_an_override_covers_the_sale_and_names_the_manager(
    http: httpx.AsyncClient, cashier: dict[str, str], database: Database, crypto: EncryptionService
) -> None:
    sale = await make_sale(database, lines=[(True, 21)])
    card = build_card(dob=date(1970, 1, 1), expires=date(2026, 1, 1))
    scanned = await http.post(
        "/compliance/id-checks", headers=cashier, json={"method": "scan", "raw": card, "sale_id": sale}
    )
    assert scanned.json()["error"]["code"] == "id_expired"
    refused = scanned.json()["error"]["details"]["event_id"]
    body = {"manager_username": "manager", "manager_pin": PINS["manager"], "reason": "Clearly over 50"}
    assert (await http.post(f"/compliance/id-checks/{refused}/override", headers=cashier, json=body)).status_code == 201
    decision = await authorize(database, crypto, sale_id=sale, at=local(DAY))
    assert decision.method == "override"
    assert decision.verified_by == (await user(database, "manager")).id
    assert decision.age_verified_by == decision.verified_by
    assert decision.id_scanned is True


async def test_a_verified_profile_covers_the_sale_where_the_store_allows(
    database: Database, crypto: EncryptionService
) -> None:
    sale = await make_sale(database, lines=[(True, 21)])
    clerk = Actor(user_id=(await user(database, "cashier")).id, role="cashier")
    async with database.unit_of_work() as session:
        customer = Customer(name="Regular")
        session.add(customer)
        await session.flush()
        await compliance.record_verified_profile(
            session, crypto, clerk, customer,
            dob=date(1985, 5, 5), method="scan", event_id=0, store_id=1, now=local(DAY),
        )  # fmt: skip
        customer_id = customer.id
    with pytest.raises(errors.AgeVerificationRequired):
        await authorize(database, crypto, sale_id=sale, at=local(DAY), customer_id=customer_id)
    await update_store(database, settings={"verified_profile_skips_scan": True})
    decision = await authorize(database, crypto, sale_id=sale, at=local(DAY), customer_id=customer_id)
    assert decision.method == "profile"
    assert decision.id_scanned is False
    async with database.sessionmaker() as session:
        event = await session.get(ComplianceEvent, decision.event_id)
    assert event is not None
    assert (event.sale_id, event.customer_id, event.result) == (sale, customer_id, "passed")


async def test_authorize_sale_does_not_commit(database: Database, crypto: EncryptionService) -> None:
    sale = await make_sale(database, lines=[(True, 21)])
    async with database.sessionmaker() as session:
        store = await session.scalar(select(Store))
        clerk = await session.scalar(select(User).where(User.username == "cashier"))
        assert store is not None
        assert clerk is not None
        with pytest.raises(errors.OutsideSaleHours):
            await compliance.authorize_sale(
                session, crypto, store=store, sale_id=sale, clerk=clerk, required_min_age=21, customer_id=None,
                at=local(DAY, time(4, 0)), register_id=None,
            )  # fmt: skip
        await session.rollback()
    async with database.sessionmaker() as session:
        assert await events(session) == []
