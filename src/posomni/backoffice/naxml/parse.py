"""Reading a pricebook: an NAXML item-maintenance file (`NAXML-MaintenanceRequest`) or the back office's REST
pricebook (JSON). Both become the same `Pricebook` of text values; `pricebook.py` checks and applies it.

XML is parsed with defusedxml only, with every protection on: a file declaring a DTD (`<!DOCTYPE`) is refused
before anything else is read — that is where entity-expansion bombs ("billion laughs") and external entities
(`file:///etc/passwd`, a URL) live — and so is any entity declaration or external reference. Nothing is
fetched, no file is opened. Size is bounded before parsing: the caller refuses a larger file unread.

Elements are matched by local name in the NAXML namespace or in none (back offices send both). Read:

    NAXML-MaintenanceRequest
      MerchandiseCodeMaintenance / MCTDetail     RecordAction@type, MerchandiseCode, MerchandiseCodeDescription,
                                                 TaxStrategyID, SalesRestrictCode
      ItemMaintenance / ITTDetail                RecordAction@type, ItemCode (POSCodeFormat@format, POSCode,
                                                 POSCodeModifier), ITTData (Description, MerchandiseCode,
                                                 RegularSellPrice, SellingUnits, TaxStrategyID,
                                                 SalesRestrictCode, ActiveFlag@value)

A section's own RecordAction is the default of its details; other elements are ignored.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any, Final

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from posomni.backoffice.naxml.schemas import DepartmentRecord, ItemRecord, Pricebook
from posomni.backoffice.naxml.vocabulary import NAMESPACE
from posomni.kit.errors import ValidationFailed

# A whole chain's pricebook is a few tens of megabytes at most.
MAX_BYTES: Final = 64 * 1024 * 1024
_NS: Final = "{" + NAMESPACE + "}"


class PricebookRefused(ValidationFailed):
    """The document as a whole cannot be read: nothing in it is imported."""

    code = "pricebook_refused"
    default_message = "The pricebook cannot be read."

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, details={"reason": reason})
        self.reason = reason


def check_size(size: int, limit: int = MAX_BYTES) -> None:
    if size > limit:
        raise PricebookRefused(
            "too_large", f"The pricebook has {size:,} bytes; at most {limit:,} are read (nothing was imported)."
        )


class _LineTreeBuilder(ET.TreeBuilder):
    """Notes the line each element starts on, so a bad record is reported where it is in the file."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[ET.Element, int] = {}
        self.expat: Any = None

    def start(self, tag: str, attrs: dict[str, str], /) -> ET.Element:
        element = super().start(tag, attrs)
        if self.expat is not None:
            self.lines[element] = int(self.expat.CurrentLineNumber)
        return element


def _local(tag: str) -> str:
    # Another namespace's element keeps its "{uri}" and so matches nothing.
    return tag[len(_NS) :] if tag.startswith(_NS) else tag


def _child(element: ET.Element | None, name: str) -> ET.Element | None:
    if element is None:
        return None
    return next((child for child in element if _local(child.tag) == name), None)


def _text(element: ET.Element | None, name: str) -> str | None:
    child = _child(element, name)
    if child is None:
        return None
    value = (child.text or "").strip()
    return value or None


def _flag(element: ET.Element | None, name: str) -> str | None:
    """`<ActiveFlag value="yes"/>`, or the same as text."""
    child = _child(element, name)
    if child is None:
        return None
    value = (child.get("value") or child.text or "").strip()
    return value or None


def _action(element: ET.Element, default: str) -> str:
    record = _child(element, "RecordAction")
    if record is None:
        return default
    return (record.get("type") or "").strip().lower() or default


def _tree(data: bytes) -> tuple[ET.Element, dict[ET.Element, int]]:
    builder = _LineTreeBuilder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.expat = parser.parser
    try:
        parser.feed(data)
        root = parser.close()
    except DTDForbidden:
        raise PricebookRefused(
            "dtd_forbidden",
            "The file declares a DTD (<!DOCTYPE …>): refused, nothing imported. A pricebook needs none, and DTDs "
            "are how entity-expansion and external-entity attacks are carried.",
        ) from None
    except EntitiesForbidden as exc:
        raise PricebookRefused(
            "entities_forbidden", f"The file declares the entity {exc.name!r}: refused, nothing imported."
        ) from None
    except ExternalReferenceForbidden:
        raise PricebookRefused(
            "external_reference_forbidden", "The file refers to an external resource: refused, nothing imported."
        ) from None
    except ParseError as exc:
        raise PricebookRefused("not_xml", f"The file is not well-formed XML ({exc}); nothing imported.") from None
    return root, builder.lines


