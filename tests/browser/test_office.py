"""The back office in a real browser, and the register charging what the back office set."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Page, expect

from tests.browser.support import COKE, open_shift, scan, shot, sign_in


async def test_a_manager_changes_a_price_and_the_register_charges_it(page: Page) -> None:
    await sign_in(page, "manager", register=None)
    await expect(page).to_have_url(re.compile("/office$"))
    await shot(page, "office-overview")
    await page.get_by_role("link", name="Products").first.click()
    await page.get_by_label("Name, brand or size").fill("coca")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("button", name=re.compile("Coca-Cola 2 L")).click()
    await expect(page.get_by_label("Price (dollars)")).to_have_value("3.29")
    await page.get_by_label("Price (dollars)").fill("3.49")
    await page.get_by_label("Why the price changes").fill("Distributor increase")
    await page.get_by_role("button", name="Save product").click()
    await expect(page.locator("#office-status")).to_contain_text("now $3.49")
    history = page.locator("#price-history")
    await expect(history).to_contain_text("$3.49")
    await expect(history).to_contain_text("Distributor increase")
    await shot(page, "office-product")
    # At the register, the next scan of the cola charges the new price.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/$"))
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    await scan(page, COKE)
    await expect(page.locator("#lines-body tr").first).to_contain_text("$3.49")
    await expect(page.locator("#t-subtotal")).to_have_text("$3.49")


async def test_a_catalog_import_shows_the_row_errors_and_imports_nothing(page: Page, tmp_path: Path) -> None:
    csv = tmp_path / "catalog.csv"
    csv.write_text(
        "sku,name,brand,size,category,price,cost,barcode,base_sku,units_per_pack,tax_class,deposit_class,stock,reorder_point\n"
        "NEW-GIN-750,Harbour Gin,Harbour,750 mL,spirits,24.99,15.00,,,1,standard,,12,3\n"
        "NEW-BAD-1,Broken Row,,750 mL,no_such_category,abc,,123,,1,standard,,,\n",
        encoding="utf-8",
    )
    await sign_in(page, "manager", register=None)
    await page.goto("/office/products")
    await page.get_by_label("CSV file").set_input_files(str(csv))
    await page.get_by_role("button", name="Import").click()
    report = page.locator("#import-report")
    await expect(report).to_contain_text("nothing imported")
    await expect(report.get_by_role("table")).to_contain_text("NEW-BAD-1")
    await expect(report.get_by_role("row").nth(1)).to_contain_text("3")  # the header is line 1
    await shot(page, "office-import-errors")
    # Skipping the invalid rows imports the valid one.
    await page.get_by_label("Skip invalid rows").check()
    await page.get_by_role("button", name="Import").click()
    await expect(report).to_contain_text("1 created")
