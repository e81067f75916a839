"""Receiving, cycle counts, adjustments, transfers and the low-stock report, through the API; the ledger equals
on_hand after every one."""

from __future__ import annotations

from decimal import Decimal

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from posomni.catalog.models import Product
from posomni.database import Database
from posomni.inventory import service as inventory
from posomni.outbox.models import OutboxMessage
from posomni.stores.models import Store
from tests.integration.catalog.helpers import assert_ledger_holds, audit_entries, demo_store_id, product_id, stock
from tests.support import sign_in


async def costs(database: Database, *skus: str) -> list[int]:
    async with database.sessionmaker() as session:
        found = dict((await session.execute(select(Product.sku, Product.cost_cents))).all())
    return [found[sku] for sku in skus]


async def test_receiving_cases_adds_base_units_and_updates_costs(
    app_client: tuple[FastAPI, httpx.AsyncClient], database: Database
) -> None:
    app, http = app_client
    manager = await sign_in(http, "manager")
    store = await demo_store_id(database)
    bud, case, tito = [await product_id(database, s) for s in ("BER-BUD-1", "BER-BUD-24", "VOD-TITO-750")]
    body = {
        "supplier": "Gulf  Distributing",
        "invoice_number": "INV-1001",
        "lines": [
            # Two cases of 24 at $18.00 a case: 48 cans at $0.75.
            {"product_id": case, "quantity": 2, "cost_cents": 1800},
            # Scanned off the box.
            {"barcode": "081234000011", "quantity": 6, "cost_cents": 1450},
        ],
    }
    received = await http.post("/inventory/receipts", headers=manager, json=body)
    assert received.status_code == 201, received.text
    invoice = received.json()
    assert invoice["supplier"] == "Gulf Distributing"
    assert invoice["total_cost_cents"] == 2 * 1800 + 6 * 1450
    assert [(line["base_units"], line["unit_cost_cents"]) for line in invoice["lines"]] == [(48, 75), (6, 1450)]
    assert await stock(database, store, bud) == (288, 0)
    assert await stock(database, store, tito) == (30, 0)
    assert await costs(database, "BER-BUD-1", "BER-BUD-6", "BER-BUD-12", "BER-BUD-24", "VOD-TITO-750") == [
        75, 450, 900, 1800, 1450,
    ]  # fmt: skip
    changes = [c for e in await audit_entries(database, app.state.crypto, "catalog.cost_changed") for c in e["changes"]]
    assert {c["sku"]: (c["before_cents"], c["after_cents"]) for c in changes}["BER-BUD-1"] == (70, 75)
    [receipt] = await audit_entries(database, app.state.crypto, "inventory.received")
    assert receipt["invoice_number"] == "INV-1001"
    again = await http.post("/inventory/receipts", headers=manager, json=body)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "duplicate_invoice")
    listed = await http.get("/inventory/receipts", headers=manager)
    assert [i["invoice_number"] for i in listed.json()] == ["INV-1001"]
    assert (await http.get(f"/inventory/receipts/{invoice['id']}", headers=manager)).json() == invoice
    async with database.sessionmaker() as session:
        topics = list(await session.scalars(select(OutboxMessage.topic)))
    assert "stock.movement" in topics
    # Purchase records are kept: nothing in the API deletes one.
    assert (await http.delete(f"/inventory/receipts/{invoice['id']}", headers=manager)).status_code == 405
    await assert_ledger_holds(database, store)


