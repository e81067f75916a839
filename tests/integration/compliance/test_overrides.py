"""Manager override: allowed for document problems, never for a minor or outside the legal hours; wrong
manager credentials are refused, audited and count toward the manager's PIN lock-out."""

from __future__ import annotations

from datetime import date, time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from posomni.audit.models import AuditEntry
from posomni.auth.service import PIN_ATTEMPTS_BEFORE_LOCK
from posomni.compliance import errors
from posomni.compliance.models import ComplianceEvent, dob_aad
from posomni.database import Database
from tests.integration.compliance.support import (
    Clock,
    authorize,
    crypto_of,
    events,
    local,
    make_sale,
    manual,
    scan,
    user,
)
from tests.support import PASSWORDS, PINS

ADULT = {"dob": date(1970, 3, 3), "expires": date(2026, 1, 1)}  # expired on the test day, 15 June 2026


def approval(**extra: Any) -> dict[str, Any]:
    return {
        "manager_username": "manager",
        "manager_pin": PINS["manager"],
        "reason": "Customer clearly over 40",
        **extra,
    }


async def refused_event(http: httpx.AsyncClient, headers: dict[str, str], code: str, **fields: Any) -> int:
    response = await manual(http, headers, **fields)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    event_id: int = response.json()["error"]["details"]["event_id"]
    return event_id


async def actions(database: Database, action: str) -> list[AuditEntry]:
    async with database.sessionmaker() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


async def test_manager_overrides_an_expired_licence_as_an_event_of_its_own(
    http: httpx.AsyncClient, cashier: dict[str, str], database: Database
) -> None:
    refused = await refused_event(http, cashier, "id_expired", **ADULT)
    response = await http.post(f"/compliance/id-checks/{refused}/override", headers=cashier, json=approval())
    assert response.status_code == 201, response.text
    body = response.json()
    manager = await user(database, "manager")
    assert body["overrides_event_id"] == refused
    assert body["override_manager_id"] == manager.id
    assert body["result"] == "overridden"
    assert body["reason"] == "expired"
    async with database.sessionmaker() as session:
        override = await session.get(ComplianceEvent, body["event_id"])
    assert override is not None
    assert (override.method, override.result) == ("override", "overridden")
    assert override.override_reason == "Customer clearly over 40"
    assert override.clerk_id == (await user(database, "cashier")).id
    assert crypto_of(http).decrypt_text(override.dob_encrypted or "", aad=dob_aad(override.id)) == "1970-03-03"
    [entry] = await actions(database, "compliance.override")
    assert entry.target_id == str(override.id)
    again = await http.post(f"/compliance/id-checks/{refused}/override", headers=cashier, json=approval())
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_overridden"


async def test_manager_password_works_as_the_second_credential(
    http: httpx.AsyncClient, cashier: dict[str, str]
) -> None:
    refused = await refused_event(http, cashier, "id_expired", **ADULT)
    body = approval(manager_pin=None, manager_password=PASSWORDS["manager"])
    response = await http.post(f"/compliance/id-checks/{refused}/override", headers=cashier, json=body)
    assert response.status_code == 201, response.text


async def test_an_underage_refusal_can_never_be_overridden(
    http: httpx.AsyncClient, cashier: dict[str, str], database: Database
) -> None:
    refused = await refused_event(http, cashier, "underage", dob=date(2010, 1, 1), expires=date(2030, 1, 1))
    response = await http.post(f"/compliance/id-checks/{refused}/override", headers=cashier, json=approval())
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "override_not_allowed"
    assert error["details"]["why"] == "underage"
    async with database.sessionmaker() as session:
        assert [e.method for e in await events(session)] == ["manual"]
    assert len(await actions(database, "compliance.override_refused")) == 1
    # The credentials were never even checked: nothing counts against the manager.
    assert (await user(database, "manager")).failed_pin_attempts == 0


async def test_an_expired_card_of_a_minor_stays_refused(http: httpx.AsyncClient, cashier: dict[str, str]) -> None:
    # Refused first for its headline reason (underage), the card is also expired: no override either way.
    refused = await refused_event(http, cashier, "underage", dob=date(2010, 1, 1), expires=date(2020, 1, 1))
    response = await http.post(f"/compliance/id-checks/{refused}/override", headers=cashier, json=approval())
    assert response.json()["error"]["code"] == "override_not_allowed"


async def test_sale_hours_can_never_be_overridden(
    http: httpx.AsyncClient, cashier: dict[str, str], database: Database
) -> None:
    sale = await make_sale(database, lines=[(True, 21)])
    at = local(date(2026, 6, 15), time(3, 0))
    with pytest.raises(errors.OutsideSaleHours) as refused:
        await authorize(database, crypto_of(http), sale_id=sale, at=at)
    event_id = refused.value.details["event_id"]
    assert refused.value.details["overridable"] is False
    response = await http.post(f"/compliance/id-checks/{event_id}/override", headers=cashier, json=approval())
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "override_not_allowed"


