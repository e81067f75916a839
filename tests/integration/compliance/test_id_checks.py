"""ID checks through `POST /compliance/id-checks`: the shared samples, the rules table, the store's timezone,
and what the compliance log keeps (dates encrypted, no barcode, no names)."""

from __future__ import annotations

from datetime import date, time, timedelta

import httpx
import pytest
from sqlalchemy import select

from posomni.audit.models import AuditEntry
from posomni.audit.service import decrypt_details
from posomni.compliance.models import ComplianceEvent, dob_aad, expiry_aad
from posomni.customers.models import Customer
from posomni.customers.models import dob_aad as customer_dob_aad
from posomni.database import Database
from tests.integration.compliance.support import (
    EXPECTED,
    SAMPLES,
    Clock,
    build_card,
    crypto_of,
    events,
    make_sale,
    manual,
    scan,
    store_id,
    text_columns,
    update_store,
)
from tests.support import sign_in

# Decided on 1 January 2021 (store-local), each sample has a known outcome.
SAMPLE_DAY = date(2021, 1, 1)
SAMPLE_OUTCOMES: dict[str, tuple[int, str | None, str | None]] = {
    # sample: (HTTP status, error code, event reason)
    "s1": (201, None, None),
    "s2": (422, "id_expired", "expired"),
    "s4": (201, None, None),
    "s5": (201, None, None),
    "s10": (201, None, None),
    "s12": (422, "id_expired", "expired"),
    "s13": (422, "underage", "underage"),
    "s15": (422, "id_not_yet_issued", "not_yet_issued"),
}


async def only_event(database: Database) -> ComplianceEvent:
    async with database.sessionmaker() as session:
        found = await events(session)
    assert len(found) == 1
    return found[0]


def assert_nothing_identifying(event: ComplianceEvent, *secrets: str | None) -> None:
    row = " ".join(text_columns(event).values()).upper()
    for secret in secrets:
        if secret:
            assert secret.upper() not in row, f"{secret!r} is stored in the compliance event"


@pytest.mark.parametrize("sample", sorted(SAMPLES))
async def test_every_shared_sample_is_decided_and_logged_without_the_barcode(
    http: httpx.AsyncClient, cashier: dict[str, str], clock: Clock, database: Database, sample: str
) -> None:
    clock.set_local(SAMPLE_DAY)
    expected = EXPECTED[sample]["expected"]
    status, code, reason = SAMPLE_OUTCOMES[sample]
    response = await scan(http, cashier, SAMPLES[sample])
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["error"]["code"] == code
    event = await only_event(database)
    assert event.method == "scan"
    assert event.result == ("passed" if code is None else "refused")
    assert event.reason == reason
    assert event.jurisdiction == expected["jurisdiction"]
    assert event.document_type == "driver_license"
    assert event.checked_min_age == 21
    assert event.business_date == SAMPLE_DAY
    # Dates only encrypted, bound to this row, and they decrypt to the card's values.
    crypto = crypto_of(http)
    assert expected["dob"] not in (event.dob_encrypted or "")
    assert crypto.decrypt_text(event.dob_encrypted or "", aad=dob_aad(event.id)) == expected["dob"]
    assert crypto.decrypt_text(event.expiry_encrypted or "", aad=expiry_aad(event.id)) == expected["expires"]
    assert_nothing_identifying(
        event,
        expected["dob"],
        expected["dob"].replace("-", ""),
        expected["document_number"],
        expected.get("last"),
        expected.get("first"),
        expected.get("full_name"),
        SAMPLES[sample][:40],
    )
    assert expected["document_number"] not in response.text
    async with database.sessionmaker() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "compliance.id_check"))
        assert entry is not None
        details = decrypt_details(crypto, entry)
    assert entry.target_id == str(event.id)
    assert details["result"] == event.result
    assert "id_details" not in details
    assert expected["document_number"] not in str(details)


RULES = [
    # (name, today, dob, expires offset from today, issued offset from today, expected code)
    ("under_age_by_one_day", date(2026, 6, 14), date(2005, 6, 15), 365, None, "underage"),
    ("of_age_on_the_birthday", date(2026, 6, 15), date(2005, 6, 15), 365, None, None),
    ("leap_day_birthday_not_yet_on_28_february", date(2025, 2, 28), date(2004, 2, 29), 365, None, "underage"),
    ("leap_day_birthday_of_age_on_1_march", date(2025, 3, 1), date(2004, 2, 29), 365, None, None),
    ("expired_yesterday", date(2026, 6, 15), date(1980, 1, 1), -1, None, "id_expired"),
    ("expires_today", date(2026, 6, 15), date(1980, 1, 1), 0, None, None),
    ("issued_tomorrow", date(2026, 6, 15), date(1980, 1, 1), 365, 1, "id_not_yet_issued"),
    ("issued_today", date(2026, 6, 15), date(1980, 1, 1), 365, 0, None),
]


