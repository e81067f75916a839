"""Returns against a receipt (partial and repeated), refunds to the original tenders, and post-voids."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from posomni.audit.models import AuditEntry
from posomni.outbox.models import OutboxMessage
from tests.integration.sales.conftest import CHIPS, COKE, Register
from tests.support import PINS, sign_in


async def _completed_sale(register: Register, tenders: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    sale = await register.new_sale()
    await register.scan(sale["id"], CHIPS, 3)  # 3 x $4.79 = $14.37 + 7 % ($1.01) = $15.38
    response = await register.complete(sale["id"], tenders or [
        {"kind": "card", "amount_cents": 1000, "payment_method": "pm_sim_visa"},
        {"kind": "cash", "tendered_cents": 600},
    ])  # fmt: skip
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _return(
    register: Register, sale: dict[str, Any], quantity: int, restock: bool = True, key: str | None = None
):  # type: ignore[no-untyped-def]
    headers = dict(register.cashier)
    if key:
        headers["Idempotency-Key"] = key
    line = sale["lines"][0]
    return await register.http.post(
        "/returns",
        json={"receipt_number": sale["receipt_number"], "reason": "customer changed mind",
              "lines": [{"original_line_id": line["id"], "quantity": quantity, "restock": restock}]},
        headers=headers,
    )  # fmt: skip


async def test_partial_returns_add_up_to_the_original_and_refund_card_first(register: Register) -> None:
    sale = await _completed_sale(register)
    assert sale["total_cents"] == 1538
    stock_before = await register.stock(CHIPS)
    first = await _return(register, sale, 1)
    assert first.status_code == 201, first.text
    one = first.json()
    assert one["kind"] == "return"
    # One third of $15.38: $4.79 + $0.34 tax (1.01 / 3 rounded) = $5.13, all to the card.
    assert one["total_cents"] == 479 + 34
    assert [(p["tender"], p["amount_cents"], p["status"]) for p in one["payments"]] == [("card", 513, "refunded")]
    second = (await _return(register, sale, 2, key="ret-2")).json()
    # The rest: $10.25 — $4.87 left on the card, then $5.38 in cash.
    assert second["total_cents"] == 1538 - 513
    refunds = sorted((p["tender"], p["amount_cents"]) for p in second["payments"])
    assert refunds == [("card", 1000 - 513), ("cash", 1538 - 1000)]
    assert await register.stock(CHIPS) == stock_before + 3
    too_many = await _return(register, sale, 1)
    assert too_many.status_code == 422
    assert too_many.json()["error"]["code"] == "return_invalid"
    original = (await register.http.get(f"/sales/{sale['id']}", headers=register.cashier)).json()
    assert original["lines"][0]["returned_quantity"] == 3
    gateway = register.app.state.card_gateway
    assert gateway.calls["refund"] == 2
    # Idempotent: the same key returns the stored return, nothing refunded again.
    replay = await _return(register, sale, 2, key="ret-2")
    assert replay.json()["id"] == second["id"]
    assert gateway.calls["refund"] == 2


async def test_damaged_returns_are_not_restocked(register: Register) -> None:
    sale = await _completed_sale(register, [{"kind": "cash", "tendered_cents": 2000}])
    before = await register.stock(CHIPS)
    response = await _return(register, sale, 1, restock=False)
    assert response.status_code == 201
    assert await register.stock(CHIPS) == before


async def test_post_void_by_a_manager_pin_refunds_everything(register: Register) -> None:
    sale = await _completed_sale(register)
    before = await register.stock(CHIPS)
    refused = await register.http.post(
        f"/sales/{sale['id']}/void", json={"reason": "rang up twice"}, headers=register.cashier
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "manager_approval_failed"
    wrong = await register.http.post(
        f"/sales/{sale['id']}/void",
        json={"reason": "rang up twice", "manager": {"username": "manager", "secret": "0192"}},
        headers=register.cashier,
    )
    assert wrong.status_code == 403
    voided = await register.http.post(
        f"/sales/{sale['id']}/void",
        json={"reason": "rang up twice", "manager": {"username": "manager", "secret": PINS["manager"]}},
        headers=register.cashier,
    )
    assert voided.status_code == 200, voided.text
    body = voided.json()
    assert body["status"] == "voided"
    assert await register.stock(CHIPS) == before + 3
    refunds = sorted((p["tender"], p["amount_cents"]) for p in body["payments"] if p["kind"] == "refund")
    assert refunds == [("card", 1000), ("cash", 538)]
    async with register.database.sessionmaker() as session:
        actions = set(await session.scalars(select(AuditEntry.action)))
        topics = set(await session.scalars(select(OutboxMessage.topic)))
    assert {"sale.voided", "auth.manager_approval_failed"} <= actions
    assert "sale.voided" in topics
    again = await register.http.post(f"/sales/{sale['id']}/void", json={"reason": "again"}, headers=register.manager)
    assert again.json()["status"] == "voided"
    assert register.app.state.card_gateway.calls["refund"] == 1


async def test_a_post_void_happens_at_the_sales_register_while_its_shift_is_open(register: Register) -> None:
    """The money goes back from the drawer that took it, and a closed Z report never changes."""
    sale = await _completed_sale(register, [{"kind": "cash", "tendered_cents": 2000}])
    before = await register.stock(CHIPS)
    elsewhere = await sign_in(register.http, "manager", register_id=2)
    other_register = await register.http.post(
        f"/sales/{sale['id']}/void", json={"reason": "rang up twice"}, headers=elsewhere
    )
    assert other_register.status_code == 409
    assert other_register.json()["error"]["code"] == "void_not_allowed"
    assert other_register.json()["error"]["details"] == {"sale_register_id": 1, "register_id": 2}

    x = await register.http.get(f"/shifts/{register.shift_id}/x-report", headers=register.manager)
    expected = x.json()["expected_cash_cents"]
    closed = await register.http.post(
        f"/shifts/{register.shift_id}/close", json={"counted_cash_cents": expected}, headers=register.manager
    )
    assert closed.status_code == 200, closed.text
    after_close = await register.http.post(
        f"/sales/{sale['id']}/void", json={"reason": "rang up twice"}, headers=register.manager
    )
    assert after_close.status_code == 409
    assert after_close.json()["error"]["code"] == "void_not_allowed"
    assert after_close.json()["error"]["details"]["shift_status"] == "closed"
    # Nothing changed: the sale, its stock and the printed Z report.
    assert (await register.http.get(f"/sales/{sale['id']}", headers=register.manager)).json()["status"] == "completed"
    assert await register.stock(CHIPS) == before
    z = await register.http.get(f"/shifts/{register.shift_id}/z-report", headers=register.manager)
    assert z.json()["expected_cash_cents"] == expected
    assert z.json()["voids_count"] == 0


async def test_line_void_price_override_and_discounts(register: Register) -> None:
    sale = await register.new_sale()
    await register.scan(sale["id"], COKE)
    chips = await register.scan(sale["id"], CHIPS)
    line = next(line for line in chips["lines"] if line["unit_price_cents"] == 479)
    no_manager = await register.http.post(
        f"/sales/{sale['id']}/lines/{line['id']}/price",
        json={"price_cents": 100, "reason": "damaged bag"},
        headers=register.cashier,
    )
    assert no_manager.status_code == 403
    overridden = await register.http.post(
        f"/sales/{sale['id']}/lines/{line['id']}/price",
        json={
            "price_cents": 100,
            "reason": "damaged bag",
            "manager": {"username": "manager", "secret": PINS["manager"]},
        },
        headers=register.cashier,
    )
    assert overridden.status_code == 200, overridden.text
    assert overridden.json()["subtotal_cents"] == 329 + 100
    discounted = await register.http.post(
        f"/sales/{sale['id']}/discount", json={"percent": "10", "reason": "loyal customer"}, headers=register.manager
    )
    assert discounted.status_code == 200
    assert discounted.json()["discount_cents"] == 43  # 10 % of $4.29, rounded half up
    removed = await register.http.delete(f"/sales/{sale['id']}/lines/{line['id']}", headers=register.cashier)
    assert removed.status_code == 200
    assert [x["quantity"] for x in removed.json()["lines"]] == [1]
    async with register.database.sessionmaker() as session:
        actions = set(await session.scalars(select(AuditEntry.action)))
    assert {"sale.price_override", "sale.discount", "sale.line_voided"} <= actions


async def test_suspend_resume_and_reload(register: Register) -> None:
    sale = await register.new_sale()
    await register.scan(sale["id"], COKE)
    current = await register.http.get("/sales/current", headers=register.cashier)
    assert current.json()["id"] == sale["id"]  # a reloaded register finds its sale
    suspended = await register.http.post(f"/sales/{sale['id']}/suspend", headers=register.cashier)
    assert suspended.json()["status"] == "suspended"
    blocked = await register.http.post(f"/sales/{sale['id']}/items", json={"code": "1"}, headers=register.cashier)
    assert blocked.status_code in (409, 422)
    listed = await register.http.get("/sales/suspended", headers=register.cashier)
    assert [s["id"] for s in listed.json()] == [sale["id"]]
    resumed = await register.http.post(f"/sales/{sale['id']}/resume", headers=register.cashier)
    assert resumed.json()["status"] == "open"
    done = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 500}])
    assert done.status_code == 200
