"""Helpers for the browser tests: a real server on loopback, signing in, scanning like a scanner, licences."""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import uvicorn
from playwright.async_api import Page, expect

from posomni.app import create_app
from posomni.config import Settings
from tests.support import PASSWORDS, PINS

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screens"
AAMVA = ROOT / "tests" / "data" / "aamva"

# Demo products (src/posomni/seed/products.csv) as a scanner sends their UPC-A barcodes.
VODKA = "081234000011"  # Tito's 750 mL, $21.99, 21+
COKE = "081234000608"  # Coca-Cola 2 L, $3.29
CHIPS = "081234000653"  # Lay's 8 oz, $4.79
LIME = "081234000691"  # a lime, $0.50, tax exempt


@dataclass
class LiveServer:
    base_url: str
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(settings: Settings) -> LiveServer:
    """The app under uvicorn in a thread of its own (its own event loop), on a free loopback port."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False, ws="none",
        lifespan="on",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", settings, server, thread)


async def shot(page: Page, name: str, *, full_page: bool = False) -> None:
    """A screenshot of the screen as it is, kept in test-artifacts/ for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


async def sign_in(page: Page, username: str, register: str | None = "1") -> None:
    await page.goto("/")
    form = page.get_by_role("tabpanel", name="Password")
    await form.get_by_label("Username", exact=True).fill(username)
    await form.get_by_label("Password", exact=True).fill(PASSWORDS[username])
    await form.get_by_label("This terminal").select_option(register or "")
    await form.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/(register|office)"))


async def switch_cashier(page: Page, username: str) -> None:
    await page.keyboard.press("Alt+S")
    await page.wait_for_url(re.compile(r"mode=pin"))
    form = page.get_by_role("tabpanel", name="Switch cashier (PIN)")
    await form.get_by_label("Username", exact=True).fill(username)
    await form.get_by_label("PIN").fill(PINS[username])
    await form.get_by_role("button", name="Switch cashier").click()
    await page.wait_for_url(re.compile(r"/register"))


async def open_shift(page: Page, dollars: str) -> None:
    dialog = page.get_by_role("dialog", name="Open the shift")
    await expect(dialog).to_be_visible()
    await page.keyboard.type(dollars)
    await page.keyboard.press("Enter")
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#shift-status")).to_contain_text("open")


async def scan(page: Page, code: str) -> None:
    """What a keyboard-wedge scanner does: the digits, then Enter, into whatever has the focus."""
    await expect(page.locator("#scan")).to_be_focused()
    await page.keyboard.type(code)
    await page.keyboard.press("Enter")


def licence(dob: date, expires: date) -> str:
    """The AAMVA standard's own sample (s1, Virginia) with its date of birth and expiry replaced: the dates
    keep their length, so the header's subfile offsets stay right. Control characters kept, byte for byte."""
    raw = (AAMVA / "s1.txt").read_bytes().decode("ascii")
    raw = re.sub(r"\nDBB\d{8}", f"\nDBB{dob:%m%d%Y}", raw)
    raw = re.sub(r"\nDBA\d{8}", f"\nDBA{expires:%m%d%Y}", raw)
    assert raw.startswith("@\n\x1e\r")
    assert "\nDBB" in raw
    return raw


def store_today() -> date:
    """Today in the demo store (America/New_York): the date ID checks are decided on."""
    return datetime.now(ZoneInfo("America/New_York")).date()


def years_ago(years: int, today: date) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)
