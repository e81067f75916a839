"""Products through the API: creation with category defaults, barcodes, packs, vintages, audited price changes,
search."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from posomni import bootstrap
from posomni.auth.principal import Actor
from posomni.cache.service import CacheService
from posomni.catalog import service
from posomni.catalog.barcodes import BarcodeFormat, make_code
from posomni.catalog.models import PriceChange
from posomni.catalog.schemas import ProductUpdate
from posomni.config import Settings
from posomni.database import Database
from posomni.kit.errors import PermissionDenied
from posomni.outbox.models import OutboxMessage
from tests.integration.catalog.helpers import audit_entries, product_id
from tests.support import seed_demo, sign_in

WINE = 2
BEER = 3


def new_wine(**extra: object) -> dict[str, object]:
    return {"sku": "WIN-NEW-CAB", "name": "New Cabernet", "brand": "Newvine", "size": "750 mL",
            "category_id": WINE, "price_cents": 1899, "cost_cents": 1100, **extra}  # fmt: skip


async def test_new_product_takes_its_category_defaults_and_a_normalised_barcode(http: httpx.AsyncClient) -> None:
    manager = await sign_in(http, "manager")
    code = "4006381333931"
    created = await http.post("/catalog/products", headers=manager, json=new_wine(barcodes=[code]))
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["age_restricted"], body["min_age"], body["tax_class"]) == (True, 21, "standard")
    assert body["barcodes"] == [{"gtin": "04006381333931", "display": "4006381333931"}]
    assert body["cost_cents"] == 1100
    scanned = await http.get(f"/catalog/lookup/{code}", headers=manager)
    assert scanned.json()["id"] == body["id"]


async def test_duplicates_are_refused_with_clear_codes(http: httpx.AsyncClient) -> None:
    manager = await sign_in(http, "manager")
    taken = await http.post("/catalog/products", headers=manager, json=new_wine(barcodes=["081234000011"]))
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "duplicate_barcode"
    assert taken.json()["error"]["details"]["gtin"] == "00081234000011"
    sku = await http.post("/catalog/products", headers=manager, json=new_wine(sku="VOD-TITO-750"))
    assert sku.json()["error"]["code"] == "duplicate_sku"
    coupon = await http.post(
        "/catalog/products", headers=manager, json=new_wine(barcodes=[make_code("51234567890", BarcodeFormat.UPC_A)])
    )
    assert (coupon.status_code, coupon.json()["error"]["code"]) == (422, "coupon_not_a_product")
    bad = await http.post("/catalog/products", headers=manager, json=new_wine(barcodes=["0821840904660"]))
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_check_digit")
    missing = await http.post("/catalog/products", headers=manager, json=new_wine(category_id=999))
    assert missing.json()["error"]["code"] == "unknown_category"


@pytest.mark.parametrize(
    ("base_sku", "units", "reason"),
    [
        ("BER-BUD-6", 4, "base_is_a_pack"),
        ("BER-BUD-1", 1, "units_per_pack"),
        (None, 6, "pack_needs_base"),
    ],
)
async def test_pack_rules(
    http: httpx.AsyncClient, database: Database, base_sku: str | None, units: int, reason: str
) -> None:
    manager = await sign_in(http, "manager")
    base = None if base_sku is None else await product_id(database, base_sku)
    response = await http.post(
        "/catalog/products",
        headers=manager,
        json={"sku": "BER-BUD-X", "name": "Bud Light", "category_id": BEER, "price_cents": 500,
              "base_product_id": base, "units_per_pack": units},
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_pack"
    assert response.json()["error"]["details"]["reason"] == reason


async def test_a_base_unit_with_packs_or_stock_cannot_become_a_pack(
    http: httpx.AsyncClient, database: Database
) -> None:
    manager = await sign_in(http, "manager")
    bud, corona = await product_id(database, "BER-BUD-1"), await product_id(database, "BER-COR-1")
    has_packs = await http.patch(
        f"/catalog/products/{bud}", headers=manager, json={"base_product_id": corona, "units_per_pack": 2}
    )
    assert has_packs.json()["error"]["details"]["reason"] == "has_packs"
    tito, grey = await product_id(database, "VOD-TITO-750"), await product_id(database, "VOD-GREY-750")
    stocked = await http.patch(
        f"/catalog/products/{tito}", headers=manager, json={"base_product_id": grey, "units_per_pack": 2}
    )
    assert stocked.json()["error"]["details"]["reason"] == "has_stock"


async def test_a_vintage_is_an_attribute_of_one_item(http: httpx.AsyncClient) -> None:
    manager = await sign_in(http, "manager")
    created = await http.post(
        "/catalog/products", headers=manager, json=new_wine(barcodes=["4006381333931"], attributes={"vintage": "2019"})
    )
    product = created.json()
    # The 2020 vintage arrives under the same UPC: the item changes, no duplicate is made.
    changed = await http.patch(
        f"/catalog/products/{product['id']}", headers=manager, json={"attributes": {"vintage": "2020"}}
    )
    assert changed.json()["attributes"] == {"vintage": "2020"}
    again = await http.post("/catalog/products", headers=manager, json=new_wine(sku="WIN-NEW-CAB-2020",
                                                                           barcodes=["4006381333931"]))  # fmt: skip
    assert again.json()["error"]["code"] == "duplicate_barcode"
    scanned = await http.get("/catalog/lookup/4006381333931", headers=manager)
    assert scanned.json()["attributes"] == {"vintage": "2020"}


async def test_a_price_change_is_audited_kept_in_history_and_sent_to_the_back_office(
    app_client: tuple[FastAPI, httpx.AsyncClient], database: Database
) -> None:
    app, http = app_client
    manager = await sign_in(http, "manager")
    tito = await product_id(database, "VOD-TITO-750")
    changed = await http.patch(
        f"/catalog/products/{tito}", headers=manager, json={"price_cents": 2299, "price_reason": "supplier increase"}
    )
    assert changed.status_code == 200, changed.text
    renamed = await http.patch(f"/catalog/products/{tito}", headers=manager, json={"name": "Tito's Vodka"})
    assert renamed.json()["name"] == "Tito's Vodka"
    [price] = await audit_entries(database, app.state.crypto, "catalog.price_changed")
    assert (price["before_cents"], price["after_cents"], price["reason"]) == (2199, 2299, "supplier increase")
    [update] = await audit_entries(database, app.state.crypto, "catalog.product_updated")
    assert update["changes"]["name"] == {"before": "Tito's Handmade Vodka", "after": "Tito's Vodka"}
    history = await http.get(f"/catalog/products/{tito}/price-history", headers=manager)
    assert [(h["old_price_cents"], h["new_price_cents"]) for h in history.json()] == [(2199, 2299)]
    async with database.sessionmaker() as session:
        [message] = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "price.changed")))
        changes = list(await session.scalars(select(PriceChange).where(PriceChange.product_id == tito)))
    assert message.payload["old_price_cents"] == 2199
    assert message.payload["new_price_cents"] == 2299
    assert message.idempotency_key == f"price.changed:{changes[0].id}"
    cashier = await sign_in(http, "cashier")
    assert (await http.get(f"/catalog/products/{tito}/price-history", headers=cashier)).status_code == 403


async def test_changing_a_price_needs_the_prices_permission(settings: Settings, database: Database) -> None:
    await seed_demo(database)
    tito = await product_id(database, "VOD-TITO-750")
    cache = CacheService(None, registry=None)
    async with database.unit_of_work() as session:
        with pytest.raises(PermissionDenied) as refused:
            await service.update_product(
                session, cache, bootstrap.encryption(settings), Actor.system("test"), tito,
                ProductUpdate(price_cents=1), may_change_price=False,
            )  # fmt: skip
    assert refused.value.details == {"required": "prices.edit"}


async def test_search_by_name_brand_or_size_any_case_anywhere_in_a_word(http: httpx.AsyncClient) -> None:
    cashier = await sign_in(http, "cashier")

    async def skus(q: str, **params: object) -> list[str]:
        response = await http.get("/catalog/products", headers=cashier, params={"q": q, **params})
        assert response.status_code == 200, response.text
        return [item["sku"] for item in response.json()["items"]]

    assert await skus("TITO") == ["VOD-TITO-1750", "VOD-TITO-750"]
    assert await skus("ito") == ["VOD-TITO-1750", "VOD-TITO-750"]
    assert await skus("vodka 750") == ["VOD-GREY-750", "VOD-SMIR-750", "VOD-TITO-750"]
    assert await skus("case  bud") == ["BER-BUD-24"]
    assert await skus("100%") == []
    assert await skus("x_y") == []
    page = await http.get("/catalog/products", headers=cashier, params={"q": "beer", "limit": 1})
    assert page.json()["items"] == []
    assert page.json()["next_offset"] is None
    first = (await http.get("/catalog/products", headers=cashier, params={"q": "12 oz", "limit": 5})).json()
    params = {"q": "12 oz", "limit": 5, "offset": first["next_offset"]}
    second = (await http.get("/catalog/products", headers=cashier, params=params)).json()
    assert len(first["items"]) == 5
    assert first["next_offset"] == 5
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}


async def test_inactive_products_leave_search_but_still_scan_as_inactive(
    http: httpx.AsyncClient, database: Database
) -> None:
    manager = await sign_in(http, "manager")
    tito = await product_id(database, "VOD-TITO-1750")
    await http.patch(f"/catalog/products/{tito}", headers=manager, json={"is_active": False})
    found = await http.get("/catalog/products", headers=manager, params={"q": "tito"})
    assert [i["sku"] for i in found.json()["items"]] == ["VOD-TITO-750"]
    everything = await http.get("/catalog/products", headers=manager, params={"q": "tito", "include_inactive": True})
    assert len(everything.json()["items"]) == 2
    scanned = await http.get("/catalog/lookup/081234000028", headers=manager)
    assert scanned.status_code == 200
    assert scanned.json()["is_active"] is False


async def test_categories_can_be_listed_created_and_changed(http: httpx.AsyncClient) -> None:
    manager = await sign_in(http, "manager")
    created = await http.post(
        "/catalog/categories", headers=manager, json={"code": "cider", "name": "Cider", "age_restricted": True}
    )
    assert created.status_code == 201
    assert created.json()["min_age"] == 21
    duplicate = await http.post("/catalog/categories", headers=manager, json={"code": "cider", "name": "Cider"})
    assert duplicate.json()["error"]["code"] == "duplicate_category"
    changed = await http.patch(f"/catalog/categories/{created.json()['id']}", headers=manager, json={"name": "Ciders"})
    assert changed.json()["name"] == "Ciders"
    listed = await http.get("/catalog/categories", headers=await sign_in(http, "cashier"))
    assert "cider" in {c["code"] for c in listed.json()}
