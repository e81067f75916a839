"""Shifts: paid in/out, no-sale, X report mid-shift, close with counted cash and a Z report that adds up."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from posomni.audit.models import AuditEntry
from tests.integration.sales.conftest import CHIPS, COKE, LIMES, Register
from tests.support import PINS


async def test_a_day_on_one_register_and_its_z_report(register: Register) -> None:
    http, cashier, shift = register.http, register.cashier, register.shift_id
    totals = []
    for items, tenders in [
        ([(COKE, 2)], [{"kind": "cash", "tendered_cents": 1000}]),
        ([(CHIPS, 1), (LIMES, 4)], [{"kind": "card", "amount_cents": 713, "payment_method": "pm_sim_visa"}]),
        ([(LIMES, 2)], [{"kind": "cash", "tendered_cents": 100}]),
    ]:
        sale = await register.new_sale()
        for sku, quantity in items:
            await register.scan(sale["id"], sku, quantity)
        done = await register.complete(sale["id"], tenders)
        assert done.status_code == 200, done.text
        totals.append(done.json()["total_cents"])
    paid_in = await http.post(
        f"/shifts/{shift}/cash-movements",
        json={"kind": "paid_in", "amount_cents": 500, "reason": "change from bank"},
        headers=cashier,
    )
    assert paid_in.status_code == 201
    paid_out = await http.post(
        f"/shifts/{shift}/cash-movements",
        json={"kind": "paid_out", "amount_cents": 300, "reason": "ice delivery"},
        headers=cashier,
    )
    assert paid_out.status_code == 403  # needs a manager
    paid_out = await http.post(
        f"/shifts/{shift}/cash-movements",
        json={
            "kind": "paid_out",
            "amount_cents": 300,
            "reason": "ice delivery",
            "manager": {"username": "manager", "secret": PINS["manager"]},
        },
        headers=cashier,
    )
    assert paid_out.status_code == 201
    assert (
        await http.post(f"/shifts/{shift}/no-sale", json={"reason": "customer needed change"}, headers=cashier)
    ).status_code == 201
    x = (await http.get(f"/shifts/{shift}/x-report", headers=cashier)).json()
    assert x["kind"] == "X"
    assert x["sales_count"] == 3
    assert x["net_sales_cents"] == sum(totals)
    assert x["tenders"] == {"cash": totals[0] + totals[2], "card": totals[1]}
    expected_cash = 20000 + totals[0] + totals[2] + 500 - 300
    assert x["expected_cash_cents"] == expected_cash
    assert x["no_sale_count"] == 1
    refused = await http.post(f"/shifts/{shift}/close", json={"counted_cash_cents": 1}, headers=cashier)
    assert refused.status_code == 403
    z = await http.post(
        f"/shifts/{shift}/close", json={"counted_cash_cents": expected_cash - 25}, headers=register.manager
    )
    assert z.status_code == 200, z.text
    report = z.json()
    assert report["over_short_cents"] == -25
    assert report["net_sales_cents"] == sum(totals)
    assert sum(report["tax_by_class"].values()) == report["tax_cents"]
    assert report["audit_chain_head"]
    csv_text = (await http.get(f"/shifts/{shift}/z-report", params={"format": "csv"}, headers=register.manager)).text
    rows = dict(csv.reader(io.StringIO(csv_text)))
    assert rows["net_sales_cents"] == str(sum(totals))
    html = (await http.get(f"/shifts/{shift}/z-report", params={"format": "html"}, headers=register.manager)).text
    assert "Over / short" in html
    # After closing, the register cannot sell until a new shift opens.
    assert (await http.post("/sales", json={}, headers=cashier)).json()["error"]["code"] == "no_open_shift"
    async with register.database.sessionmaker() as session:
        actions = set(await session.scalars(select(AuditEntry.action)))
    assert {"shift.opened", "shift.closed", "drawer.no_sale", "drawer.paid_in", "drawer.paid_out"} <= actions


async def test_a_second_shift_on_the_same_register_is_refused(register: Register) -> None:
    again = await register.http.post(
        "/shifts", json={"register_id": 1, "opening_float_cents": 100}, headers=register.cashier
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "shift_already_open"


async def test_close_refused_while_a_sale_is_open(register: Register) -> None:
    sale = await register.new_sale()
    await register.scan(sale["id"], COKE)
    response = await register.http.post(
        f"/shifts/{register.shift_id}/close", json={"counted_cash_cents": 0}, headers=register.manager
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "shift_has_open_sales"
