"""The browser keeps the Secure session cookie the service sets outside development (Chromium counts loopback as
a secure context), and the page signs in and works with it."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.browser.support import sign_in


async def test_the_browser_holds_the_secure_strict_session_cookie_and_uses_it(page: Page) -> None:
    await sign_in(page, "cashier")
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session, csrf = cookies["posomni_session"], cookies["posomni_csrf"]
    assert (session["secure"], session["httpOnly"], session["sameSite"]) == (True, True, "Strict")
    assert (csrf["secure"], csrf["httpOnly"], csrf["sameSite"]) == (True, False, "Strict")
    # A reload is authenticated by the cookie alone: the register stays open instead of going back to sign-in.
    await page.reload()
    await expect(page).to_have_url(re.compile(r"/register"))
    me = await page.evaluate("fetch('/auth/me', {credentials: 'same-origin'}).then(r => r.status)")
    assert me == 200