async def test_a_cycle_count_posts_the_variance_against_the_shelf_at_counting_time(
    app_client: tuple[FastAPI, httpx.AsyncClient], database: Database
) -> None:
    app, http = app_client
    manager = await sign_in(http, "manager")
    store = await demo_store_id(database)
    tito, grey, jack = [await product_id(database, s) for s in ("VOD-TITO-750", "VOD-GREY-750", "WHI-JACK-750")]
    started = await http.post("/inventory/counts", headers=manager, json={"product_ids": [tito, grey, jack]})
    assert started.status_code == 201, started.text
    count = started.json()
    assert [(line["expected"], line["counted"]) for line in count["lines"]] == [(24, None)] * 3
    # Two Tito's are sold while the count is open, before the shelf is counted.
    async with database.unit_of_work() as session:
        await inventory.reserve(session, store, [(tito, 2)], reference="sale:during-count")
        await inventory.commit_sale(session, store, [(tito, 2)], reference="sale:during-count", actor_id=None)
    entered = await http.put(
        f"/inventory/counts/{count['id']}/entries",
        headers=manager,
        json={"entries": [{"product_id": tito, "counted": 21}, {"product_id": grey, "counted": 25}]},
    )
    assert entered.status_code == 200, entered.text
    lines = {line["product_id"]: line for line in entered.json()["lines"]}
    assert (lines[tito]["expected_at_count"], lines[tito]["variance"]) == (22, -1)
    post = await http.post(f"/inventory/counts/{count['id']}/post", headers=manager)
    assert post.status_code == 200, post.text
    report = post.json()
    # Tito's: one short at $14.10; Grey Goose: one over at $22.40; Jack Daniel's was not counted.
    assert (report["units_short"], report["units_over"], report["net_units"]) == (1, 1, 0)
    assert (report["cost_short_cents"], report["cost_over_cents"], report["net_cost_cents"]) == (1410, 2240, 830)
    assert (report["counted_lines"], report["uncounted_lines"], report["status"]) == (2, 1, "posted")
    assert await stock(database, store, tito) == (21, 0)
    assert await stock(database, store, grey) == (25, 0)
    assert await stock(database, store, jack) == (24, 0)
    twice = await http.post(f"/inventory/counts/{count['id']}/post", headers=manager)
    assert twice.json()["error"]["code"] == "count_not_open"
    variances = await http.get(f"/inventory/counts/{count['id']}", headers=manager, params={"only_variances": True})
    assert {line["product_id"] for line in variances.json()["lines"]} == {tito, grey}
    [posted] = await audit_entries(database, app.state.crypto, "inventory.count_posted")
    assert posted["units_short"] == 1
    await assert_ledger_holds(database, store)


async def test_adjustments_are_audited_and_never_take_more_than_is_there(
    app_client: tuple[FastAPI, httpx.AsyncClient], database: Database
) -> None:
    app, http = app_client
    manager = await sign_in(http, "manager")
    store = await demo_store_id(database)
    bud, six = await product_id(database, "BER-BUD-1"), await product_id(database, "BER-BUD-6")
    # Two 6-packs dropped: 12 cans.
    damaged = await http.post(
        "/inventory/adjustments", headers=manager,
        json={"product_id": six, "quantity": -2, "reason": "damage", "note": "dropped by the cooler"},
    )  # fmt: skip
    assert damaged.status_code == 201, damaged.text
    assert (damaged.json()["on_hand"], damaged.json()["available_packs"]) == (228, 38)
    found = await http.post(
        "/inventory/adjustments", headers=manager,
        json={"product_id": bud, "quantity": 3, "reason": "adjust", "note": "found in the back"},
    )  # fmt: skip
    assert found.json()["on_hand"] == 231
    too_many = await http.post(
        "/inventory/adjustments", headers=manager,
        json={"product_id": bud, "quantity": -232, "reason": "adjust", "note": "?"},
    )  # fmt: skip
    assert (too_many.status_code, too_many.json()["error"]["code"]) == (409, "insufficient_stock")
    positive_damage = await http.post(
        "/inventory/adjustments", headers=manager,
        json={"product_id": bud, "quantity": 2, "reason": "damage", "note": "?"},
    )  # fmt: skip
    assert positive_damage.json()["error"]["code"] == "invalid_adjustment"
    entries = await audit_entries(database, app.state.crypto, "inventory.adjusted")
    assert [(e["quantity"], e["reason"], e["note"]) for e in entries] == [
        (-12, "damage", "dropped by the cooler"), (3, "adjust", "found in the back"),
    ]  # fmt: skip
    cashier = await sign_in(http, "cashier")
    refused = await http.post(
        "/inventory/adjustments", headers=cashier,
        json={"product_id": bud, "quantity": 1, "reason": "adjust", "note": "x"},
    )  # fmt: skip
    assert refused.status_code == 403
    assert (await http.get(f"/inventory/levels/{six}", headers=cashier)).json()["available_packs"] == 38
    history = await http.get(f"/inventory/levels/{bud}/movements", headers=manager)
    assert [m["reason"] for m in history.json()][:2] == ["adjust", "damage"]
    await assert_ledger_holds(database, store)


