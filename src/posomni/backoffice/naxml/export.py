"""NAXML movement reports of one business day of one store: ISM (item sales) and MCM (merchandise code, i.e.
department, sales), as XML for the back office's file drop and as JSON for the REST API.

The output is a function of the day's sales alone: details sorted, no clock time anywhere (the header holds
the business date only), money as decimal dollars with two places in the XML and integer cents in the JSON.
The totals are defined in `movement.py`; the elements emitted, and why, in docs/back-office.md.
"""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni import __version__
from posomni.backoffice.naxml.movement import DayMovement, ItemMovement, Totals, day_movement
from posomni.backoffice.naxml.vocabulary import (
    NAMESPACE,
    PLU_FORMAT,
    VENDOR_NAME,
    VERSION,
    dollars,
    merchandise_code,
    pos_code,
)
from posomni.kit.errors import NotFound, ValidationFailed
from posomni.stores.models import Store


class MovementType(enum.StrEnum):
    ISM = "ISM"
    MCM = "MCM"


class StoreRequired(ValidationFailed):
    code = "store_required"
    default_message = "There are several stores: say which one (--store CODE)."


class UnknownStore(NotFound):
    code = "unknown_store"
    default_message = "No store has that code."


async def resolve_store(session: AsyncSession, code: str | None) -> Store:
    """The store with `code`, or the only store when no code is given."""
    if code:
        store = await session.scalar(select(Store).where(Store.code == code))
        if store is None:
            raise UnknownStore(details={"store": code})
        return store
    stores = list(await session.scalars(select(Store).order_by(Store.code).limit(2)))
    if len(stores) != 1:
        raise StoreRequired(details={"stores": [s.code for s in stores]})
    return stores[0]


async def load(session: AsyncSession, store: Store, business_date: date) -> DayMovement:
    return await day_movement(session, store.id, store.code, business_date)


# --- XML -----------------------------------------------------------------------------------------------------


def _text(parent: ET.Element, tag: str, value: str | int) -> ET.Element:
    child = ET.SubElement(parent, tag)
    child.text = str(value)
    return child


def _item_code(parent: ET.Element, item: ItemMovement) -> None:
    code = ET.SubElement(parent, "ItemCode")
    fmt, value = pos_code(item.gtin) if item.gtin else (PLU_FORMAT, item.sku)
    ET.SubElement(code, "POSCodeFormat", {"format": fmt})
    _text(code, "POSCode", value)
    # Packs have barcodes of their own here, never a modifier on the single's code.
    _text(code, "POSCodeModifier", "0")


def _sales_totals(parent: ET.Element, tag: str, totals: Totals, *, sales_first: bool) -> None:
    element = ET.SubElement(parent, tag)
    sales = (("SalesQuantity", totals.sales_quantity), ("SalesAmount", dollars(totals.sales_cents)))
    rest = (
        ("DiscountAmount", dollars(totals.discount_cents)),
        ("DiscountCount", totals.discount_count),
        ("PromotionAmount", dollars(totals.promotion_cents)),
        ("PromotionCount", totals.promotion_count),
        ("RefundAmount", dollars(totals.refund_cents)),
        ("RefundCount", totals.refund_count),
    )
    # ISMSalesTotals opens with the sales; MCMSalesTotals lists them after the refunds (the vocabulary's order).
    for tag_name, value in (*sales, *rest) if sales_first else (*rest, *sales):
        _text(element, tag_name, value)
    _text(element, "TransactionCount", totals.transaction_count)
    if not sales_first:
        # No open-department (price keyed on a department key) sales exist here: every line is an item.
        _text(element, "OpenDepartmentSalesAmount", dollars(0))
        _text(element, "OpenDepartmentTransactionCount", 0)


def _movement_header(parent: ET.Element, business_date: date) -> None:
    header = ET.SubElement(parent, "MovementHeader")
    day = business_date.isoformat()
    # One report per business day: sequence 1, primary period 2 (the day), no secondary period.
    for tag, value in (
        ("ReportSequenceNumber", "1"), ("PrimaryReportPeriod", "2"), ("SecondaryReportPeriod", "0"),
        ("BusinessDate", day), ("BeginDate", day), ("BeginTime", "00:00:00"), ("EndDate", day),
        ("EndTime", "23:59:59"),
    ):  # fmt: skip
        _text(header, tag, value)