@pytest.mark.parametrize(
    ("today", "dob", "expires_in", "issued_in", "code"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
async def test_rules_table_by_manual_entry(
    http: httpx.AsyncClient,
    cashier: dict[str, str],
    clock: Clock,
    database: Database,
    today: date,
    dob: date,
    expires_in: int,
    issued_in: int | None,
    code: str | None,
) -> None:
    clock.set_local(today)
    issued = today + timedelta(days=issued_in) if issued_in is not None else None
    response = await manual(http, cashier, dob=dob, expires=today + timedelta(days=expires_in), issued=issued)
    event = await only_event(database)
    assert event.method == "manual"
    assert event.document_type == "passport"
    if code is None:
        assert response.status_code == 201, response.text
        assert response.json()["event_id"] == event.id
        assert event.result == "passed"
    else:
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == code
        assert error["details"]["event_id"] == event.id
        assert error["details"]["overridable"] is (code != "underage")
        assert event.result == "refused"
    assert crypto_of(http).decrypt_text(event.dob_encrypted or "", aad=dob_aad(event.id)) == dob.isoformat()


@pytest.mark.parametrize(("zone", "code"), [("America/New_York", None), ("America/Chicago", "underage")])
async def test_the_store_local_date_decides_at_midnight(
    http: httpx.AsyncClient, clock: Clock, database: Database, zone: str, code: str | None
) -> None:
    # 00:30 on 15 June in New York is still 23:30 on 14 June in Chicago: a 21st birthday on 15 June passes in a
    # New York store and is refused in a Chicago store at the same instant.
    admin = await sign_in(http, "admin")
    patched = await http.patch(f"/stores/{await store_id(database)}", headers=admin, json={"timezone": zone})
    assert patched.status_code == 200, patched.text
    clock.set_local(date(2026, 6, 15), time(0, 30), "America/New_York")
    cashier = await sign_in(http, "cashier")
    response = await manual(http, cashier, dob=date(2005, 6, 15), expires=date(2030, 1, 1))
    event = await only_event(database)
    if code is None:
        assert response.status_code == 201, response.text
        assert event.business_date == date(2026, 6, 15)
    else:
        assert response.json()["error"]["code"] == code
        assert event.business_date == date(2026, 6, 14)


async def test_unreadable_scan_is_refused_and_sends_the_cashier_to_manual_entry(
    http: httpx.AsyncClient, cashier: dict[str, str], database: Database
) -> None:
    raw = "@\n\x1e\rANSI 6360101001" + "garbage DAQ S99887766 DCS SECRETNAME"
    response = await scan(http, cashier, raw)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "id_unreadable"
    assert "manual entry" in error["message"]
    assert error["details"]["overridable"] is True
    assert "S99887766" not in response.text
    assert "SECRETNAME" not in response.text
    event = await only_event(database)
    assert (event.method, event.result, event.reason) == ("scan", "refused", "unreadable")
    assert event.dob_encrypted is None
    assert_nothing_identifying(event, "S99887766", "SECRETNAME")


async def test_manual_entry_needs_every_field_and_the_photo_compared(
    http: httpx.AsyncClient, cashier: dict[str, str], database: Database
) -> None:
    response = await http.post("/compliance/id-checks", headers=cashier, json={"method": "manual"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "manual_entry_incomplete"
    fields = {p["field"] for p in error["details"]["problems"]}
    assert fields == {"dob", "expires", "document_type", "photo_compared"}
    async with database.sessionmaker() as session:
        assert await events(session) == []


async def test_under_21_until_date_is_cross_checked(
    http: httpx.AsyncClient, cashier: dict[str, str], clock: Clock, database: Database
) -> None:
    # The card says under 21 until 1 June 2021, later than DOB + 21 (15 January 2021): the later date wins.
    card = build_card(dob=date(2000, 1, 15), expires=date(2030, 1, 15), under_21_until=date(2021, 6, 1))
    clock.set_local(date(2021, 3, 1))
    refused = await scan(http, cashier, card)
    assert refused.json()["error"]["code"] == "underage"
    clock.set_local(date(2021, 6, 1))
    passed = await scan(http, cashier, card)
    assert passed.status_code == 201
    assert passed.json()["under_21_mismatch"] is True
    async with database.sessionmaker() as session:
        entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "compliance.id_check")))
        assert all(decrypt_details(crypto_of(http), e)["under_21_mismatch"] for e in entries)


async def test_id_details_are_kept_only_when_the_store_says_so_and_only_encrypted(
    http: httpx.AsyncClient, cashier: dict[str, str], database: Database
) -> None:
    await update_store(database, settings={"keep_id_details": True})
    card = build_card(dob=date(1980, 1, 1), expires=date(2030, 1, 1), number="X5550001", last="KEPTNAME")
    response = await scan(http, cashier, card)
    assert response.status_code == 201
    event = await only_event(database)
    assert_nothing_identifying(event, "X5550001", "KEPTNAME")
    async with database.sessionmaker() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "compliance.id_check"))
        assert entry is not None
        assert "X5550001" not in entry.payload_encrypted
        details = decrypt_details(crypto_of(http), entry)
    assert details["id_details"]["document_number"] == "X5550001"
    assert details["id_details"]["last"] == "KEPTNAME"