def parse_maintenance(data: bytes) -> Pricebook:
    check_size(len(data))
    root, lines = _tree(data)
    if _local(root.tag) != "NAXML-MaintenanceRequest":
        raise PricebookRefused(
            "not_a_maintenance_request",
            f"The root element is {_local(root.tag)!r}, not NAXML-MaintenanceRequest; nothing imported.",
        )
    book = Pricebook(source="naxml")
    for section in root:
        name = _local(section.tag)
        if name not in ("ItemMaintenance", "MerchandiseCodeMaintenance"):
            continue
        table = _child(section, "TableAction")
        if table is not None and (table.get("type") or "").lower() == "initialize":
            book.warnings.append(
                f"{name} (line {lines.get(section, 0)}): TableAction initialize is applied as an update — "
                "what the file does not list is left as it is, not deactivated"
            )
        default = _action(section, "addchange")
        for detail in section:
            if name == "ItemMaintenance" and _local(detail.tag) == "ITTDetail":
                book.items.append(_item(detail, lines.get(detail, 0), default))
            elif name == "MerchandiseCodeMaintenance" and _local(detail.tag) == "MCTDetail":
                book.departments.append(_department(detail, lines.get(detail, 0), default))
    return book


def _item(detail: ET.Element, line: int, default: str) -> ItemRecord:
    code = _child(detail, "ItemCode")
    data = _child(detail, "ITTData")
    fmt = _child(code, "POSCodeFormat")
    return ItemRecord(
        position=line,
        action=_action(detail, default),
        pos_code=_text(code, "POSCode"),
        pos_code_format=None if fmt is None else ((fmt.get("format") or fmt.text or "").strip() or None),
        pos_code_modifier=_flag(code, "POSCodeModifier"),
        description=_text(data, "Description"),
        merchandise_code=_text(data, "MerchandiseCode"),
        regular_sell_price=_text(data, "RegularSellPrice"),
        selling_units=_text(data, "SellingUnits"),
        tax_strategy=_text(data, "TaxStrategyID"),
        sales_restriction=_text(data, "SalesRestrictCode"),
        active=_flag(data, "ActiveFlag"),
    )


def _department(detail: ET.Element, line: int, default: str) -> DepartmentRecord:
    return DepartmentRecord(
        position=line,
        action=_action(detail, default),
        merchandise_code=_text(detail, "MerchandiseCode"),
        description=_text(detail, "MerchandiseCodeDescription"),
        tax_strategy=_text(detail, "TaxStrategyID"),
        sales_restriction=_text(detail, "SalesRestrictCode"),
    )


# --- the REST pricebook (JSON) -------------------------------------------------------------------------------

# JSON field → record field. Values are strings or numbers ("21.99" or 21.99); "active" may be a boolean.
_ITEM_FIELDS: Final = {
    "pos_code": "pos_code", "pos_code_format": "pos_code_format", "pos_code_modifier": "pos_code_modifier",
    "description": "description", "merchandise_code": "merchandise_code",
    "regular_sell_price": "regular_sell_price", "selling_units": "selling_units", "tax_strategy_id": "tax_strategy",
    "sales_restrict_code": "sales_restriction", "active": "active",
}  # fmt: skip
_DEPARTMENT_FIELDS: Final = {
    "merchandise_code": "merchandise_code", "description": "description", "tax_strategy_id": "tax_strategy",
    "sales_restrict_code": "sales_restriction",
}  # fmt: skip


def _scalar(value: object) -> str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str | int | Decimal):
        return str(value).strip() or None
    raise TypeError


def _record_values(raw: dict[str, Any], fields: dict[str, str]) -> tuple[dict[str, str | None], tuple[str, ...]]:
    values: dict[str, str | None] = {}
    invalid: list[str] = []
    for name, attribute in fields.items():
        if raw.get(name) is None:
            continue
        try:
            values[attribute] = _scalar(raw[name])
        except TypeError:
            invalid.append(name)
    return values, tuple(invalid)


def parse_rest(body: bytes) -> Pricebook:
    """`{"items": [{"action": "addchange", "pos_code": "081234000011", …}], "departments": [...]}`."""
    check_size(len(body))
    try:
        # Decimal, not float: "21.99" stays exactly 21.99.
        document = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise PricebookRefused("not_json", "The back office's pricebook is not JSON; nothing imported.") from None
    if not isinstance(document, dict) or not all(
        isinstance(document.get(key, []), list) for key in ("items", "departments")
    ):
        raise PricebookRefused(
            "invalid_pricebook", 'The pricebook is not {"items": [...], "departments": [...]}; nothing imported.'
        )
    book = Pricebook(source="rest")
    for index, raw in enumerate(document.get("departments", []), start=1):
        values, invalid = _record_values(raw if isinstance(raw, dict) else {}, _DEPARTMENT_FIELDS)
        action = str(raw.get("action") or "addchange").lower() if isinstance(raw, dict) else "?"
        book.departments.append(DepartmentRecord(position=index, action=action, invalid=invalid, **values))
    for index, raw in enumerate(document.get("items", []), start=1):
        values, invalid = _record_values(raw if isinstance(raw, dict) else {}, _ITEM_FIELDS)
        action = str(raw.get("action") or "addchange").lower() if isinstance(raw, dict) else "?"
        book.items.append(ItemRecord(position=index, action=action, invalid=invalid, **values))
    return book
