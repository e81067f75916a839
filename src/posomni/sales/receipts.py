"""Receipts: JSON for the screen, HTML for 80 mm paper through the browser's print, plain text, and the ESC/POS
commands a thermal receipt printer takes (the text, the receipt number as a Code 128 barcode, the cut).

Tax is always its own amount; deposits are their own lines; cards show only brand and last four digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.customers.models import Customer
from posomni.kit import code128
from posomni.kit.money import format_cents
from posomni.payments.models import Payment
from posomni.sales.models import Sale
from posomni.stores.models import Register, Store
from posomni.users.models import User

TEXT_WIDTH = 42  # characters on an 80 mm thermal printer with the standard font


@dataclass(frozen=True)
class Receipt:
    data: dict[str, Any]

    @property
    def number(self) -> str:
        return str(self.data["receipt_number"])


async def build(session: AsyncSession, sale: Sale, *, copy: bool = False) -> Receipt:
    store = await session.get(Store, sale.store_id)
    register = await session.get(Register, sale.register_id)
    cashier = await session.get(User, sale.cashier_id)
    assert store is not None and register is not None and cashier is not None
    payments = list(await session.scalars(select(Payment).where(Payment.sale_id == sale.id).order_by(Payment.id)))
    customer = await session.get(Customer, sale.customer_id) if sale.customer_id else None
    moment: datetime = sale.completed_at or sale.created_at
    local = moment.astimezone(ZoneInfo(store.timezone))
    rate = (store.state_tax_rate + store.local_tax_rate) * 100
    data: dict[str, Any] = {
        "receipt_number": sale.receipt_number,
        "kind": sale.kind,
        "status": sale.status,
        "copy": copy,
        "store": {"name": store.name, "address": store.address, "code": store.code},
        "register": register.name,
        "cashier": cashier.full_name.split(" ")[0] if cashier.full_name else cashier.username,
        "date": local.strftime("%Y-%m-%d"),
        "time": local.strftime("%H:%M"),
        "lines": [
            {
                "description": line.description,
                "quantity": line.quantity,
                "unit_price_cents": line.override_price_cents
                if line.override_price_cents is not None
                else line.unit_price_cents,
                "discount_cents": line.discount_cents,
                "deposit_cents": line.deposit_cents,
                "amount_cents": line.line_total_cents - line.tax_cents - line.deposit_cents,
                "price_override": line.override_price_cents is not None,
            }
            for line in sale.lines
        ],
        "subtotal_cents": sale.subtotal_cents,
        "discount_cents": sale.discount_cents,
        "deposit_cents": sale.deposit_cents,
        "tax_cents": sale.tax_cents,
        "tax_label": f"Sales tax {rate.normalize():f}%",
        "total_cents": sale.total_cents,
        "tenders": [
            {
                "tender": p.tender,
                "kind": p.kind,
                "amount_cents": p.amount_cents,
                "tendered_cents": p.tendered_cents,
                "brand": p.card_brand,
                "last4": p.card_last4,
            }
            for p in payments
            if p.status not in ("failed", "voided", "pending")
        ],
        "change_cents": sale.change_cents,
        "loyalty": None
        if customer is None
        else {
            "earned": sale.loyalty_points_earned,
            "redeemed": sale.loyalty_points_redeemed,
            "balance": customer.loyalty_points,
        },
        "age_verified": sale.age_verified,
    }
    return Receipt(data)


def _tender_label(tender: dict[str, Any]) -> str:
    if tender["tender"] == "card":
        brand = (tender.get("brand") or "card").upper()
        return f"{brand} ****{tender.get('last4') or '----'}"
    return str(tender["tender"]).upper()


def _pad(left: str, right: str, width: int = TEXT_WIDTH) -> str:
    left = left[: width - len(right) - 1]
    return left + " " * (width - len(left) - len(right)) + right


def to_text(receipt: Receipt) -> str:
    d = receipt.data
    money = format_cents
    out = [d["store"]["name"].center(TEXT_WIDTH), d["store"]["address"].center(TEXT_WIDTH)]
    if d["copy"]:
        out.append("*** COPY ***".center(TEXT_WIDTH))
    if d["kind"] == "return":
        out.append("*** RETURN ***".center(TEXT_WIDTH))
    if d["status"] == "voided":
        out.append("*** VOIDED ***".center(TEXT_WIDTH))
    out += [_pad(f"{d['date']} {d['time']}", d["receipt_number"]), _pad(d["register"], d["cashier"]), "-" * TEXT_WIDTH]
    for line in d["lines"]:
        out.append(
            _pad(f"{line['quantity']} x {line['description']}", money(line["quantity"] * line["unit_price_cents"]))
        )
        if line["discount_cents"]:
            out.append(_pad("   discount", "-" + money(line["discount_cents"])))
        if line["deposit_cents"]:
            out.append(_pad("   deposit", money(line["deposit_cents"])))
    out += ["-" * TEXT_WIDTH, _pad("Subtotal", money(d["subtotal_cents"]))]
    if d["discount_cents"]:
        out.append(_pad("Discounts", "-" + money(d["discount_cents"])))
    if d["deposit_cents"]:
        out.append(_pad("Deposits", money(d["deposit_cents"])))
    out += [_pad(d["tax_label"], money(d["tax_cents"])), _pad("TOTAL", money(d["total_cents"]))]
    for tender in d["tenders"]:
        sign = "-" if tender["kind"] == "refund" else ""
        out.append(_pad(_tender_label(tender), sign + money(tender["tendered_cents"] or tender["amount_cents"])))
    if d["change_cents"]:
        out.append(_pad("CHANGE", money(d["change_cents"])))
    if d["loyalty"]:
        loyalty = d["loyalty"]
        out.append(_pad("Points earned / balance", f"{loyalty['earned']} / {loyalty['balance']}"))
    out += ["", d["receipt_number"].center(TEXT_WIDTH), "Thank you!".center(TEXT_WIDTH), ""]
    return "\n".join(out)


# ESC/POS commands (Epson's, which receipt printers share).
_INIT = b"\x1b@"  # ESC @: reset the printer
_CODE_PAGE_437 = b"\x1bt\x00"  # ESC t 0: PC437, the code page every ESC/POS printer has
_CENTRE, _LEFT = b"\x1ba\x01", b"\x1ba\x00"  # ESC a n: justification
_BARCODE_STYLE = b"\x1dh\x50" + b"\x1dw\x02" + b"\x1dH\x02"  # GS h 80 dots high, GS w module 2, GS H text below
_CODE128 = b"\x1dk\x49"  # GS k 73 n d1..dn: Code 128; the data starts with "{B" (code set B)
_FEED_AND_CUT = b"\n\n\n\x1dVB\x00"  # GS V 66 0: feed to the cutter and cut (partial)


def to_escpos(receipt: Receipt) -> bytes:
    """The text receipt as ESC/POS bytes, with the receipt number printed as a barcode a return can scan."""
    out = bytearray(_INIT + _CODE_PAGE_437)
    for line in to_text(receipt).split("\n"):
        if line.strip() == receipt.number:
            data = b"{B" + receipt.number.encode("ascii")
            out += _CENTRE + _BARCODE_STYLE + _CODE128 + bytes([len(data)]) + data + b"\n" + _LEFT
        else:
            out += line.encode("cp437", errors="replace") + b"\n"
    return bytes(out + _FEED_AND_CUT)


def to_html(receipt: Receipt) -> str:
    d = receipt.data
    money = format_cents

    def row(left: str, right: str, cls: str = "") -> str:
        return f'<tr class="{cls}"><td>{escape(left)}</td><td class="amount">{escape(right)}</td></tr>'

    rows = []
    for line in d["lines"]:
        rows.append(
            row(f"{line['quantity']} × {line['description']}", money(line["quantity"] * line["unit_price_cents"]))
        )
        if line["discount_cents"]:
            rows.append(row("discount", "-" + money(line["discount_cents"]), "sub"))
        if line["deposit_cents"]:
            rows.append(row("deposit", money(line["deposit_cents"]), "sub"))
    totals = [row("Subtotal", money(d["subtotal_cents"]))]
    if d["discount_cents"]:
        totals.append(row("Discounts", "-" + money(d["discount_cents"])))
    if d["deposit_cents"]:
        totals.append(row("Deposits", money(d["deposit_cents"])))
    totals += [row(d["tax_label"], money(d["tax_cents"])), row("TOTAL", money(d["total_cents"]), "total")]
    for tender in d["tenders"]:
        sign = "-" if tender["kind"] == "refund" else ""
        totals.append(row(_tender_label(tender), sign + money(tender["tendered_cents"] or tender["amount_cents"])))
    if d["change_cents"]:
        totals.append(row("CHANGE", money(d["change_cents"]), "total"))
    if d["loyalty"]:
        totals.append(row("Points earned / balance", f"{d['loyalty']['earned']} / {d['loyalty']['balance']}"))
    marks = "".join(
        f'<p class="mark">{label}</p>'
        for flag, label in ((d["copy"], "COPY"), (d["kind"] == "return", "RETURN"), (d["status"] == "voided", "VOIDED"))
        if flag
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Receipt {escape(d['receipt_number'])}</title>"
        '<link rel="stylesheet" href="/static/receipt.css"></head><body class="receipt">'
        f"<header><h1>{escape(d['store']['name'])}</h1><p>{escape(d['store']['address'])}</p>{marks}"
        f"<p>{escape(d['date'])} {escape(d['time'])} · {escape(d['register'])} · {escape(d['cashier'])}</p></header>"
        f'<table class="lines">{"".join(rows)}</table><table class="totals">{"".join(totals)}</table>'
        f'<div class="barcode">{code128.svg(d["receipt_number"])}</div>'
        "<footer><p>Thank you!</p></footer></body></html>"
    )
