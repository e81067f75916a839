"""The licence capture against real timing: a licence scanned back to back with the bottle, while the item is
still on its way to the server (and with the keys pausing meanwhile); a licence before anything in the sale
needs an ID; a product scanned right after a licence; an "@" typed by a person."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from playwright.async_api import Page, Route, expect

from tests.browser.support import CHIPS, COKE, VODKA, licence, open_shift, scan, sign_in, store_today, years_ago


def adult_licence() -> str:
    today = store_today()
    return licence(dob=years_ago(30, today), expires=today + timedelta(days=365 * 4))


async def no_stray_keys(page: Page) -> None:
    """Nothing of the licence went anywhere else: the scan field is empty and no other dialog opened."""
    await expect(page.locator("#scan")).to_have_value("")
    await expect(page.get_by_role("dialog", name="Find a product")).to_have_count(0)
    await expect(page.get_by_role("dialog", name="ID check")).to_have_count(0)


async def test_a_licence_scanned_back_to_back_with_the_bottle_is_checked_once_the_bottle_is_in(page: Page) -> None:
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    await expect(page.locator("#scan")).to_be_focused()
    # The bottle, then the licence at once: the screen has not asked for an ID yet.
    await page.keyboard.type(VODKA)
    await page.keyboard.press("Enter")
    await page.keyboard.type(adult_licence())
    result = page.get_by_role("dialog", name="OF AGE")
    await expect(result).to_be_visible(timeout=5_000)
    await expect(result).to_contain_text("Checked for 21+")
    await expect(page.locator("#lines-body tr")).to_have_count(1)
    await no_stray_keys(page)
    await page.keyboard.press("Enter")
    await expect(page.locator("#id-banner")).to_be_hidden()
    await page.keyboard.press("F10")
    await expect(page.get_by_role("dialog", name="Payment")).to_be_visible()


# Where the keys stop for a moment: after the "@", after "@" LF, in the middle of the elements.
@pytest.mark.parametrize("pause_after", [1, 2, 150], ids=["at-sign", "at-sign-LF", "mid-licence"])
async def test_a_licence_whose_keys_pause_while_the_bottle_is_added_is_taken_whole(
    page: Page, pause_after: int
) -> None:
    """The item's answer is still in flight when the licence starts, and the keys stop for 0.6 s while it
    arrives: a busy page or machine (here the test server shares the test's process, so a keystroke can wait
    for the server's work). A pause is not the end of a licence whose header says more is coming."""
    raw = adult_licence()
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    licence_started = asyncio.Event()

    async def hold_the_item(route: Route) -> None:
        await licence_started.wait()
        await route.continue_()

    await page.route(re.compile(r"/sales/\d+/items$"), hold_the_item)
    await scan(page, VODKA)
    await page.keyboard.type(raw[:pause_after])
    licence_started.set()
    await asyncio.sleep(0.6)
    await page.keyboard.type(raw[pause_after:])
    await expect(page.get_by_role("dialog", name="OF AGE")).to_be_visible(timeout=5_000)
    await expect(page.locator("#lines-body tr")).to_have_count(1)
    await no_stray_keys(page)


async def test_a_licence_before_anything_age_restricted_is_not_checked_and_the_screen_says_so(page: Page) -> None:
    raw = adult_licence()
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    message = page.locator("#message")
    # No sale yet: none is started for it.
    await page.keyboard.type(raw)
    await expect(message).to_contain_text("No ID needed")
    await expect(page.locator("#sale-meta")).to_have_text("")
    # A sale of a soft drink, the licence typed right after it.
    await page.keyboard.type(COKE)
    await page.keyboard.press("Enter")
    await page.keyboard.type(raw)
    await expect(message).to_contain_text("No ID needed")
    await expect(page.locator("#lines-body tr")).to_have_count(1)
    await expect(page.locator("dialog[open]")).to_have_count(0)
    await no_stray_keys(page)
    # The licence was not kept for the sale: the bottle asks for it.
    await scan(page, VODKA)
    await expect(page.locator("#id-banner")).to_contain_text("ID REQUIRED")
    register_id = await page.locator("body").get_attribute("data-register-id")
    sale = await (await page.request.get(f"/sales/current?register_id={register_id}")).json()
    status = await (await page.request.get(f"/web/api/sales/{sale['id']}/id-status")).json()
    assert status["covered"] is False
    assert status["covering_event_id"] is None
    await page.keyboard.type(raw)
    await expect(page.get_by_role("dialog", name="OF AGE")).to_be_visible()


async def test_a_product_scanned_right_after_a_licence_is_added_not_swallowed(page: Page) -> None:
    raw = adult_licence()
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    await scan(page, VODKA)
    await expect(page.locator("#id-banner")).to_contain_text("ID REQUIRED")
    # The licence and at once a cola, before the capture's quiet period has run out.
    await page.keyboard.type(raw)
    await page.keyboard.type(COKE)
    await page.keyboard.press("Enter")
    await expect(page.locator("#lines-body tr")).to_have_count(2)
    await expect(page.locator("#lines-body")).to_contain_text("Coca-Cola")
    await expect(page.locator(".grand")).to_have_attribute("data-id-ok", "true")
    await expect(page.locator("#id-banner")).to_be_hidden()
    await no_stray_keys(page)
    await page.keyboard.press("Escape")  # the OF AGE result, if the cola did not close it
    await expect(page.locator("dialog[open]")).to_have_count(0)
    # Another licence (a second customer in the group), and the chips once its result is on the screen: the
    # scan closes the result and the chips are added.
    await page.keyboard.type(raw)
    await expect(page.get_by_role("dialog", name="OF AGE")).to_be_visible()
    await page.keyboard.type(CHIPS)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog", name="OF AGE")).to_be_hidden()
    await expect(page.locator("#lines-body tr")).to_have_count(3)
    await expect(page.locator("#lines-body")).to_contain_text("Lay's")
    await expect(page.locator("#scan")).to_have_value("")


async def test_an_at_sign_typed_by_a_person_stays_in_the_field(page: Page) -> None:
    await sign_in(page, "cashier")
    await open_shift(page, "100")
    await page.keyboard.press("F2")
    field = page.get_by_role("dialog", name="Find a product").get_by_label("Name, brand or size")
    await expect(field).to_be_focused()
    await page.keyboard.type("a@b")
    await expect(field).to_have_value("a@b")
    # A person who stops after the "@": it is given back, and the next letter follows it.
    await page.keyboard.type("@")
    await asyncio.sleep(0.6)
    await expect(field).to_have_value("a@b@")
    await page.keyboard.type("c")
    await expect(field).to_have_value("a@b@c")
    await expect(field).to_be_focused()
