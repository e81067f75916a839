"""Loyalty points earned and redeemed as a tender; returns without a receipt by store policy; packs."""

from __future__ import annotations

from sqlalchemy import select

from posomni.stores.models import Store
from tests.integration.sales.conftest import CHIPS, COKE, Register
from tests.integration.sales.test_age_restricted import manual_check
from tests.support import PINS


async def test_points_are_earned_shown_on_the_receipt_and_redeemed(register: Register) -> None:
    http, cashier = register.http, register.cashier
    customer = await http.post("/customers", json={"name": "Pat", "phone": "813-555-0101"}, headers=cashier)
    assert customer.status_code == 201, customer.text
    found = await http.get("/customers/lookup", params={"phone": "8135550101"}, headers=cashier)
    assert found.json()["id"] == customer.json()["id"]
    sale = await register.new_sale()
    await register.scan(sale["id"], CHIPS, 5)  # 5 x $4.79 = $23.95 + $1.68 tax = $25.63 → 25 points
    attached = await http.put(
        f"/sales/{sale['id']}/customer", json={"customer_id": customer.json()["id"]}, headers=cashier
    )
    assert attached.status_code == 200
    done = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 3000}])
    assert done.json()["loyalty_points_earned"] == 25
    receipt = (await http.get(f"/sales/{sale['id']}/receipt", headers=cashier)).json()
    assert receipt["loyalty"] == {"earned": 25, "redeemed": 0, "balance": 25}
    second = await register.new_sale()
    await register.scan(second["id"], COKE)  # $3.29 + $0.23 = $3.52
    await http.put(f"/sales/{second['id']}/customer", json={"customer_id": customer.json()["id"]}, headers=cashier)
    too_many = await register.complete(
        second["id"], [{"kind": "loyalty", "amount_cents": 100}, {"kind": "cash", "tendered_cents": 300}]
    )
    assert too_many.status_code == 422  # 100 points needed, 25 held
    assert too_many.json()["error"]["code"] == "not_enough_points"
    paid = await register.complete(
        second["id"], [{"kind": "loyalty", "amount_cents": 20}, {"kind": "cash", "tendered_cents": 400}]
    )
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert body["loyalty_points_redeemed"] == 20
    assert {p["tender"] for p in body["payments"]} == {"loyalty", "cash"}
    balance = (await http.get(f"/customers/{customer.json()['id']}", headers=cashier)).json()["loyalty_points"]
    assert balance == 25 - 20 + 3  # $3.32 paid in cash earns 3


async def test_return_without_receipt_needs_a_manager_by_default_and_refunds_cash(register: Register) -> None:
    before = await register.stock(COKE)
    body = {"lines": [{"code": register.codes[COKE], "quantity": 2}], "reason": "no receipt, unopened"}
    refused = await register.http.post("/returns/without-receipt", json=body, headers=register.cashier)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "return_invalid"
    approved = await register.http.post(
        "/returns/without-receipt",
        json={**body, "manager": {"username": "manager", "secret": PINS["manager"]}},
        headers=register.cashier,
    )
    assert approved.status_code == 201, approved.text
    refund = approved.json()
    assert refund["kind"] == "return"
    assert refund["total_cents"] == 2 * 329 + 46
    assert [(p["tender"], p["amount_cents"]) for p in refund["payments"]] == [("cash", 704)]
    assert await register.stock(COKE) == before + 2
    async with register.database.unit_of_work() as session:
        store = await session.scalar(select(Store).where(Store.id == 1))
        assert store is not None
        store.settings = {**store.settings, "returns_without_receipt": "refuse"}
    never = await register.http.post("/returns/without-receipt", json=body, headers=register.manager)
    assert never.status_code == 422


async def test_a_six_pack_takes_six_cans_and_a_case_twenty_four(register: Register) -> None:
    single_before = await register.stock("BER-BUD-1")
    sale = await register.new_sale()
    await register.scan(sale["id"], "BER-BUD-6")
    await register.scan(sale["id"], "BER-BUD-24")
    check = await register.http.post(
        "/compliance/id-checks", json=manual_check(sale["id"], "1980-05-05"), headers=register.cashier
    )
    assert check.status_code == 201
    done = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 10000}])
    assert done.status_code == 200, done.text
    assert await register.stock("BER-BUD-1") == single_before - 30