async def test_a_transfer_moves_stock_between_two_stores(
    app_client: tuple[FastAPI, httpx.AsyncClient], database: Database
) -> None:
    _, http = app_client
    store = await demo_store_id(database)
    async with database.unit_of_work() as session:
        other = Store(code="FL-002", name="Second", timezone="America/New_York", state="FL",
                      state_tax_rate=Decimal("0.06"), settings={})  # fmt: skip
        session.add(other)
        await session.flush()
        other_id = other.id
    manager = await sign_in(http, "manager")
    tito, case = await product_id(database, "VOD-TITO-750"), await product_id(database, "BER-BUD-24")
    bud = await product_id(database, "BER-BUD-1")
    moved = await http.post(
        "/inventory/transfers", headers=manager,
        json={"to_store_id": other_id, "lines": [{"product_id": tito, "quantity": 4},
                                                  {"product_id": case, "quantity": 1}], "note": "weekend event"},
    )  # fmt: skip
    assert moved.status_code == 201, moved.text
    assert await stock(database, store, tito) == (20, 0)
    assert await stock(database, other_id, tito) == (4, 0)
    assert await stock(database, other_id, bud) == (24, 0)
    too_much = await http.post(
        "/inventory/transfers", headers=manager,
        json={"to_store_id": other_id, "lines": [{"product_id": tito, "quantity": 21}]},
    )  # fmt: skip
    assert too_much.json()["error"]["code"] == "insufficient_stock"
    other_store = await http.get(f"/inventory/levels/{tito}", headers=manager, params={"store_id": other_id})
    assert other_store.json()["error"]["code"] == "other_store"
    await assert_ledger_holds(database, store, other_id)


async def test_low_stock_report_suggests_what_to_reorder(
    app_client: tuple[FastAPI, httpx.AsyncClient], database: Database
) -> None:
    _, http = app_client
    manager = await sign_in(http, "manager")
    store = await demo_store_id(database)
    bud, tito = await product_id(database, "BER-BUD-1"), await product_id(database, "VOD-TITO-750")
    assert (await http.get("/inventory/low-stock", headers=manager)).json() == []
    await http.post(
        "/inventory/adjustments", headers=manager,
        json={"product_id": bud, "quantity": -200, "reason": "adjust", "note": "recount"},
    )  # fmt: skip
    await http.post(
        "/inventory/adjustments", headers=manager,
        json={"product_id": tito, "quantity": -20, "reason": "adjust", "note": "recount"},
    )  # fmt: skip
    changed = await http.put(
        f"/inventory/levels/{tito}/reorder", headers=manager, json={"reorder_point": 6, "reorder_quantity": 12}
    )
    assert changed.json()["reorder_quantity"] == 12
    report = (await http.get("/inventory/low-stock", headers=manager)).json()
    assert [(i["product_id"], i["available"], i["suggested_units"], i["case_size"], i["suggested_cases"])
            for i in report] == [(bud, 40, 96, 24, 4), (tito, 4, 12, None, None)]  # fmt: skip
    auditor = await sign_in(http, "auditor")
    assert (await http.get("/inventory/low-stock", headers=auditor)).json()["error"]["code"] == "store_required"
    by_store = await http.get("/inventory/low-stock", headers=auditor, params={"store_id": store})
    assert len(by_store.json()) == 2
    check = await http.get("/inventory/ledger-check", headers=manager)
    assert check.json() == {"store_id": store, "ok": True, "mismatches": []}