def _item_key(item: ItemMovement) -> tuple[str, str]:
    return (pos_code(item.gtin)[1] if item.gtin else item.sku), item.sku


def render_xml(movement: DayMovement, kind: MovementType, *, vendor_version: str = __version__) -> bytes:
    """The report as UTF-8 bytes, the same bytes for the same sales."""
    # The default namespace as a plain attribute: ElementTree's prefix registry is process-wide state.
    root = ET.Element("NAXML-MovementReport", {"xmlns": NAMESPACE, "version": VERSION})
    header = ET.SubElement(root, "TransmissionHeader")
    _text(header, "StoreLocationID", movement.store_code)
    _text(header, "VendorName", VENDOR_NAME)
    _text(header, "VendorModelVersion", vendor_version)
    if kind is MovementType.ISM:
        report = ET.SubElement(root, "ItemSalesMovement")
        _movement_header(report, movement.business_date)
        for item in sorted(movement.items, key=_item_key):
            detail = ET.SubElement(report, "ISMDetail")
            _item_code(detail, item)
            _text(detail, "ItemID", item.sku)
            _text(detail, "Description", item.description)
            _text(detail, "MerchandiseCode", merchandise_code(item.category_code))
            _text(detail, "SellingUnits", item.selling_units)
            for price in sorted(item.prices):
                summary = ET.SubElement(detail, "ISMSellPriceSummary")
                _text(summary, "ActualSalesPrice", dollars(price))
                _sales_totals(summary, "ISMSalesTotals", item.prices[price], sales_first=True)
    else:
        report = ET.SubElement(root, "MerchandiseCodeMovement")
        _movement_header(report, movement.business_date)
        for department in sorted(movement.departments, key=lambda d: merchandise_code(d.category_code)):
            detail = ET.SubElement(report, "MCMDetail")
            _text(detail, "MerchandiseCode", merchandise_code(department.category_code))
            _text(detail, "MerchandiseCodeDescription", department.name)
            _sales_totals(detail, "MCMSalesTotals", department.totals, sales_first=False)
    ET.indent(root, space="  ")
    data: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return data + b"\n"


# --- JSON ----------------------------------------------------------------------------------------------------


def _totals_json(totals: Totals) -> dict[str, int]:
    return {
        "sales_quantity": totals.sales_quantity, "sales_amount_cents": totals.sales_cents,
        "discount_amount_cents": totals.discount_cents, "discount_count": totals.discount_count,
        "promotion_amount_cents": totals.promotion_cents, "promotion_count": totals.promotion_count,
        "refund_amount_cents": totals.refund_cents, "refund_count": totals.refund_count,
        "transaction_count": totals.transaction_count,
    }  # fmt: skip


def render_json(movement: DayMovement, kind: MovementType) -> dict[str, Any]:
    """The same report for the REST API: the XML's content with snake_case names and amounts in cents."""
    document: dict[str, Any] = {
        "type": f"movement.{kind.value.lower()}",
        "store": movement.store_code,
        "business_date": movement.business_date.isoformat(),
    }
    if kind is MovementType.ISM:
        items = []
        for item in sorted(movement.items, key=_item_key):
            fmt, value = pos_code(item.gtin) if item.gtin else (PLU_FORMAT, item.sku)
            items.append({
                "pos_code_format": fmt, "pos_code": value, "item_id": item.sku, "description": item.description,
                "merchandise_code": merchandise_code(item.category_code), "selling_units": item.selling_units,
                "prices": [
                    {"actual_sales_price_cents": price, **_totals_json(item.prices[price])}
                    for price in sorted(item.prices)
                ],
            })  # fmt: skip
        document["items"] = items
    else:
        document["departments"] = [
            {"merchandise_code": merchandise_code(d.category_code), "description": d.name, **_totals_json(d.totals)}
            for d in sorted(movement.departments, key=lambda d: merchandise_code(d.category_code))
        ]
    return document
