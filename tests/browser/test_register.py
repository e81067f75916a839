"""The register in a real browser: scanning, ID checks, tenders, receipts, returns and the shift."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.async_api import Page, expect

from tests.browser.support import (
    ARTIFACTS,
    CHIPS,
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
from tests.support import PINS


async def test_a_full_sale_by_scanning_paid_in_cash_with_change(page: Page) -> None:
    await sign_in(page, "cashier")
    await open_shift(page, "150")
    await scan(page, COKE)
    await expect(page.locator("#lines-body tr")).to_have_count(1)
    await scan(page, CHIPS)
    await scan(page, "2*" + COKE)
    await expect(page.locator("#lines-body tr")).to_have_count(2)
    await shot(page, "register-sale")
    total = await page.locator("#t-total").inner_text()
    assert total.startswith("$")
    await page.keyboard.press("F10")
    tender = page.get_by_role("dialog", name="Payment")
    await expect(tender).to_be_visible()
    await shot(page, "register-tender")
    await page.keyboard.type("20")
    await page.keyboard.press("Enter")
    done = page.get_by_role("dialog", name=re.compile("complete"))
    await expect(done).to_be_visible()
    await expect(page.locator("#done-receipt")).to_contain_text("TOTAL")
    await shot(page, "register-receipt")
    # What the browser prints: the receipt alone, on 80 mm paper.
    await page.emulate_media(media="print")
    await expect(page.locator("#print-area")).to_be_visible()
    await expect(page.locator("#print-area")).to_contain_text("CHANGE")
    await expect(page.locator(".register-main")).to_be_hidden()
    pdf = await page.pdf(path=str(ARTIFACTS / "receipt.pdf"), prefer_css_page_size=True)
    assert re.search(rb"/MediaBox \[0 0 22[67]\.", pdf), "the receipt prints 80 mm (227 pt) wide"
    await page.emulate_media(media="screen")


async def test_an_underage_licence_is_refused_and_an_adult_one_lets_the_sale_through(page: Page) -> None:
    today = store_today()
    underage = licence(dob=years_ago(18, today), expires=today + timedelta(days=365 * 4))
    adult = licence(dob=years_ago(30, today), expires=today + timedelta(days=365 * 4))
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    await scan(page, VODKA)
    banner = page.locator("#id-banner")
    await expect(banner).to_contain_text("ID REQUIRED")
    # The scanner types the licence into the scan field, control characters and all.
    await expect(page.locator("#scan")).to_be_focused()
    await page.keyboard.type(underage)
    result = page.get_by_role("dialog", name="UNDERAGE")
    await expect(result).to_be_visible()
    await expect(page.locator("#scan")).to_have_value("")
    await expect(page.locator("#lines-body tr")).to_have_count(1)  # no keystroke reached the scan field
    await expect(result.get_by_role("button", name=re.compile("override"))).to_be_hidden()
    await shot(page, "register-id-underage")
    await page.keyboard.press("Enter")
    await expect(banner).to_contain_text("UNDERAGE")
    # The minor's sale is cancelled; the next customer is an adult.
    await page.keyboard.press("Alt+C")
    await page.get_by_role("dialog", name="Are you sure?").get_by_role("button", name=re.compile("Yes")).click()
    await expect(page.locator("#lines-body tr")).to_have_count(0)
    await scan(page, VODKA)
    await expect(banner).to_contain_text("ID REQUIRED")
    await page.keyboard.press("F10")
    await expect(page.locator("#message")).to_contain_text("ID")
    await page.keyboard.type(adult)
    result = page.get_by_role("dialog", name="OF AGE")
    await expect(result).to_be_visible()
    await shot(page, "register-id-of-age")
    await page.keyboard.press("Enter")
    await expect(banner).to_be_hidden()
    await page.keyboard.press("F10")
    await expect(page.get_by_role("dialog", name="Payment")).to_be_visible()
    await page.keyboard.press("F2")  # exact cash
    await expect(page.get_by_role("dialog", name=re.compile("complete"))).to_be_visible()
    await expect(page.locator("#done-change")).to_have_text("$0.00")


async def test_an_expired_licence_can_be_overridden_by_a_manager(page: Page) -> None:
    today = store_today()
    expired = licence(dob=years_ago(40, today), expires=today - timedelta(days=3))
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    await scan(page, VODKA)
    await page.keyboard.press("F9")
    await expect(page.get_by_role("dialog", name="ID check")).to_be_visible()
    await page.keyboard.type(expired)
    result = page.get_by_role("dialog", name="EXPIRED")
    await expect(result).to_be_visible()
    await page.keyboard.press("Alt+O")
    override = page.get_by_role("dialog", name="Manager override")
    await override.get_by_label("Manager username").fill("manager")
    await override.get_by_label("Manager PIN or password").fill(PINS["manager"])
    await override.get_by_label("Reason").fill("Licence renewed, paper copy seen")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog", name="OF AGE")).to_be_visible()


async def test_out_of_hours_an_adult_is_told_in_big_letters_and_the_sale_does_not_complete(page: Page) -> None:
    # The store's alcohol sales closed an hour ago, on its own clock: 3 h to 1 h ago, every day. Near midnight
    # the window crosses it (e.g. 22:30–00:30 at 01:30), which the hours rule reads the same way.
    now = datetime.now(ZoneInfo("America/New_York"))
    opens, closes = (f"{now - timedelta(hours=h):%H:%M}" for h in (3, 1))
    await sign_in(page, "admin", register=None)
    await page.goto("/office/stores")
    await expect(page.get_by_label("Minimum clerk age")).to_have_value("18")  # the settings are loaded
    await page.get_by_label("Sales start").fill(opens)
    await page.get_by_label("Sales end (24:00 = midnight)").fill(closes)
    await page.get_by_role("button", name="Save the policies").click()
    await expect(page.locator("#office-status")).to_contain_text("Policies saved")
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/$"))

    today = store_today()
    adult = licence(dob=years_ago(30, today), expires=today + timedelta(days=365 * 4))
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    await expect(page.locator("#hours-status")).to_have_text("Alcohol: OUT OF HOURS")
    await scan(page, COKE)
    await scan(page, VODKA)
    await expect(page.locator("#lines-body tr")).to_have_count(2)
    banner = page.locator("#id-banner")
    await expect(banner).to_contain_text("OUT OF HOURS")
    # An adult's licence: of age, but the screen says OUT OF HOURS, big, with no override.
    await page.keyboard.type(adult)
    result = page.get_by_role("dialog", name="OUT OF HOURS")
    await expect(result).to_be_visible()
    await expect(result).to_contain_text("may not be sold")
    await expect(result.get_by_role("button", name=re.compile("override"))).to_be_hidden()
    await expect(page.get_by_role("dialog", name="OF AGE")).to_have_count(0)
    size = await page.locator("#id-result-word").evaluate("node => parseFloat(getComputedStyle(node).fontSize)")
    assert size >= 48, f"the result is shown in big type ({size}px)"
    await shot(page, "register-id-out-of-hours")
    await page.keyboard.press("Enter")
    await expect(result).to_be_hidden()
    await expect(banner).to_contain_text("OUT OF HOURS")
    # Paying: the payment dialog does not open; the result is shown again.
    await page.keyboard.press("F10")
    await expect(result).to_be_visible()
    await expect(page.get_by_role("dialog", name="Payment")).to_be_hidden()
    await page.keyboard.press("Enter")
    await expect(result).to_be_hidden()
    # The server refuses the checkout itself, whatever the screen does.
    register_id = await page.locator("body").get_attribute("data-register-id")
    sale = await (await page.request.get(f"/sales/current?register_id={register_id}")).json()
    csrf = next(c["value"] for c in await page.context.cookies() if c["name"] == "posomni_csrf")
    refused = await page.request.post(
        f"/sales/{sale['id']}/complete",
        headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
        data={"tenders": [{"kind": "cash", "tendered_cents": 10_000}]},
    )
    assert refused.status == 409, await refused.text()
    assert (await refused.json())["error"]["code"] == "outside_sale_hours"
    # The sale is still open on the server: after a reload the register picks it up, unpaid.
    await page.reload()
    await expect(page.locator("#lines-body tr")).to_have_count(2)
    await expect(page.locator("#sale-meta")).to_have_text(f"Receipt {sale['receipt_number']}")
    await expect(banner).to_contain_text("OUT OF HOURS")
    await expect(page.get_by_role("dialog", name=re.compile("complete"))).to_have_count(0)
    await shot(page, "register-out-of-hours")


async def pay_cash_exact(page: Page) -> str:
    await page.keyboard.press("F10")
    await expect(page.get_by_role("dialog", name="Payment")).to_be_visible()
    await page.keyboard.press("F2")
    done = page.get_by_role("dialog", name=re.compile("complete"))
    await expect(done).to_be_visible()
    receipt = await page.locator("#done-title").inner_text()
    await page.keyboard.press("Enter")
    await expect(done).to_be_hidden()
    match = re.search(r"[A-Z0-9][A-Z0-9-]*-\d{8}", receipt)
    assert match is not None, receipt
    return match.group(0)


async def test_split_tender_card_on_the_simulated_processor_and_cash(page: Page) -> None:
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    await scan(page, CHIPS)
    await scan(page, "3*" + COKE)
    await page.keyboard.press("F10")
    tender = page.get_by_role("dialog", name="Payment")
    await expect(tender.get_by_label("Test card")).to_be_visible()
    await tender.get_by_label("Test card").select_option(label="mastercard")
    await tender.get_by_label("Amount (dollars)", exact=True).fill("10")
    await page.keyboard.press("F7")
    await expect(page.locator("#tender-list")).to_contain_text("Card")
    await expect(page.locator("#tender-due")).not_to_have_text("$0.00")
    await tender.get_by_label("Amount (dollars)", exact=True).fill("20")
    await shot(page, "register-split-tender")
    await page.keyboard.press("Enter")
    done = page.get_by_role("dialog", name=re.compile("complete"))
    await expect(done).to_be_visible()
    receipt = page.locator("#done-receipt")
    await expect(receipt).to_contain_text("CHANGE")
    await expect(receipt).to_contain_text("4444")  # the simulated Mastercard's last four digits
    await expect(receipt).to_contain_text("$20.00")
    await page.keyboard.press("Enter")
    # Reprint: the copy is marked as such.
    await page.keyboard.press("Alt+P")
    copy = page.get_by_role("dialog", name="Receipt copy")
    await expect(copy.locator("#document-body")).to_contain_text("COPY")
    await shot(page, "register-reprint-copy")


async def test_card_on_the_register_reader_with_its_status_and_cancel(page: Page) -> None:
    await sign_in(page, "cashier", register="2")
    await open_shift(page, "100")
    await scan(page, CHIPS)
    await page.keyboard.press("F10")
    await expect(page.get_by_role("dialog", name="Payment")).to_be_visible()
    await page.keyboard.press("F7")
    status = page.locator("#reader-status")
    await expect(status).to_contain_text("Waiting for the customer's card")
    await shot(page, "register-card-reader")
    await page.keyboard.press("Escape")  # cancels the card, not the payment screen
    await expect(page.locator("#reader-panel")).to_be_hidden()
    await expect(page.get_by_role("dialog", name="Payment")).to_be_visible()
    await page.keyboard.press("F7")
    await expect(status).to_contain_text("Waiting")
    await page.get_by_role("button", name="Simulate a tap (test)").click()
    done = page.get_by_role("dialog", name=re.compile("complete"))
    await expect(done).to_be_visible()
    await expect(page.locator("#done-receipt")).to_contain_text("4242")


async def test_return_by_receipt_number_and_closing_the_shift_with_the_z_report(page: Page) -> None:
    await sign_in(page, "cashier")
    await open_shift(page, "150")
    await scan(page, CHIPS)
    await scan(page, COKE)
    number = await pay_cash_exact(page)
    # The customer brings the chips back: the receipt's barcode is scanned into the scan field.
    await scan(page, number)
    returns = page.get_by_role("dialog", name="Return")
    await expect(returns.locator("#returns-lines")).to_contain_text("Lay's")
    await returns.locator("input.qty").nth(1).fill("0")  # keep the cola
    await returns.get_by_label("Reason").fill("Bag was open")
    await shot(page, "register-return")
    await page.keyboard.press("Enter")
    refund = page.get_by_role("dialog", name=re.compile("Return .* refund"))
    await expect(refund).to_be_visible()
    await expect(refund.locator("#document-body")).to_contain_text("RETURN")
    await page.keyboard.press("Escape")
    # No sale (audited) and the X report are the cashier's; closing the shift takes a manager.
    await page.keyboard.press("Alt+N")
    await page.get_by_role("dialog", name=re.compile("no sale")).get_by_label("Reason").fill("Change for the safe")
    await page.keyboard.press("Enter")
    await expect(page.locator("#message")).to_contain_text("Drawer opened")
    await page.keyboard.press("Alt+X")
    await expect(page.get_by_role("dialog", name=re.compile("X report"))).to_contain_text("Expected cash")
    await page.keyboard.press("Escape")
    await switch_cashier(page, "manager")
    await expect(page.locator("#shift-status")).to_contain_text("open")
    await page.keyboard.press("Alt+Z")
    await page.get_by_label("Counted cash (dollars)").fill("155")
    await page.keyboard.press("Enter")
    z_report = page.get_by_role("dialog", name=re.compile("Z report"))
    await expect(z_report).to_be_visible()
    await expect(z_report.locator("#document-body")).to_contain_text("Over / short")
    await expect(page.locator("#shift-status")).to_contain_text("No open shift")
    await shot(page, "register-z-report")


async def test_line_changes_with_a_manager_suspend_resume_and_a_reload_mid_sale(page: Page) -> None:
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    # An unreadable code and an unknown product: a clear message and the "beep".
    await scan(page, "12345")
    await expect(page.locator("#message")).to_contain_text("Not a product barcode")
    await expect(page.locator("#scan")).to_have_class(re.compile("beep"))
    await scan(page, "081234999995")  # a valid UPC-A that no product has
    await expect(page.locator("#message")).to_contain_text("Unknown barcode")
    # A name typed into the scan field searches; Enter adds the highlighted product.
    await scan(page, "lime")
    search = page.get_by_role("dialog", name="Find a product")
    await expect(search.locator("#search-results li").first).to_contain_text("Lime")
    await page.keyboard.press("Enter")
    await expect(search).to_be_hidden()
    await scan(page, COKE)
    await expect(page.locator("#lines-body tr")).to_have_count(2)
    # Price override of the selected line (the cola), approved by the manager's PIN.
    await page.keyboard.press("F4")
    price = page.get_by_role("dialog", name="Price override")
    await price.get_by_label("New unit price (dollars)").fill("2.50")
    await price.get_by_label("Reason").fill("Dented bottle")
    await price.get_by_label("Manager username").fill("manager")
    await price.get_by_label("Manager PIN or password").fill("0000")
    await page.keyboard.press("Enter")
    await expect(price.get_by_role("alert")).to_contain_text("Manager approval failed")
    await price.get_by_label("Manager PIN or password").fill(PINS["manager"])
    await page.keyboard.press("Enter")
    await expect(price).to_be_hidden()
    await expect(page.locator("#lines-body tr.selected")).to_contain_text("$2.50")
    # One more cola with "+", then 10 % off the whole sale.
    await page.keyboard.press("+")
    await expect(page.locator("#lines-body tr.selected td").nth(1)).to_have_text("2")
    await page.keyboard.press("F6")
    discount = page.get_by_role("dialog", name="Discount")
    await discount.get_by_label("The whole sale").check()
    await discount.get_by_label("Amount (dollars) or percent (e.g. 10%)").fill("10%")
    await discount.get_by_label("Reason").fill("Loyal customer")
    await discount.get_by_label("Manager username").fill("manager")
    await discount.get_by_label("Manager PIN or password").fill(PINS["manager"])
    await page.keyboard.press("Enter")
    await expect(discount).to_be_hidden()
    await expect(page.locator("#t-discounts")).not_to_have_text("$0.00")
    total = await page.locator("#t-total").inner_text()
    # The sale lives on the server: a reload finds it as it was.
    await page.reload()
    await expect(page.locator("#lines-body tr")).to_have_count(2)
    await expect(page.locator("#t-total")).to_have_text(total)
    await expect(page.locator("#message")).to_contain_text("picked up")
    # Suspend it, serve someone else, resume it.
    await page.keyboard.press("F8")
    await page.keyboard.press("Alt+U")
    await expect(page.locator("#lines-body tr")).to_have_count(0)
    await page.keyboard.press("F8")
    suspended = page.get_by_role("dialog", name="Suspend or resume")
    await suspended.get_by_role("button", name=re.compile(total.replace("$", r"\$"))).click()
    await expect(page.locator("#t-total")).to_have_text(total)
    await expect(page.locator("#lines-body tr")).to_have_count(2)


async def test_loyalty_points_pay_part_of_a_sale_and_a_manager_post_voids_it(page: Page) -> None:
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    await scan(page, "3*" + COKE)
    await page.keyboard.press("F7")
    customer = page.get_by_role("dialog", name="Customer (loyalty)")
    await customer.get_by_label("Phone number or loyalty card").fill("5551234567")
    await customer.get_by_role("button", name="New customer").click()
    await expect(customer.locator("[data-customer]")).to_contain_text("0 points")
    await page.keyboard.press("Escape")
    await expect(page.locator("#customer-line")).to_contain_text("attached")
    await pay_cash_exact(page)
    # The next visit: the points earned pay part of the sale, cash the rest.
    await scan(page, CHIPS)
    await page.keyboard.press("F7")
    await customer.get_by_label("Phone number or loyalty card").fill("555-123-4567")
    await page.keyboard.press("Enter")
    await expect(customer.locator("[data-customer]")).to_contain_text("10 points")
    await page.keyboard.press("Escape")
    await page.keyboard.press("F10")
    tender = page.get_by_role("dialog", name="Payment")
    await tender.get_by_label("Amount (dollars)", exact=True).fill("0.10")
    await page.keyboard.press("F8")
    await expect(page.locator("#tender-list")).to_contain_text("Points")
    await page.keyboard.press("F2")
    done = page.get_by_role("dialog", name=re.compile("complete"))
    await expect(done).to_be_visible()
    await expect(page.locator("#done-receipt")).to_contain_text("$0.10")
    await page.keyboard.press("Enter")
    # Post-void of that sale, approved by the manager at the register.
    await page.keyboard.press("Alt+V")
    void = page.get_by_role("dialog", name="Post-void a sale")
    await expect(void.get_by_label("Receipt number")).not_to_have_value("")
    await void.get_by_label("Reason").fill("Customer changed their mind")
    await void.get_by_label("Manager username").fill("manager")
    await void.get_by_label("Manager PIN or password").fill(PINS["manager"])
    await page.keyboard.press("Enter")
    voided = page.get_by_role("dialog", name=re.compile("Voided"))
    await expect(voided.locator("#document-body")).to_contain_text("VOIDED")
    await shot(page, "register-post-void")


async def test_a_passport_is_entered_by_hand_after_comparing_the_photo(page: Page) -> None:
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    await scan(page, VODKA)
    await page.keyboard.press("F9")
    dialog = page.get_by_role("dialog", name="ID check")
    await expect(dialog.locator("#id-capture-state")).to_contain_text("scan the licence now")
    await page.keyboard.press("Tab")  # leaves the scanner capture for the manual entry
    await expect(dialog.get_by_label("Date of birth")).to_be_focused()
    await expect(dialog.locator("#id-capture-state")).to_contain_text("Manual entry")
    await dialog.get_by_label("Date of birth").fill("1985-02-14")
    await dialog.get_by_label("Expiry date").fill(f"{store_today().year + 5}-01-31")
    await dialog.get_by_label("Document").select_option("passport")
    await dialog.get_by_role("button", name="Check manual entry").click()
    await expect(dialog.get_by_role("alert")).to_contain_text("Compare the photo")
    await dialog.get_by_label("I compared the photo with the customer").check()
    await dialog.get_by_role("button", name="Check manual entry").click()
    await expect(page.get_by_role("dialog", name="OF AGE")).to_be_visible()