async def test_wrong_manager_pin_is_refused_audited_and_locks_the_pin(
    http: httpx.AsyncClient, cashier: dict[str, str], database: Database
) -> None:
    refused = await refused_event(http, cashier, "id_expired", **ADULT)
    url = f"/compliance/id-checks/{refused}/override"
    for attempt in range(1, PIN_ATTEMPTS_BEFORE_LOCK + 1):
        response = await http.post(url, headers=cashier, json=approval(manager_pin="2580"))
        if attempt < PIN_ATTEMPTS_BEFORE_LOCK:
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "manager_approval_failed"
        else:
            assert response.status_code == 423
            assert response.json()["error"]["code"] == "pin_locked"
        assert PINS["manager"] not in response.text
    manager = await user(database, "manager")
    assert manager.failed_pin_attempts == PIN_ATTEMPTS_BEFORE_LOCK
    assert manager.pin_locked_until is not None
    failures = await actions(database, "compliance.override_failed")
    assert len(failures) == PIN_ATTEMPTS_BEFORE_LOCK
    assert len(await actions(database, "auth.pin_locked")) == 1
    # The right PIN no longer helps; the manager's password still does.
    locked = await http.post(url, headers=cashier, json=approval())
    assert locked.status_code == 423
    password = approval(manager_pin=None, manager_password=PASSWORDS["manager"])
    assert (await http.post(url, headers=cashier, json=password)).status_code == 201
    async with database.sessionmaker() as session:
        overrides = await session.scalar(select(func.count()).where(ComplianceEvent.method == "override"))
    assert overrides == 1


async def test_a_cashier_cannot_approve_an_override(
    http: httpx.AsyncClient, cashier: dict[str, str], database: Database
) -> None:
    refused = await refused_event(http, cashier, "id_expired", **ADULT)
    body = approval(manager_username="cashier", manager_pin=PINS["cashier"])
    response = await http.post(f"/compliance/id-checks/{refused}/override", headers=cashier, json=body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "manager_approval_failed"
    [failure] = await actions(database, "compliance.override_failed")
    assert failure.target_id == str((await user(database, "cashier")).id)
    unknown = await http.post(
        f"/compliance/id-checks/{refused}/override", headers=cashier, json=approval(manager_username="ghost")
    )
    assert unknown.json()["error"]["code"] == "manager_approval_failed"


async def test_an_unreadable_scan_is_overridden_only_with_an_adult_date_of_birth(
    http: httpx.AsyncClient, cashier: dict[str, str], database: Database
) -> None:
    response = await scan(http, cashier, "not a licence at all")
    assert response.json()["error"]["code"] == "id_unreadable"
    url = f"/compliance/id-checks/{response.json()['error']['details']['event_id']}/override"
    missing = await http.post(url, headers=cashier, json=approval())
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "manual_entry_incomplete"
    minor = approval(dob="2012-02-02", expires="2030-01-01", document_type="driver_license")
    assert (await http.post(url, headers=cashier, json=minor)).json()["error"]["code"] == "override_not_allowed"
    adult = approval(dob="1975-02-02", expires="2030-01-01", document_type="driver_license")
    done = await http.post(url, headers=cashier, json=adult)
    assert done.status_code == 201, done.text
    async with database.sessionmaker() as session:
        event = await session.get(ComplianceEvent, done.json()["event_id"])
    assert event is not None
    assert event.document_type == "driver_license"
    assert crypto_of(http).decrypt_text(event.dob_encrypted or "", aad=dob_aad(event.id)) == "1975-02-02"


async def test_a_refusal_is_overridden_only_on_its_own_day(
    http: httpx.AsyncClient, cashier: dict[str, str], clock: Clock
) -> None:
    refused = await refused_event(http, cashier, "id_expired", **ADULT)
    clock.set_local(date(2026, 6, 16))
    response = await http.post(f"/compliance/id-checks/{refused}/override", headers=cashier, json=approval())
    assert response.json()["error"]["details"]["why"] == "other_day"


@pytest.mark.parametrize(
    "body",
    [
        {"manager_username": "manager", "reason": "no credential"},
        {"manager_username": "manager", "manager_pin": "7391", "manager_password": "x", "reason": "both"},
        {"manager_username": "manager", "manager_pin": "7391", "reason": "  "},
        {"manager_username": "manager", "manager_pin": "73a1", "reason": "pin with a letter"},
    ],
)
async def test_override_bodies_are_validated(
    http: httpx.AsyncClient, cashier: dict[str, str], body: dict[str, Any]
) -> None:
    response = await http.post("/compliance/id-checks/1/override", headers=cashier, json=body)
    assert response.status_code == 422
    assert "7391" not in response.text
