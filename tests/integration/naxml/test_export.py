"""`posomni naxml export`: ISM and MCM of one business day of one store, byte for byte the golden files on
both databases; returns count as refunds, voided and unfinished sales and other days and stores do not."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from defusedxml.ElementTree import fromstring
from sqlalchemy import select

from posomni import __version__
from posomni.backoffice.naxml import export
from posomni.backoffice.naxml.export import MovementType
from posomni.backoffice.naxml.vocabulary import NAMESPACE
from posomni.catalog.models import Barcode, Category, Product
from posomni.database import Database
from posomni.sales.models import Sale, SaleLine
from posomni.stores.models import Register as StoreRegister
from posomni.stores.models import Store
from posomni.users.models import User
from tests.integration.naxml.conftest import Cli, golden
from tests.integration.sales.conftest import CHIPS, COKE, Register
from tests.support import PINS, seed_demo

DAY = date(2026, 3, 14)
NS = {"n": NAMESPACE}

# (receipt, kind, status, business date, original receipt, [(sku, quantity, unit, override, discount, promotion)])
SALES: list[tuple[str, str, str, date, str | None, list[tuple[str, int, int, int | None, int, int]]]] = [
    ("T-1", "sale", "completed", DAY, None, [
        ("VOD-TITO-750", 2, 2199, None, 0, 0), ("MIX-COKE-2L", 1, 329, None, 0, 0),
        ("BER-BUD-6", 2, 999, None, 200, 200), ("GIFT-BAG", 1, 150, None, 0, 0),
    ]),
    ("T-2", "sale", "completed", DAY, None, [
        ("VOD-TITO-750", 1, 2199, 1999, 0, 0), ("PRO-LIME-1", 3, 50, None, 15, 0),
        ("BER-BUD-6", 1, 999, None, 150, 100),
    ]),
    ("T-3", "sale", "voided", DAY, None, [("VOD-GREY-750", 1, 3299, None, 0, 0)]),
    ("T-4", "sale", "completed", date(2026, 3, 13), None, [("VOD-TITO-750", 5, 2199, None, 0, 0)]),
    ("T-5", "return", "completed", DAY, "T-4", [("VOD-TITO-750", 1, 2199, None, 0, 0)]),
    ("T-6", "sale", "open", DAY, None, [("SNK-LAYS-8", 1, 479, None, 0, 0)]),
    ("T-7", "sale", "completed", DAY, None, [("MIX-COKE-2L", 4, 329, None, 0, 0)]),
]  # fmt: skip


async def insert_fixed_sales(database: Database) -> None:
    """The demo store plus a second store, and fixed sales written directly: the same rows on every run."""
    await seed_demo(database)
    async with database.unit_of_work() as session:
        store = await session.scalar(select(Store).where(Store.code == "FL-001"))
        cashier = await session.scalar(select(User.id).where(User.username == "cashier"))
        supplies = await session.scalar(select(Category).where(Category.code == "supplies"))
        assert store is not None and cashier is not None and supplies is not None  # noqa: PT018
        other = Store(code="FL-002", name="Second", timezone="America/New_York", state="FL",
                      state_tax_rate=Decimal("0.06"))  # fmt: skip
        # An item without a barcode: reported under its SKU as a PLU.
        session.add(Product(sku="GIFT-BAG", name="Gift Bag", category_id=supplies.id, price_cents=150))
        session.add(other)
        await session.flush()
        session.add(StoreRegister(store_id=other.id, code="R1", name="Register 1"))
        await session.flush()
        other_register = await session.scalar(select(StoreRegister.id).where(StoreRegister.store_id == other.id))
        products = {p.sku: p for p in await session.scalars(select(Product))}
        sales: dict[str, Sale] = {}
        plan = [*SALES, ("X-1", "sale", "completed", DAY, None, [("VOD-TITO-750", 9, 2199, None, 0, 0)])]
        for receipt, kind, status, day, original, lines in plan:
            in_other = receipt.startswith("X")
            sale = Sale(
                store_id=other.id if in_other else store.id, register_id=other_register if in_other else 1,
                cashier_id=cashier, kind=kind, status=status, business_date=day, receipt_number=receipt,
                original_sale_id=sales[original].id if original else None,
            )  # fmt: skip
            session.add(sale)
            await session.flush()
            sales[receipt] = sale
            for number, (sku, quantity, unit, override, discount, promotion) in enumerate(lines, start=1):
                item = products[sku]
                # Sold under its barcode when scanned; the Coke of T-1 was chosen from a search (no GTIN).
                gtin = None if sku == "GIFT-BAG" or (receipt == "T-1" and sku == COKE) else await _gtin(session, item)
                session.add(SaleLine(
                    sale_id=sale.id, line_no=number, product_id=item.id,
                    stock_product_id=item.base_product_id or item.id, gtin=gtin, description=item.name,
                    quantity=quantity, units_per_pack=item.units_per_pack, unit_price_cents=unit,
                    override_price_cents=override, discount_cents=discount, promotion_discount_cents=promotion,
                    tax_class=item.tax_class, tax_cents=0, line_total_cents=(override or unit) * quantity - discount,
                ))  # fmt: skip


async def _gtin(session: Any, item: Product) -> str:
    return str(await session.scalar(select(Barcode.gtin).where(Barcode.product_id == item.id).limit(1)))


async def render(database: Database, kind: MovementType, day: date = DAY, store: str = "FL-001") -> bytes:
    async with database.sessionmaker() as session:
        found = await export.resolve_store(session, store)
        movement = await export.load(session, found, day)
    return export.render_xml(movement, kind, vendor_version="test")


async def test_ism_and_mcm_match_the_golden_files_byte_for_byte(database: Database, run: Cli, tmp_path: Path) -> None:
    await insert_fixed_sales(database)
    for kind, name in ((MovementType.ISM, "ism_2026-03-14.xml"), (MovementType.MCM, "mcm_2026-03-14.xml")):
        actual = await render(database, kind)
        assert actual == golden(name, actual), name
        # The command writes the same bytes, with the running version in the header.
        out = tmp_path / name
        result = await run("naxml", "export", "--type", kind.value.lower(), "--date", "2026-03-14",
                           "--store", "FL-001", "--output", str(out))  # fmt: skip
        assert result.exit_code == 0, result.output
        version = f"<VendorModelVersion>{__version__}</VendorModelVersion>".encode()
        assert out.read_bytes() == actual.replace(b"<VendorModelVersion>test</VendorModelVersion>", version)


async def test_the_totals_follow_the_documented_rules(database: Database, run: Cli) -> None:
    await insert_fixed_sales(database)
    root = fromstring(await render(database, MovementType.ISM))
    assert root.tag == f"{{{NAMESPACE}}}NAXML-MovementReport"
    assert root.get("version") == "3.4"
    details = {d.findtext("n:ItemID", namespaces=NS): d for d in root.iterfind(".//n:ISMDetail", NS)}
    # Voided (Grey Goose), open (chips), other days and other stores are left out.
    assert sorted(details) == ["BER-BUD-6", "GIFT-BAG", "MIX-COKE-2L", "PRO-LIME-1", "VOD-TITO-750"]
    tito = {
        s.findtext("n:ActualSalesPrice", namespaces=NS): {t.tag.split("}")[1]: t.text for t in s[1]}
        for s in details["VOD-TITO-750"].iterfind("n:ISMSellPriceSummary", NS)
    }
    # One summary per price actually charged: the override of T-2 at 19.99; the return of T-4's bottle at 21.99.
    assert tito["19.99"]["SalesQuantity"] == "1"
    assert (tito["21.99"]["SalesQuantity"], tito["21.99"]["SalesAmount"], tito["21.99"]["TransactionCount"]) == (
        "2", "43.98", "1",
    )  # fmt: skip
    assert (tito["21.99"]["RefundAmount"], tito["21.99"]["RefundCount"]) == ("21.99", "1")
    bud = details["BER-BUD-6"].find(".//n:ISMSalesTotals", NS)
    assert bud is not None
    # 3 packs at 9.99 less 3.50 of discounts, of which 3.00 promotion (2 lines) and 0.50 manual (1 line).
    assert [bud.findtext(f"n:{tag}", namespaces=NS) for tag in (
        "SalesQuantity", "SalesAmount", "DiscountAmount", "DiscountCount", "PromotionAmount", "PromotionCount",
        "TransactionCount",
    )] == ["3", "26.47", "0.50", "1", "3.00", "2", "2"]  # fmt: skip
    assert details["BER-BUD-6"].findtext("n:SellingUnits", namespaces=NS) == "6"
    gift = details["GIFT-BAG"].find("n:ItemCode", NS)
    assert gift is not None
    assert (gift.find("n:POSCodeFormat", NS).get("format"), gift.findtext("n:POSCode", namespaces=NS)) == (  # type: ignore[union-attr]
        "plu", "GIFT-BAG",
    )  # fmt: skip
    # JSON: the same content in cents.
    result = await run("naxml", "export", "--type", "MCM", "--date", "2026-03-14", "--store", "FL-001", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    spirits = next(d for d in document["departments"] if d["merchandise_code"] == "spirits")
    assert (spirits["sales_amount_cents"], spirits["refund_amount_cents"], spirits["transaction_count"]) == (
        2 * 2199 + 1999, 2199, 2,
    )  # fmt: skip
    assert document["type"] == "movement.mcm"


async def test_several_stores_need_a_store_code(database: Database, run: Cli) -> None:
    await insert_fixed_sales(database)
    result = await run("naxml", "export", "--type", "ISM", "--date", "2026-03-14")
    assert result.exit_code == 1
    assert "several stores" in result.output
    unknown = await run("naxml", "export", "--type", "ISM", "--date", "2026-03-14", "--store", "NOPE")
    assert unknown.exit_code == 1
    assert "No store has that code" in unknown.output
    bad_date = await run("naxml", "export", "--type", "ISM", "--date", "14/03/2026")
    assert bad_date.exit_code == 2


async def test_sales_made_at_the_register_export_with_returns_as_refunds_and_voids_left_out(
    register: Register, settings: Any, db_url: str, tmp_path: Path
) -> None:
    sold = await register.new_sale()
    await register.scan(sold["id"], CHIPS, 3)
    done = (await register.complete(sold["id"], [{"kind": "cash", "tendered_cents": 2000}])).json()
    voided = await register.new_sale()
    await register.scan(voided["id"], COKE, 2)
    assert (await register.complete(voided["id"], [{"kind": "cash", "tendered_cents": 1000}])).status_code == 200
    void = await register.http.post(
        f"/sales/{voided['id']}/void",
        json={"reason": "rang up twice", "manager": {"username": "manager", "secret": PINS["manager"]}},
        headers=register.cashier,
    )
    assert void.status_code == 200, void.text
    returned = await register.http.post(
        "/returns",
        json={"receipt_number": done["receipt_number"], "reason": "changed mind",
              "lines": [{"original_line_id": done["lines"][0]["id"], "quantity": 1, "restock": True}]},
        headers=register.cashier,
    )  # fmt: skip
    assert returned.status_code == 201, returned.text
    run = Cli(settings, db_url, tmp_path)
    result = await run("naxml", "export", "--type", "MCM", "--date", done["business_date"])
    assert result.exit_code == 0, result.output
    root = fromstring(result.stdout_bytes)
    departments = {d.findtext("n:MerchandiseCode", namespaces=NS): d for d in root.iterfind(".//n:MCMDetail", NS)}
    assert list(departments) == ["snacks"]
    totals = departments["snacks"].find("n:MCMSalesTotals", NS)
    assert totals is not None
    assert [totals.findtext(f"n:{tag}", namespaces=NS) for tag in (
        "SalesQuantity", "SalesAmount", "RefundAmount", "RefundCount", "TransactionCount",
    )] == ["3", "14.37", "4.79", "1", "1"]  # fmt: skip
