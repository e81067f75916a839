"""An accessibility pass with axe-core run in the page (the copy bundled by axe-playwright-python) over the
main screens: no serious or critical violation (labels, names, focus order, contrast …)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from tests.browser.support import COKE, VODKA, licence, open_shift, scan, shot, sign_in, store_today, years_ago

AXE = Axe()
# WCAG 2.1 A and AA, plus axe's best practices (landmarks, headings, focus order).
OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}


async def serious_violations(page: Page, screen: str) -> list[str]:
    results = await AXE.run(page, options=OPTIONS)
    found: list[dict[str, Any]] = results.response["violations"]
    return [
        f"{screen}: {v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v.get("impact") in ("serious", "critical")
    ]


async def test_the_main_screens_have_no_serious_accessibility_violations(page: Page) -> None:
    problems: list[str] = []
    await page.goto("/")
    problems += await serious_violations(page, "sign-in")
    await shot(page, "sign-in")

    await sign_in(page, "cashier")
    problems += await serious_violations(page, "register, shift dialog")
    await open_shift(page, "100")
    await scan(page, COKE)
    await page.keyboard.press("F10")
    await expect(page.get_by_role("dialog", name="Payment")).to_be_visible()
    problems += await serious_violations(page, "payment")
    await page.keyboard.press("F2")
    await expect(page.get_by_role("dialog", name=re.compile("complete"))).to_be_visible()
    await expect(page.locator("#done-receipt")).to_contain_text("TOTAL")
    problems += await serious_violations(page, "sale complete")
    await page.keyboard.press("Enter")
    await page.keyboard.press("Alt+X")
    await expect(page.locator("#document-body")).to_contain_text("Expected cash")
    problems += await serious_violations(page, "X report")
    await page.keyboard.press("Escape")
    await scan(page, VODKA)
    await expect(page.locator("#id-banner")).to_be_visible()
    problems += await serious_violations(page, "register with a sale")
    await page.keyboard.press("F9")
    await expect(page.get_by_role("dialog", name="ID check")).to_be_visible()
    problems += await serious_violations(page, "ID check")
    await page.keyboard.press("Escape")
    today = store_today()
    await page.keyboard.type(licence(dob=years_ago(19, today), expires=today + timedelta(days=700)))
    await expect(page.get_by_role("dialog", name="UNDERAGE")).to_be_visible()
    problems += await serious_violations(page, "ID result")
    await page.keyboard.press("Enter")
    await page.keyboard.press("F1")
    problems += await serious_violations(page, "keys")
    await shot(page, "register-keys")
    await page.keyboard.press("Escape")
    await page.keyboard.press("F2")
    await page.keyboard.type("vodka")
    await page.keyboard.press("Enter")
    await expect(page.locator("#search-results li").first).to_be_visible()
    problems += await serious_violations(page, "search")
    await shot(page, "register-search")
    await page.keyboard.press("Escape")

    await page.get_by_role("button", name=re.compile("Sign out")).click()
    await page.wait_for_url(re.compile(r"/$"))
    await sign_in(page, "admin", register=None)
    for section in ("", "/products", "/stock", "/users", "/stores", "/reports", "/audit", "/outbox"):
        await page.goto(f"/office{section}")
        await expect(page.locator("h1")).to_be_visible()
        await page.wait_for_load_state("networkidle")
        problems += await serious_violations(page, f"office{section or ' overview'}")
        await shot(page, f"office{section.replace('/', '-') or '-overview'}", full_page=True)
    assert problems == [], "\n".join(problems)
