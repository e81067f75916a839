"""The back office in a real browser, and the register charging what the back office set."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Locator, Page, expect

from tests.browser.support import (
    COKE,
    VODKA,
    licence,
    open_shift,
    scan,
    shot,
    sign_in,
    store_today,
    switch_cashier,
    years_ago,
)


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


async def test_the_back_office_sections_do_their_work(page: Page) -> None:
    await sign_in(page, "admin", register=None)
    status = page.locator("#office-status")
    # Stock: receive an invoice by the case's barcode, adjust for damage, count a category.
    await page.goto("/office/stock")
    await page.get_by_label("Supplier").fill("Coastal Beverage")
    await page.get_by_label("Invoice number").fill("INV-1001")
    await page.get_by_label("Barcode, line 1").fill(COKE)
    await page.get_by_label("Quantity, line 1").fill("12")
    await page.get_by_label("Cost each, line 1").fill("1.55")
    await page.get_by_role("button", name="Receive").click()
    await expect(status).to_contain_text("Received invoice INV-1001")
    await expect(page.locator("#invoices")).to_contain_text("Coastal Beverage")
    adjust = page.locator("#adjust-form")
    await adjust.get_by_label("Barcode").fill(COKE)
    await adjust.get_by_label("Change (+ found, − missing)").fill("-1")
    await adjust.get_by_label("Reason").select_option("damage")
    await adjust.get_by_label("Note").fill("Dropped on the floor")
    await adjust.get_by_role("button", name="Adjust").click()
    await expect(page.locator("#adjust-result")).to_contain_text("Coca-Cola")
    await page.get_by_label("Category").select_option(label="Snacks")
    await page.get_by_role("button", name="Start a count").click()
    first = page.locator("#count-lines input").first
    await first.fill("5")
    await page.get_by_role("button", name="Post the count").click()
    await expect(page.locator("#count-result")).to_contain_text("posted")
    await shot(page, "office-stock-work", full_page=True)
    # Users: add one.
    await page.goto("/office/users")
    create = page.locator("#create-form")
    await create.get_by_label("Username").fill("clerk2")
    await create.get_by_label("Full name").fill("Second Clerk")
    await create.get_by_label("Store id (blank: every store)").fill("1")
    await create.get_by_label("Password (12+ characters)").fill("quiet-harbour-lamp-77")
    await create.get_by_role("button", name="Add user").click()
    await expect(status).to_contain_text("Added clerk2")
    await expect(page.locator("#user-list")).to_contain_text("clerk2")
    # Stores: a policy changed through the form.
    await page.goto("/office/stores")
    await expect(page.get_by_label("Minimum clerk age")).to_have_value("18")
    await page.get_by_label("Minimum clerk age").fill("19")
    await page.get_by_role("button", name="Save the policies").click()
    await expect(status).to_contain_text("Policies saved")
    await expect(page.get_by_label("Minimum clerk age")).to_have_value("19")
    # The audit log has all of it, and its chains verify.
    await page.goto("/office/audit")
    await expect(page.locator("#audit-entries")).to_contain_text("store.settings_changed")
    await page.get_by_role("button", name="Verify the chains").click()
    await expect(page.locator("#verify-result")).to_contain_text("Every chain is intact")
    await page.goto("/office/outbox")
    await expect(page.locator("#outbox-figures")).to_contain_text("Waiting")


async def assert_no_sideways_scroll(page: Page, where: Locator) -> None:
    """At 1024×768 neither the page nor a table's own scroll box needs scrolling sideways."""
    widths = await where.locator(".table-wrap").evaluate_all("boxes => boxes.map(b => [b.scrollWidth, b.clientWidth])")
    assert widths, "a table is shown"
    assert all(scroll <= client for scroll, client in widths), widths
    page_width = await page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= 1024, page_width


async def test_the_z_history_and_the_audit_log_read_at_1024_without_sideways_scrolling(page: Page) -> None:
    # A sale with an ID check, then a manager closes the shift: a Z report and rich audit entries.
    today = store_today()
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    await scan(page, COKE)
    await scan(page, VODKA)
    await expect(page.locator("#id-banner")).to_contain_text("ID REQUIRED")
    await page.keyboard.type(licence(dob=years_ago(30, today), expires=today + timedelta(days=700)))
    await expect(page.get_by_role("dialog", name="OF AGE")).to_be_visible()
    await page.keyboard.press("Enter")
    await page.keyboard.press("F10")
    await expect(page.get_by_role("dialog", name="Payment")).to_be_visible()
    await page.keyboard.press("F2")
    await expect(page.get_by_role("dialog", name=re.compile("complete"))).to_be_visible()
    await page.keyboard.press("Enter")
    await switch_cashier(page, "manager")
    await expect(page.locator("#shift-status")).to_contain_text("open")
    await page.keyboard.press("Alt+Z")
    await page.get_by_label("Counted cash (dollars)").fill("125")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog", name=re.compile("Z report"))).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.locator("#shift-status")).to_contain_text("No open shift")

    await page.goto("/office/reports")
    history = page.locator("#z-history")
    await expect(history.get_by_role("link", name=re.compile("Z report"))).to_be_visible()
    await expect(history).to_contain_text("$125.00")
    await assert_no_sideways_scroll(page, history)
    await history.scroll_into_view_if_needed()
    await shot(page, "office-reports-z-history")

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/$"))
    await sign_in(page, "admin", register=None)
    await page.goto("/office/audit")
    entries = page.locator("#audit-entries")
    completed = entries.locator("tr.audit-entry").filter(has_text="sale.completed")
    await expect(completed).to_have_count(1)
    # Under the entry, its details read as a key/value list; a nested list (the lines) opens from the keyboard.
    sale_details = completed.locator("xpath=following-sibling::tr[1]")
    await expect(sale_details.locator("dl.kv").first).to_contain_text("receipt_number")
    await expect(sale_details).not_to_contain_text('"receipt_number"')
    unit_price = sale_details.get_by_text("unit_price_cents", exact=True).first
    await expect(unit_price).to_be_hidden()
    await sale_details.locator("details.kv-nested > summary").first.focus()
    await page.keyboard.press("Enter")
    await expect(unit_price).to_be_visible()
    await assert_no_sideways_scroll(page, entries)
    await page.get_by_role("button", name="Verify the chains").click()
    await expect(page.locator("#verify-result")).to_contain_text("Every chain is intact")
    await shot(page, "office-audit-log")
    await entries.scroll_into_view_if_needed()
    await shot(page, "office-audit-log-entries")
