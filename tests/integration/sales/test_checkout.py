"""A whole sale through the API: scan, price, tender, complete, receipt, stock, audit and back-office message."""

from __future__ import annotations

from sqlalchemy import func, select

from posomni.audit.models import AuditEntry
from posomni.inventory.models import StockMovement
from posomni.outbox.models import OutboxMessage
from posomni.stores.models import Register as RegisterRow
from tests.integration.sales.conftest import CHIPS, COKE, LIMES, Register


async def test_cash_sale_with_change(register: Register) -> None:
    before = await register.stock(COKE)
    sale = await register.new_sale()
    await register.scan(sale["id"], COKE, 2)
    await register.scan(sale["id"], LIMES, 3)
    priced = await register.scan(sale["id"], COKE)  # scanning again adds to the line
    lines = {line["description"]: line for line in priced["lines"]}
    assert len(lines) == 2
    coke = next(line for line in priced["lines"] if line["tax_class"] == "standard")
    assert coke["quantity"] == 3
    # 3 x $3.29 = $9.87 taxed at 7 % = 69.09 → $0.69; limes 3 x $0.50 exempt.
    assert priced["subtotal_cents"] == 987 + 150
    assert priced["tax_cents"] == 69
    assert priced["total_cents"] == 987 + 150 + 69
    done = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 2000}])
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "completed"
    assert body["change_cents"] == 2000 - 1206
    cash = next(p for p in body["payments"] if p["tender"] == "cash")
    assert cash["amount_cents"] == 1206
    assert cash["tendered_cents"] == 2000
    assert await register.stock(COKE) == before - 3
    receipt = await register.http.get(
        f"/sales/{sale['id']}/receipt", params={"format": "text"}, headers=register.cashier
    )
    assert "TOTAL" in receipt.text
    assert "$12.06" in receipt.text
    assert "CHANGE" in receipt.text
    assert "Sales tax 7%" in receipt.text
    html = await register.http.get(
        f"/sales/{sale['id']}/receipt", params={"format": "html", "copy": "true"}, headers=register.cashier
    )
    assert "<svg" in html.text
    assert "COPY" in html.text
    printer = await register.http.get(
        f"/sales/{sale['id']}/receipt", params={"format": "escpos"}, headers=register.cashier
    )
    assert printer.headers["content-type"] == "application/octet-stream"
    commands = printer.content
    assert commands.startswith(b"\x1b@")  # reset
    assert b"TOTAL" in commands
    assert b"$12.06" in commands
    number = body["receipt_number"].encode()
    # The receipt number as a Code 128 barcode (GS k 73, its length, code set B), and the paper cut at the end.
    assert b"\x1dk\x49" + bytes([len(number) + 2]) + b"{B" + number in commands
    assert commands.endswith(b"\x1dVB\x00")
    async with register.database.sessionmaker() as session:
        actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == str(sale["id"]))))
        messages = list(
            await session.scalars(select(OutboxMessage).where(OutboxMessage.aggregate_id == str(sale["id"])))
        )
        movements = await session.scalar(
            select(func.count()).select_from(StockMovement).where(StockMovement.reason == "sale")
        )
    assert "sale.completed" in actions
    assert [m.topic for m in messages] == ["sale.completed"]
    assert messages[0].payload["total_cents"] == 1206
    assert movements == 2


async def test_cash_short_of_the_total_is_refused_and_nothing_changes(register: Register) -> None:
    sale = await register.new_sale()
    await register.scan(sale["id"], CHIPS)
    before = await register.stock(CHIPS)
    response = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 100}])
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "tenders_do_not_cover_total"
    current = (await register.http.get(f"/sales/{sale['id']}", headers=register.cashier)).json()
    assert current["status"] == "open"
    assert await register.stock(CHIPS) == before


async def test_split_tender_with_a_declined_card_then_another_card(register: Register) -> None:
    sale = await register.new_sale()
    await register.scan(sale["id"], CHIPS, 2)  # 2 x $4.79 + 7 % = $10.25
    total = (await register.http.get(f"/sales/{sale['id']}", headers=register.cashier)).json()["total_cents"]
    assert total == 1025
    declined = await register.complete(
        sale["id"],
        [{"kind": "card", "amount_cents": 500, "payment_method": "pm_sim_visa"},
         {"kind": "card", "amount_cents": 525, "payment_method": "pm_sim_insufficient_funds"}],
    )  # fmt: skip
    assert declined.status_code == 402
    error = declined.json()["error"]
    assert error["code"] == "card_declined"
    assert "insufficient funds" in error["message"]
    after = (await register.http.get(f"/sales/{sale['id']}", headers=register.cashier)).json()
    assert after["status"] == "open"
    assert after["failure_code"] == "card_declined"
    # The first card's authorisation was voided by the compensation.
    assert {p["status"] for p in after["payments"]} == {"voided", "failed"}
    ok = await register.complete(
        sale["id"],
        [{"kind": "card", "amount_cents": 500, "payment_method": "pm_sim_mastercard"},
         {"kind": "cash", "tendered_cents": 600}],
    )  # fmt: skip
    assert ok.status_code == 200, ok.text
    paid = ok.json()
    card = next(p for p in paid["payments"] if p["tender"] == "card" and p["status"] == "captured")
    assert card["card_brand"] == "mastercard"
    assert card["card_last4"] == "4444"
    assert paid["change_cents"] == 600 - 525
    gateway = register.app.state.card_gateway
    assert gateway.calls["capture"] == 1


