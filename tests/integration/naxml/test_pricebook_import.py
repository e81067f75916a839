"""`posomni naxml import-pricebook`: an NAXML item-maintenance file into the catalog — new items, prices,
departments, a delete — audited, with price history and outbox messages; every bad record reported, all or
nothing, --skip-invalid and --dry-run."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from sqlalchemy import select

from posomni import bootstrap
from posomni.catalog.models import Barcode, Category, PriceChange, Product
from posomni.config import Settings
from posomni.database import Database
from posomni.outbox.models import OutboxMessage
from tests.integration.naxml.conftest import DATA, Cli, audit_details, catalog_state, product
from tests.support import seed_demo

SAMPLE = DATA / "item_maintenance.xml"
TAX = ("--tax-strategy", "101=standard", "--tax-strategy", "99=exempt")
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<NAXML-MaintenanceRequest xmlns="http://www.naxml.org/POSBO/Vocabulary/2003-10-16" version="3.4">\n'  # noqa: E501


def item(code: str, data: str, action: str = "addchange", fmt: str = "upcA", modifier: str = "0") -> str:
    return (
        f'<ITTDetail><RecordAction type="{action}"/><ItemCode><POSCodeFormat format="{fmt}"/>'
        f"<POSCode>{code}</POSCode><POSCodeModifier>{modifier}</POSCodeModifier></ItemCode>"
        f"<ITTData>{data}</ITTData></ITTDetail>\n"
    )


def maintenance(path: Path, items: list[str], departments: list[str] = ()) -> Path:  # type: ignore[assignment]
    body = HEAD
    if departments:
        body += "<MerchandiseCodeMaintenance>\n" + "".join(departments) + "</MerchandiseCodeMaintenance>\n"
    body += "<ItemMaintenance>\n" + "".join(items) + "</ItemMaintenance>\n</NAXML-MaintenanceRequest>\n"
    path.write_text(body, encoding="utf-8")
    return path


async def test_sample_file_round_trips_into_the_catalog(
    database: Database, settings: Settings, run: Cli, tmp_path: Path
) -> None:
    await seed_demo(database)
    file = shutil.copyfile(SAMPLE, tmp_path / "ITT20260314.xml")
    result = await run("naxml", "import-pricebook", str(file), *TAX)
    assert result.exit_code == 0, result.output
    assert "2 created, 4 updated, 0 unchanged, 1 deactivated; 2 price changes" in result.output
    assert "departments 2 created, 1 updated, 1 deleted" in result.output

    tito, bud6 = await product(database, "VOD-TITO-750"), await product(database, "BER-BUD-6")
    assert (tito.price_cents, bud6.price_cents, bud6.units_per_pack) == (2249, 1049, 6)
    assert not (await product(database, "TOB-SWIS-2")).is_active
    async with database.sessionmaker() as session:
        categories = {c.code: c for c in await session.scalars(select(Category))}
        gin = await session.scalar(select(Product).join(Barcode).where(Barcode.gtin == "00850000001015"))
        forest = await session.scalar(select(Product).join(Barcode).where(Barcode.gtin == "04006381333931"))
        history = list(await session.scalars(select(PriceChange).order_by(PriceChange.id)))
        messages = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "price.changed")))
    # Departments: numeric merchandise codes are kept as mc_<code>; produce was emptied, then removed.
    assert "produce" not in categories
    assert (categories["mc_1001"].name, categories["mc_1001"].age_restricted, categories["mc_1001"].min_age) == (
        "Craft Spirits", True, 21,
    )  # fmt: skip
    assert (categories["mc_1002"].tax_class, categories["mc_1002"].age_restricted) == ("exempt", False)
    assert categories["mixers"].name == "Mixers and Sodas"
    limes = await product(database, "PRO-LIME-1")
    assert (limes.category_id, limes.tax_class) == (categories["mc_1002"].id, "exempt")
    # New items: the GTIN-14 is the SKU; the category's defaults apply (21+).
    assert gin is not None
    assert forest is not None
    assert (gin.sku, gin.name, gin.price_cents, gin.category_id) == (
        "00850000001015", "Gulf Coast Small Batch Gin 750 mL", 3499, categories["mc_1001"].id,
    )  # fmt: skip
    assert (gin.age_restricted, gin.min_age, forest.price_cents, forest.is_active) == (True, 21, 4150, True)
    # History: a row per price set; changed prices (not first prices) also go to the back office.
    changes = {(c.product_id, c.old_price_cents, c.new_price_cents, c.source) for c in history}
    assert {(tito.id, 2199, 2249, "import"), (bud6.id, 999, 1049, "import"), (gin.id, None, 3499, "import")} <= changes
    assert sorted(m.payload["product_id"] for m in messages) == sorted([tito.id, bud6.id])

    crypto = bootstrap.encryption(settings)
    [entry] = await audit_details(database, crypto, "catalog.pricebook_imported")
    assert entry["sha256"] == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert (entry["source"], entry["name"], entry["items"], entry["departments"]) == ("naxml", file.name, 7, 4)
    assert (entry["created"], entry["updated"], entry["deactivated"], entry["price_changes"]) == (2, 4, 1, 2)
    assert len(await audit_details(database, crypto, "catalog.category_created")) == 2
    [deleted] = await audit_details(database, crypto, "catalog.category_deleted")
    assert deleted["code"] == "produce"

    # The same file again: nothing left to change, no new history, one more audit entry.
    before = await catalog_state(database)
    again = await run("naxml", "import-pricebook", str(file), *TAX)
    assert again.exit_code == 0, again.output
    assert "0 created, 0 updated, 7 unchanged, 0 deactivated; 0 price changes" in again.output
    after = await catalog_state(database)
    assert after["products"] == before["products"]
    assert after["counts"]["PriceChange"] == before["counts"]["PriceChange"]
    assert after["counts"]["OutboxMessage"] == before["counts"]["OutboxMessage"]


async def test_every_bad_record_is_reported_and_nothing_is_imported(
    database: Database, run: Cli, tmp_path: Path
) -> None:
    await seed_demo(database)
    file = maintenance(
        tmp_path / "bad.xml",
        [
            item("081234000011", "<RegularSellPrice>22.49</RegularSellPrice>"),  # valid
            item("081234000012", "<RegularSellPrice>1.00</RegularSellPrice>"),  # check digit
            item(
                "850000001015",
                "<Description>Gin</Description><MerchandiseCode>9999</MerchandiseCode>"
                "<RegularSellPrice>30.00</RegularSellPrice>",
            ),  # unknown department
            item("081234000028", "<RegularSellPrice>12.345</RegularSellPrice>"),  # three decimals
            item("081234000035", "<RegularSellPrice>abc</RegularSellPrice>"),  # not money
            item("081234000011", "<RegularSellPrice>23.00</RegularSellPrice>"),  # the same item again
            item("4011", "<RegularSellPrice>0.99</RegularSellPrice>", fmt="plu"),  # PLU
            item("081234000042", "<RegularSellPrice>15.00</RegularSellPrice>", modifier="1"),  # modifier
            item("081234000059", "<RegularSellPrice>15.00</RegularSellPrice>", action="replace"),  # action
            item(
                "850000001022",
                "<Description>Six</Description><MerchandiseCode>beer</MerchandiseCode>"
                "<RegularSellPrice>9.99</RegularSellPrice><SellingUnits>6</SellingUnits>",
            ),  # new pack
            item("081234000066", "<TaxStrategyID>7</TaxStrategyID>"),  # unknown tax strategy
            item("850000001039", "<RegularSellPrice>5.00</RegularSellPrice>", action="change"),  # unknown item
            item("850000001046", "<Description>No price</Description><MerchandiseCode>beer</MerchandiseCode>"),
        ],
        ['<MCTDetail><RecordAction type="delete"/><MerchandiseCode>spirits</MerchandiseCode></MCTDetail>\n'],
    )
    before = await catalog_state(database)
    result = await run("naxml", "import-pricebook", str(file))
    assert result.exit_code == 1, result.output
    out = result.output
    # Lines: the department's is 4; the items' start at 7, one a line.
    expected = [
        (4, "department", "spirits", "department_in_use", "MerchandiseCode"),
        (8, "item", "081234000012", "invalid_check_digit", "POSCode"),
        (9, "item", "850000001015", "unknown_category", "MerchandiseCode"),
        (10, "item", "081234000028", "invalid_money", "RegularSellPrice"),
        (11, "item", "081234000035", "invalid_money", "RegularSellPrice"),
        (12, "item", "081234000011", "duplicate_sku", "POSCode"),
        (13, "item", "4011", "unsupported_code_format", "POSCodeFormat"),
        (14, "item", "081234000042", "unsupported_modifier", "POSCodeModifier"),
        (15, "item", "081234000059", "invalid_action", "RecordAction"),
        (16, "item", "850000001022", "selling_units_mismatch", "SellingUnits"),
        (17, "item", "081234000066", "unknown_tax_strategy", "TaxStrategyID"),
        (18, "item", "850000001039", "unknown_item", "POSCode"),
        (19, "item", "850000001046", "required", "RegularSellPrice"),
    ]
    lines = [line for line in out.splitlines() if line.startswith("line ")]
    assert len(lines) == len(expected), out
    for (number, record, key, code, field), line in zip(expected, lines, strict=True):
        assert line.startswith(f"line {number} {record} ({key}): {code} {field}:"), line
    assert "13 invalid record(s): nothing imported" in out
    assert await catalog_state(database) == before


async def test_skip_invalid_applies_the_valid_records_only(
    database: Database, settings: Settings, run: Cli, tmp_path: Path
) -> None:
    await seed_demo(database)
    file = maintenance(
        tmp_path / "mixed.xml",
        [
            item("081234000011", "<RegularSellPrice>22.49</RegularSellPrice>"),
            item("081234000028", "<RegularSellPrice>12.345</RegularSellPrice>"),
            item(
                "850000001015",
                "<Description>Gin</Description><MerchandiseCode>1001</MerchandiseCode>"
                "<RegularSellPrice>30.00</RegularSellPrice>",
            ),  # its department is invalid: skipped with it
        ],
        [
            "<MCTDetail><MerchandiseCode>1001</MerchandiseCode><MerchandiseCodeDescription>Craft</MerchandiseCodeDescription>"
            "<TaxStrategyID>nope</TaxStrategyID></MCTDetail>\n"
        ],
    )
    result = await run("naxml", "import-pricebook", str(file), "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "3 skipped" in result.output
    assert "1 updated" in result.output
    assert (await product(database, "VOD-TITO-750")).price_cents == 2249
    assert (await product(database, "VOD-TITO-1750")).price_cents == 3699
    async with database.sessionmaker() as session:
        assert await session.scalar(select(Category).where(Category.code == "mc_1001")) is None
    [entry] = await audit_details(database, bootstrap.encryption(settings), "catalog.pricebook_imported")
    assert entry["skipped_positions"] == [4, 8, 9]


async def test_dry_run_checks_everything_and_keeps_nothing(database: Database, run: Cli, tmp_path: Path) -> None:
    await seed_demo(database)
    file = shutil.copyfile(SAMPLE, tmp_path / "sample.xml")
    before = await catalog_state(database)
    result = await run("naxml", "import-pricebook", str(file), *TAX, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "All 11 records are valid (dry run: nothing imported)." in result.output
    assert await catalog_state(database) == before
    # Without the tax mapping the file's numeric TaxStrategyIDs are unknown: reported, nothing imported.
    unmapped = await run("naxml", "import-pricebook", str(file), "--dry-run")
    assert unmapped.exit_code == 1
    assert "unknown_tax_strategy" in unmapped.output
    assert "--tax-strategy ID=CLASS" in unmapped.output
