"""Age-restricted sales: the checkout asks the compliance domain at tender time and never sells without a
passing check, within the legal hours."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from posomni.compliance.models import ComplianceEvent
from posomni.kit import time as kit_time
from posomni.sales import saga as saga_module
from tests.integration.sales.conftest import VODKA, Register


def manual_check(sale_id: int, dob: str) -> dict[str, Any]:
    return {
        "method": "manual", "dob": dob, "expires": "2031-01-01", "document_type": "passport",
        "photo_compared": True, "sale_id": sale_id,
    }  # fmt: skip


async def test_no_sale_of_alcohol_without_a_passing_check(register: Register) -> None:
    sale = await register.new_sale()
    scanned = await register.scan(sale["id"], VODKA)
    assert scanned["needs_id_check"] is True
    before = await register.stock(VODKA)
    refused = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 5000}])
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "age_verification_required"
    assert (await register.http.get(f"/sales/{sale['id']}", headers=register.cashier)).json()["status"] == "open"
    underage = await register.http.post(
        "/compliance/id-checks", json=manual_check(sale["id"], "2010-05-05"), headers=register.cashier
    )
    assert underage.status_code == 422
    assert underage.json()["error"]["code"] == "underage"
    still = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 5000}])
    assert still.status_code == 422
    assert still.json()["error"]["code"] == "underage"
    # An underage refusal on this sale stands, even after another ID is shown: it may be someone else's.
    adult = await register.http.post(
        "/compliance/id-checks", json=manual_check(sale["id"], "1980-05-05"), headers=register.cashier
    )
    assert adult.status_code == 201, adult.text
    blocked = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 5000}])
    assert blocked.status_code == 422
    assert blocked.json()["error"]["code"] == "underage"
    assert await register.stock(VODKA) == before


async def test_adult_id_then_sale_completes_and_is_marked_verified(register: Register) -> None:
    sale = await register.new_sale()
    await register.scan(sale["id"], VODKA)
    adult = await register.http.post(
        "/compliance/id-checks", json=manual_check(sale["id"], "1980-05-05"), headers=register.cashier
    )
    assert adult.status_code == 201, adult.text
    done = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 5000}])
    assert done.status_code == 200, done.text
    assert done.json()["age_verified"] is True
    async with register.database.sessionmaker() as session:
        events = list(await session.scalars(select(ComplianceEvent).where(ComplianceEvent.sale_id == sale["id"])))
    assert [e.result for e in events] == ["passed"]
    today = done.json()["business_date"]
    report = await register.http.get(
        "/compliance/reports/unverified-sales", params={"from": today, "to": today}, headers=register.manager
    )
    assert report.status_code == 200, report.text
    assert report.json()["count"] == 0
    assert report.json()["sales"] == []


@pytest.mark.parametrize(
    ("local_time", "allowed"),
    [(time(5, 30), False), (time(6, 59, 59), False), (time(7, 0), True), (time(23, 59, 59), True)],
)
async def test_sale_hours_are_checked_at_tender_time(
    florida_register: Register, monkeypatch: pytest.MonkeyPatch, local_time: time, allowed: bool
) -> None:
    """The demo store is in America/New_York with Florida's default hours (no sales 00:00–07:00)."""
    register = florida_register
    sale = await register.new_sale()
    await register.scan(sale["id"], VODKA)
    adult = await register.http.post(
        "/compliance/id-checks", json=manual_check(sale["id"], "1980-05-05"), headers=register.cashier
    )
    assert adult.status_code == 201
    zone = ZoneInfo("America/New_York")
    today = kit_time.utcnow().astimezone(zone).date()
    moment = datetime.combine(today, local_time, tzinfo=zone).astimezone(UTC)
    monkeypatch.setattr(saga_module, "utcnow", lambda: moment)
    response = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 5000}])
    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "outside_sale_hours"
