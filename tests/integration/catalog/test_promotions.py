"""Mix & match promotions stored as data, and `pricing_context` turning them into the pricing engine's inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from posomni.catalog.service import pricing_context
from posomni.database import Database
from posomni.sales.pricing import (
    CaseDeal,
    PercentOffQuantity,
    QuantityForPrice,
    SaleInput,
    SaleLineInput,
    SetMode,
    price_sale,
)
from tests.integration.catalog.helpers import demo_store_id, product_id
from tests.support import sign_in

WINES = ("WIN-KEND-CH", "WIN-JOSH-CS", "WIN-APOT-RB")


async def test_promotions_reach_the_pricing_engine(http: httpx.AsyncClient, database: Database) -> None:
    manager = await sign_in(http, "manager")
    store = await demo_store_id(database)
    wines = [await product_id(database, sku) for sku in WINES]
    bud, bud6 = await product_id(database, "BER-BUD-1"), await product_id(database, "BER-BUD-6")
    group = await http.post(
        "/catalog/mix-match-groups", headers=manager, json={"code": "wine-750", "name": "Wine 750 mL",
                                                             "product_ids": wines[:2]},
    )  # fmt: skip
    assert group.status_code == 201, group.text
    members = await http.post(
        f"/catalog/mix-match-groups/{group.json()['id']}/members", headers=manager, json={"add": [wines[2]]}
    )
    assert members.json()["product_ids"] == sorted(wines)
    created = [
        await http.post("/catalog/promotions", headers=manager, json=body)
        for body in (
            {"code": "WINE6", "description": "Any 6 wines 10% off", "kind": "percent_off_quantity",
             "group_id": group.json()["id"], "quantity": 6, "percent_off": "10"},
            {"code": "WINE2", "description": "2 wines for $25", "kind": "quantity_for_price",
             "group_id": group.json()["id"], "quantity": 2, "price_cents": 2500, "store_id": store},
            {"code": "BUDCASE", "description": "Bud Light singles by the case", "kind": "case_price",
             "product_id": bud, "quantity": 24, "price_cents": 2499},
            {"code": "OLD", "description": "Expired", "kind": "quantity_for_price", "group_id": group.json()["id"],
             "quantity": 3, "price_cents": 100, "ends_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
            {"code": "OFF", "description": "Switched off", "kind": "quantity_for_price",
             "group_id": group.json()["id"], "quantity": 3, "price_cents": 100, "is_active": False},
            {"code": "ELSEWHERE", "description": "Another store", "kind": "quantity_for_price",
             "group_id": group.json()["id"], "quantity": 3, "price_cents": 100, "store_id": store + 1000},
        )
    ]  # fmt: skip
    assert [r.status_code for r in created] == [201] * 5 + [422], [r.text for r in created]
    async with database.sessionmaker() as session:
        context = await pricing_context(session, store, [*wines, bud, bud6])
    promotions, groups, deals = context
    assert sorted(p.promotion_id for p in promotions) == ["WINE2", "WINE6"]
    assert PercentOffQuantity("WINE6", "Any 6 wines 10% off", "wine-750", 6, Decimal("0.1"),
                              SetMode.EACH_COMPLETE_SET) in promotions  # fmt: skip
    assert QuantityForPrice("WINE2", "2 wines for $25", "wine-750", 2, 2500) in promotions
    assert groups == {wine: frozenset({"wine-750"}) for wine in wines}
    # The case deal rides on the single only: a 6-pack is already priced as a pack.
    assert deals == {bud: CaseDeal(bud, 24, 2499)}
    lines = (
        SaleLineInput(1, bud, 24, 179, "standard", case_deal=deals[bud]),
        SaleLineInput(2, wines[0], 2, 1499, "standard", mix_match_groups=groups[wines[0]]),
    )
    priced = price_sale(SaleInput(lines, {"standard": Decimal("0.07")}, promotions=promotions))
    by_line = {line.line_id: line for line in priced.lines}
    assert by_line[1].promotion_discount_cents == 24 * 179 - 2499
    assert by_line[2].promotion_discount_cents == 2 * 1499 - 2500


async def test_invalid_promotions_are_refused(http: httpx.AsyncClient, database: Database) -> None:
    manager = await sign_in(http, "manager")
    bud6 = await product_id(database, "BER-BUD-6")
    on_pack = await http.post(
        "/catalog/promotions", headers=manager,
        json={"code": "X", "description": "x", "kind": "case_price", "product_id": bud6, "quantity": 4,
              "price_cents": 100},
    )  # fmt: skip
    assert (on_pack.status_code, on_pack.json()["error"]["code"]) == (422, "invalid_promotion")
    no_group = await http.post(
        "/catalog/promotions", headers=manager,
        json={"code": "Y", "description": "y", "kind": "percent_off_quantity", "quantity": 6, "percent_off": "10"},
    )  # fmt: skip
    assert no_group.json()["error"]["code"] == "invalid_promotion"
    naive = await http.post(
        "/catalog/promotions", headers=manager,
        json={"code": "Z", "description": "z", "kind": "percent_off_quantity", "quantity": 6, "percent_off": "10",
              "starts_at": "2026-01-01T00:00:00"},
    )  # fmt: skip
    assert naive.status_code == 422
    cashier = await sign_in(http, "cashier")
    assert (await http.get("/catalog/promotions", headers=cashier)).status_code == 200


async def test_a_promotion_can_be_changed_and_switched_off(http: httpx.AsyncClient, database: Database) -> None:
    manager = await sign_in(http, "manager")
    store = await demo_store_id(database)
    bud = await product_id(database, "BER-BUD-1")
    created = await http.post(
        "/catalog/promotions", headers=manager,
        json={"code": "BUDCASE", "description": "Case", "kind": "case_price", "product_id": bud, "quantity": 24,
              "price_cents": 2499},
    )  # fmt: skip
    promotion = created.json()["id"]
    changed = await http.patch(f"/catalog/promotions/{promotion}", headers=manager, json={"price_cents": 2299})
    assert changed.json()["price_cents"] == 2299
    async with database.sessionmaker() as session:
        assert (await pricing_context(session, store, [bud])).case_deals[bud].case_price_cents == 2299
    await http.patch(f"/catalog/promotions/{promotion}", headers=manager, json={"is_active": False})
    async with database.sessionmaker() as session:
        assert (await pricing_context(session, store, [bud])).case_deals == {}
    listed = await http.get("/catalog/promotions", headers=manager, params={"active_in_store": store})
    assert listed.json() == []
