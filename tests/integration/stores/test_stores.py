"""The stores API: reading one's own store, changing a store, its policies and its registers (audited)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from posomni.audit.models import AuditEntry
from posomni.audit.service import decrypt_details
from posomni.config import Settings
from posomni.database import Database
from posomni.inventory.models import StockLevel
from posomni.security.crypto import EncryptionService
from posomni.stores.models import Store
from posomni.stores.service import StoreSettingsBroken
from tests.integration.compliance.support import authorize, local, make_sale
from tests.support import running_app, seed_demo, sign_in


@pytest.fixture
async def app_client(settings: Settings, database: Database) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    await seed_demo(database)
    async with database.unit_of_work() as session:
        session.add(
            Store(code="FL-002", name="Second", timezone="America/Chicago", state="FL", state_tax_rate=Decimal("0.06"))
        )
    async with running_app(settings, database) as pair:
        yield pair


@pytest.fixture
def http(app_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_client[1]


@pytest.fixture
def crypto(app_client: tuple[FastAPI, httpx.AsyncClient]) -> EncryptionService:
    service: EncryptionService = app_client[0].state.crypto
    return service


async def audited(database: Database, crypto: EncryptionService, action: str) -> list[Any]:
    async with database.sessionmaker() as session:
        entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))
        return [decrypt_details(crypto, e) for e in entries]


async def test_store_staff_read_their_own_store_only(http: httpx.AsyncClient) -> None:
    cashier = await sign_in(http, "cashier")
    stores = (await http.get("/stores", headers=cashier)).json()
    assert [s["code"] for s in stores] == ["FL-001"]
    own = stores[0]
    assert own["state_tax_rate"] == "0.06"
    assert (await http.get(f"/stores/{own['id']}", headers=cashier)).status_code == 200
    assert (await http.get(f"/stores/{own['id'] + 1}", headers=cashier)).status_code == 404
    assert (await http.get(f"/stores/{own['id'] + 1}/settings", headers=cashier)).status_code == 404
    policies = (await http.get(f"/stores/{own['id']}/settings", headers=cashier)).json()["settings"]
    assert policies["min_clerk_age"] == 18
    assert policies["keep_id_details"] is False
    assert policies["returns_without_receipt"] == "manager"
    assert policies["sale_hours"]["default"] == [{"opens": "07:00", "closes": "24:00"}]
    registers = (await http.get(f"/stores/{own['id']}/registers", headers=cashier)).json()
    assert [r["code"] for r in registers] == ["R1", "R2"]
    admin = await sign_in(http, "admin")
    assert len((await http.get("/stores", headers=admin)).json()) == 2
    assert (await http.get("/stores/99999999999999999999", headers=admin)).status_code == 422


async def test_settings_validation_reports_every_error_at_once(http: httpx.AsyncClient) -> None:
    admin = await sign_in(http, "admin")
    before = (await http.get("/stores/1/settings", headers=admin)).json()
    bad = {
        "sale_hours": {"default": [{"opens": "7am", "closes": "25:00"}], "weekdays": {"funday": []}},
        "min_clerk_age": "18",
        "verified_profile_skips_scan": "yes",
        "allow_negative_stock": 1,
        "keep_id_details": None,
        "deposits": {"crv": -1, "bad key": 5},
        "returns_without_receipt": "sometimes",
        "tax_rates": {"reduced": 0.03, "luxury": "1.5"},
        "loyalty_points_per_dollar": True,
        "min_clerck_age": 21,
    }
    response = await http.put("/stores/1/settings", headers=admin, json=bad)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_settings"
    problems = error["details"]["problems"]
    keys = {p["key"] for p in problems}
    assert keys == {
        "sale_hours", "min_clerk_age", "verified_profile_skips_scan", "allow_negative_stock", "keep_id_details",
        "deposits.crv", "deposits", "returns_without_receipt", "tax_rates.reduced", "tax_rates.luxury",
        "loyalty_points_per_dollar", "min_clerck_age",
    }  # fmt: skip
    # Every sale-hours problem, not just the first.
    assert len([p for p in problems if p["key"] == "sale_hours"]) == 3
    assert (await http.get("/stores/1/settings", headers=admin)).json() == before
    not_an_object = await http.put("/stores/1/settings", headers=admin, json=["sale_hours"])
    assert not_an_object.status_code == 422


async def test_settings_change_is_audited_with_before_and_after(
    http: httpx.AsyncClient, database: Database, crypto: EncryptionService
) -> None:
    admin = await sign_in(http, "admin")
    document = {
        "sale_hours": {"default": [{"opens": "07:00", "closes": "00:00"}], "dates": {"2026-12-25": []}},
        "min_clerk_age": 21,
        "deposits": {"can_bottle": 5},
        "tax_rates": {"reduced": "0.025"},
    }
    response = await http.put("/stores/1/settings", headers=admin, json=document)
    assert response.status_code == 200, response.text
    policies = response.json()["settings"]
    assert policies["sale_hours"]["default"] == [{"opens": "07:00", "closes": "24:00"}]
    assert policies["sale_hours"]["dates"] == {"2026-12-25": []}
    assert policies["min_clerk_age"] == 21
    [change] = await audited(database, crypto, "store.settings_changed")
    assert change["before"] == {
        "min_clerk_age": 18,
        "deposits": {},
        "tax_rates": {},
        "sale_hours": {"default": [{"opens": "07:00", "closes": "24:00"}], "weekdays": {}, "dates": {}},
    }
    assert change["after"]["min_clerk_age"] == 21
    assert change["after"]["deposits"] == {"can_bottle": 5}
    # The same document again changes nothing and records nothing.
    assert (await http.put("/stores/1/settings", headers=admin, json=document)).status_code == 200
    assert len(await audited(database, crypto, "store.settings_changed")) == 1
    for role in ("manager", "cashier", "auditor"):
        headers = await sign_in(http, role)
        assert (await http.put("/stores/1/settings", headers=headers, json=document)).status_code == 403


async def test_switching_negative_stock_updates_every_stock_row_in_the_same_request(
    http: httpx.AsyncClient, database: Database
) -> None:
    admin = await sign_in(http, "admin")

    async def flags() -> set[bool]:
        async with database.sessionmaker() as session:
            return set(await session.scalars(select(StockLevel.allow_negative).where(StockLevel.store_id == 1)))

    assert await flags() == {False}
    response = await http.put("/stores/1/settings", headers=admin, json={"allow_negative_stock": True})
    assert response.status_code == 200, response.text
    assert await flags() == {True}
    assert (await http.put("/stores/1/settings", headers=admin, json={})).status_code == 200
    assert await flags() == {False}


async def test_store_changes_are_validated_together_and_audited(
    http: httpx.AsyncClient, database: Database, crypto: EncryptionService
) -> None:
    admin = await sign_in(http, "admin")
    bad = {"timezone": "Mars/Olympus", "state_tax_rate": "6%", "local_tax_rate": "1.5"}
    response = await http.patch("/stores/1", headers=admin, json=bad)
    assert response.status_code == 422
    fields = {p["field"] for p in response.json()["error"]["details"]["problems"]}
    assert fields == {"timezone", "state_tax_rate", "local_tax_rate"}
    assert (await http.patch("/stores/1", headers=admin, json={"state_tax_rate": "0.123456"})).status_code == 422
    assert (await http.patch("/stores/1", headers=admin, json={"state_tax_rate": 0.06})).status_code == 422
    good = {"name": "Demo Liquors Downtown", "timezone": "America/Chicago", "local_tax_rate": "0.015"}
    changed = await http.patch("/stores/1", headers=admin, json=good)
    assert changed.status_code == 200, changed.text
    assert changed.json()["local_tax_rate"] == "0.015"
    assert changed.json()["timezone"] == "America/Chicago"
    [entry] = await audited(database, crypto, "store.updated")
    assert entry["before"]["timezone"] == "America/New_York"
    assert entry["after"] == {"name": "Demo Liquors Downtown", "timezone": "America/Chicago", "local_tax_rate": "0.015"}
    manager = await sign_in(http, "manager")
    assert (await http.patch("/stores/1", headers=manager, json=good)).status_code == 403


async def test_registers_are_added_and_changed_by_admins(
    http: httpx.AsyncClient, database: Database, crypto: EncryptionService
) -> None:
    admin = await sign_in(http, "admin")
    created = await http.post("/stores/1/registers", headers=admin, json={"code": "R3", "name": "Drive-through"})
    assert created.status_code == 201, created.text
    register = created.json()
    duplicate = await http.post("/stores/1/registers", headers=admin, json={"code": "R3", "name": "Again"})
    assert duplicate.status_code == 409
    paired = await http.patch(f"/registers/{register['id']}", headers=admin, json={"card_reader_id": "tmr_ABC123"})
    assert paired.json()["card_reader_id"] == "tmr_ABC123"
    registers = (await http.get("/stores/1/registers", headers=admin)).json()
    other = next(r for r in registers if r["code"] == "R1")
    taken = await http.patch(f"/registers/{other['id']}", headers=admin, json={"card_reader_id": "tmr_ABC123"})
    assert taken.status_code == 409
    renamed = await http.patch(f"/registers/{register['id']}", headers=admin, json={"name": "Window"})
    assert renamed.json()["card_reader_id"] == "tmr_ABC123"
    unpaired = await http.patch(f"/registers/{register['id']}", headers=admin, json={"card_reader_id": None})
    assert unpaired.json()["card_reader_id"] is None
    assert (await http.patch("/registers/999999", headers=admin, json={"name": "x"})).status_code == 404
    assert len(await audited(database, crypto, "register.created")) == 1
    assert len(await audited(database, crypto, "register.updated")) == 3
    cashier = await sign_in(http, "cashier")
    assert (
        await http.post("/stores/1/registers", headers=cashier, json={"code": "R9", "name": "x"})
    ).status_code == 403


SETTINGS_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
SETTINGS_KEYS = st.sampled_from(
    ["sale_hours", "min_clerk_age", "deposits", "tax_rates", "keep_id_details", "returns_without_receipt", "x"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(SETTINGS_KEYS, SETTINGS_VALUES, max_size=4))
async def test_no_settings_document_makes_a_500(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    admin = await sign_in(http, "admin")
    response = await http.put("/stores/1/settings", headers=admin, json=body)
    assert response.status_code in (200, 422), response.text


async def test_settings_broken_by_hand_stop_sales_instead_of_guessing(
    http: httpx.AsyncClient, database: Database
) -> None:
    async with database.unit_of_work() as session:
        store = await session.get(Store, 1)
        assert store is not None
        store.settings = {**store.settings, "sale_hours": "always"}
    admin = await sign_in(http, "admin")
    broken = await http.get("/stores/1/settings", headers=admin)
    assert broken.status_code == 409
    assert broken.json()["error"]["code"] == "store_settings_invalid"
    assert broken.json()["error"]["details"]["problems"][0]["key"] == "sale_hours"
    # The checkout's compliance step refuses rather than guess the legal hours.
    sale = await make_sale(database, lines=[(True, 21)])
    with pytest.raises(StoreSettingsBroken):
        await authorize(database, crypto, sale_id=sale, at=local(date(2026, 6, 15)))
    fixed = await http.put("/stores/1/settings", headers=admin, json={"min_clerk_age": 18})
    assert fixed.status_code == 200
    assert (await http.get("/stores/1/settings", headers=admin)).status_code == 200