async def test_a_check_for_a_sale_covers_the_sales_highest_minimum_age(
    http: httpx.AsyncClient, cashier: dict[str, str], database: Database
) -> None:
    sale = await make_sale(database, lines=[(True, 18), (True, 21), (False, None)])
    response = await manual(http, cashier, dob=date(1980, 1, 1), expires=date(2030, 1, 1), sale_id=sale, min_age=18)
    assert response.status_code == 201, response.text
    assert response.json()["checked_min_age"] == 21
    assert response.json()["sale_id"] == sale
    done = await make_sale(database, lines=[(True, 21)], status="completed")
    closed = await manual(http, cashier, dob=date(1980, 1, 1), expires=date(2030, 1, 1), sale_id=done)
    assert closed.status_code == 409
    assert closed.json()["error"]["code"] == "sale_not_open"
    missing = await manual(http, cashier, dob=date(1980, 1, 1), expires=date(2030, 1, 1), sale_id=999999)
    assert missing.status_code == 404


async def test_a_door_check_without_a_sale_uses_21_or_the_age_asked(
    http: httpx.AsyncClient, cashier: dict[str, str], clock: Clock
) -> None:
    clock.set_local(date(2026, 6, 15))
    nineteen = {"dob": date(2007, 1, 1), "expires": date(2030, 1, 1)}
    assert (await manual(http, cashier, **nineteen)).json()["error"]["code"] == "underage"
    at_18 = await manual(http, cashier, **nineteen, min_age=18)
    assert at_18.status_code == 201
    assert at_18.json()["checked_min_age"] == 18


async def test_admins_name_the_store_and_store_staff_cannot_check_for_another_store(
    http: httpx.AsyncClient, cashier: dict[str, str], database: Database
) -> None:
    admin = await sign_in(http, "admin")
    fields = {"dob": date(1980, 1, 1), "expires": date(2030, 1, 1)}
    assert (await manual(http, admin, **fields)).status_code == 422
    assert (await manual(http, admin, **fields, store_id=await store_id(database))).status_code == 201
    assert (await manual(http, cashier, **fields, store_id=999)).status_code == 404
    auditor = await sign_in(http, "auditor")
    assert (await manual(http, auditor, **fields)).status_code == 403


async def test_verified_profile_is_saved_and_used_only_where_the_store_allows(
    http: httpx.AsyncClient, cashier: dict[str, str], database: Database
) -> None:
    async with database.unit_of_work() as session:
        customer = Customer(name="Regular")
        session.add(customer)
        await session.flush()
        customer_id = customer.id
    saved = await manual(
        http, cashier, dob=date(1980, 5, 5), expires=date(2030, 1, 1), customer_id=customer_id, save_to_profile=True
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["profile_saved"] is True
    async with database.sessionmaker() as session:
        stored = await session.get(Customer, customer_id)
        assert stored is not None
        assert stored.age_verified
        assert stored.age_verified_method == "manual"
        assert stored.age_verified_by is not None
        assert stored.age_verified_at is not None
        assert "1980" not in (stored.date_of_birth_encrypted or "")
        token = stored.date_of_birth_encrypted or ""
    assert crypto_of(http).decrypt_text(token, aad=customer_dob_aad(customer_id)) == "1980-05-05"
    body = {"method": "profile", "customer_id": customer_id}
    refused = await http.post("/compliance/id-checks", headers=cashier, json=body)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "profile_not_accepted"
    await update_store(database, settings={"verified_profile_skips_scan": True})
    used = await http.post("/compliance/id-checks", headers=cashier, json=body)
    assert used.status_code == 201, used.text
    assert used.json()["method"] == "profile"