async def test_idempotent_completion_returns_the_stored_result(register: Register) -> None:
    sale = await register.new_sale()
    await register.scan(sale["id"], COKE)
    tenders = [{"kind": "card", "amount_cents": 352, "payment_method": "pm_sim_visa"}]
    first = await register.complete(sale["id"], tenders, key="complete-abc-1")
    again = await register.complete(sale["id"], tenders, key="complete-abc-1")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert register.app.state.card_gateway.calls["authorize"] == 1
    assert register.app.state.card_gateway.calls["capture"] == 1
    other = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 500}], key="complete-abc-1")
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    # Without a key, completing a completed sale returns the same sale and charges nothing.
    plain = await register.complete(sale["id"], tenders)
    assert plain.status_code == 200
    assert register.app.state.card_gateway.calls["capture"] == 1


async def test_card_over_the_total_is_refused_change_only_in_cash(register: Register) -> None:
    sale = await register.new_sale()
    await register.scan(sale["id"], LIMES)
    response = await register.complete(
        sale["id"], [{"kind": "card", "amount_cents": 100, "payment_method": "pm_sim_visa"}]
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "tenders_do_not_cover_total"


async def test_card_amount_limits(register: Register) -> None:
    sale = await register.new_sale()
    await register.scan(sale["id"], LIMES)
    response = await register.complete(
        sale["id"],
        [{"kind": "card", "amount_cents": 0, "payment_method": "pm_sim_visa"}, {"kind": "cash", "tendered_cents": 50}],
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "amount_out_of_range"


async def test_empty_sale_and_unknown_barcode(register: Register) -> None:
    sale = await register.new_sale()
    empty = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 100}])
    assert empty.json()["error"]["code"] == "empty_sale"
    unknown = await register.http.post(
        f"/sales/{sale['id']}/items", json={"code": "036000291452"}, headers=register.cashier
    )
    assert unknown.status_code == 404
    invalid = await register.http.post(
        f"/sales/{sale['id']}/items", json={"code": "0821840904660"}, headers=register.cashier
    )
    assert invalid.status_code == 422


async def test_card_present_payment_on_the_reader(register: Register) -> None:
    async with register.database.unit_of_work() as session:
        reader = await session.get(RegisterRow, 1)
        assert reader is not None
        reader.card_reader_id = "tmr_sim_front"
    sale = await register.new_sale()
    await register.scan(sale["id"], CHIPS, 2)  # $10.25
    started = await register.http.post(
        f"/sales/{sale['id']}/card-payments", json={"amount_cents": 1025}, headers=register.cashier
    )
    assert started.status_code == 201, started.text
    payment = started.json()
    assert payment["status"] == "pending"
    # The sale cannot be completed while the reader still waits for the card.
    early = await register.complete(sale["id"], [{"kind": "card", "payment_id": payment["id"]}])
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "card_payment_not_ready"
    tap = await register.http.post(
        "/payments/dev/readers/tmr_sim_front/present", json={"card": "visa"}, headers=register.cashier
    )
    assert tap.status_code == 200, tap.text
    polled = await register.http.get(f"/sales/{sale['id']}/card-payments/{payment['id']}", headers=register.cashier)
    assert polled.json()["status"] == "authorized"
    done = await register.complete(sale["id"], [{"kind": "card", "payment_id": payment["id"]}])
    assert done.status_code == 200, done.text
    card = next(p for p in done.json()["payments"] if p["tender"] == "card")
    assert card["status"] == "captured"
    assert card["card_last4"] == "4242"


async def test_reader_payment_can_be_cancelled(register: Register) -> None:
    async with register.database.unit_of_work() as session:
        reader = await session.get(RegisterRow, 1)
        assert reader is not None
        reader.card_reader_id = "tmr_sim_front"
    sale = await register.new_sale()
    await register.scan(sale["id"], LIMES, 2)
    started = (
        await register.http.post(
            f"/sales/{sale['id']}/card-payments", json={"amount_cents": 100}, headers=register.cashier
        )
    ).json()
    cancelled = await register.http.post(
        f"/sales/{sale['id']}/card-payments/{started['id']}/cancel", headers=register.cashier
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "voided"
    no_reader = await register.http.post(
        f"/sales/{sale['id']}/card-payments", json={"amount_cents": 0}, headers=register.cashier
    )
    assert no_reader.status_code == 422
