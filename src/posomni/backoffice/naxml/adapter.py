"""From pricebook records to what the catalog takes: rows for the CSV importer (`catalog.importer`), which does
the item validation, the writes, the price history and the `price.changed` messages, and department plans.

Mapping (docs/back-office.md has the table):

- an item is found by its barcode (POSCode → GTIN-14); a new item gets its GTIN-14 as SKU;
- Description → name; MerchandiseCode → category (`vocabulary.category_code`); RegularSellPrice → price;
  TaxStrategyID → tax class (through `tax_strategies`, or a tax class name as is); SalesRestrictCode → age
  restriction ("0": none, 18–99: the minimum age); ActiveFlag → active; SellingUnits must be 1 for a new item
  and the pack size of an existing one (packs and their base are set up in the catalog, not by the pricebook);
- absent values keep what the product has (a new product takes its category's defaults);
- delete deactivates: products are never removed, sales and price history refer to them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Final

from posomni.backoffice.naxml.schemas import ACTIONS, Action, DepartmentRecord, ItemRecord
from posomni.backoffice.naxml.vocabulary import category_code, dollars
from posomni.catalog.barcodes import BarcodeError, BarcodeFormat, BarcodeKind, parse
from posomni.catalog.importer import KNOWN
from posomni.catalog.models import Category, Product

# NAXML POSCodeFormat → the barcode format to expect; None: whatever the length says.
_FORMATS: Final[dict[str, BarcodeFormat | None]] = {
    "upca": BarcodeFormat.UPC_A, "upce": BarcodeFormat.UPC_E, "ean8": BarcodeFormat.EAN_8,
    "ean13": BarcodeFormat.EAN_13, "gtin": None, "gtin14": BarcodeFormat.GTIN_14, "rss14": BarcodeFormat.GTIN_14,
}  # fmt: skip
_TRUE: Final = frozenset({"yes", "y", "true", "1"})
_FALSE: Final = frozenset({"no", "n", "false", "0"})
_NO_RESTRICTION: Final = frozenset({"0", "none", "no"})
_NAME_MAX: Final = 100
_BAD_CODE: Final = "{!r} is not a department code: digits, or letters, digits and _"

# How each source spells a record's fields, for the messages.
FIELD_NAMES: Final = {
    "naxml": {
        "action": "RecordAction", "pos_code": "POSCode", "pos_code_format": "POSCodeFormat",
        "pos_code_modifier": "POSCodeModifier", "description": "Description", "merchandise_code": "MerchandiseCode",
        "regular_sell_price": "RegularSellPrice", "selling_units": "SellingUnits", "tax_strategy": "TaxStrategyID",
        "sales_restriction": "SalesRestrictCode", "active": "ActiveFlag",
        "department_description": "MerchandiseCodeDescription",
    },
    "rest": {
        "action": "action", "pos_code": "pos_code", "pos_code_format": "pos_code_format",
        "pos_code_modifier": "pos_code_modifier", "description": "description", "merchandise_code": "merchandise_code",
        "regular_sell_price": "regular_sell_price", "selling_units": "selling_units",
        "tax_strategy": "tax_strategy_id", "sales_restriction": "sales_restrict_code", "active": "active",
        "department_description": "description",
    },
}  # fmt: skip
# The importer's column → the record field it came from.
COLUMN_FIELDS: Final = {
    "sku": "pos_code", "barcode": "pos_code", "name": "description", "category": "merchandise_code",
    "price": "regular_sell_price", "base_sku": "selling_units", "units_per_pack": "selling_units",
    "tax_class": "tax_strategy", "age_restricted": "sales_restriction", "min_age": "sales_restriction",
    "active": "active",
}  # fmt: skip


@dataclass(frozen=True)
class RecordError:
    position: int
    # "item" or "department".
    record: str
    # The item's code or the department's merchandise code, as the source wrote it.
    key: str
    field: str
    code: str
    message: str


@dataclass
class Context:
    """What the catalog holds that the records are checked against."""

    categories: dict[str, Category]
    # GTIN-14 → the product holding it, for the file's codes only.
    owners: dict[str, Product]
    skus: dict[int, str]
    tax_classes: frozenset[str]
    tax_strategies: dict[str, str]


@dataclass
class ItemRow:
    record: ItemRecord
    values: dict[str, str]
    # A delete of a product that is active now.
    deactivates: bool = False


@dataclass
class DepartmentPlan:
    record: DepartmentRecord
    action: Action
    code: str
    existing: Category | None
    name: str | None = None
    tax_class: str | None = None
    age: tuple[bool, int | None] | None = None


@dataclass
class Plan:
    rows: list[ItemRow] = field(default_factory=list)
    departments: list[DepartmentPlan] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def where(source: str, record: str, position: int) -> str:
    """A record's place as its source counts: a line of the file, or an index in the REST answer's list."""
    return f"line {position}" if source == "naxml" else f"{record} {position}"


class _Check:
    """Collects the problems of one record instead of stopping at the first."""

    def __init__(self, plan: Plan, source: str, record: str, position: int, key: str) -> None:
        self.plan, self.names, self.record, self.position, self.key = plan, FIELD_NAMES[source], record, position, key
        self.source = source
        self.failed = False

    def error(self, attribute: str, code: str, message: str) -> None:
        self.failed = True
        name = self.names.get(attribute, attribute)
        self.plan.errors.append(RecordError(self.position, self.record, self.key, name, code, f"{name}: {message}"))

    def action(self, text: str) -> Action | None:
        action = ACTIONS.get(text)
        if action is None:
            self.error("action", "invalid_action", f"{text!r} is not addchange, change or delete")
        return action

    def tax_class(self, value: str | None, context: Context) -> str | None:
        if value is None:
            return None
        tax_class = context.tax_strategies.get(value, value)
        if tax_class not in context.tax_classes:
            known = ", ".join(sorted(context.tax_classes))
            self.error(
                "tax_strategy", "unknown_tax_strategy",
                f"{value!r} is no tax class here ({known}); map the back office's id with --tax-strategy ID=CLASS",
            )  # fmt: skip
            return None
        return tax_class

    def age(self, value: str | None) -> tuple[bool, int | None] | None:
        if value is None:
            return None
        if value.lower() in _NO_RESTRICTION:
            return False, None
        if value.isdigit() and 18 <= int(value) <= 99:
            return True, int(value)
        self.error("sales_restriction", "unknown_sales_restriction", f"{value!r}: use 0 (none) or a minimum age 18–99")
        return None

    def flag(self, value: str | None) -> str:
        if value is None:
            return ""
        if value.lower() in _TRUE or value.lower() in _FALSE:
            return "true" if value.lower() in _TRUE else "false"
        self.error("active", "invalid_flag", f"{value!r} is not yes or no")
        return ""


def _gtin(check: _Check, record: ItemRecord) -> str | None:
    if record.pos_code is None:
        check.error("pos_code", "required", "the item's code is required")
        return None
    modifier = record.pos_code_modifier
    if modifier is not None and not (modifier.isdigit() and int(modifier) == 0):
        check.error(
            "pos_code_modifier", "unsupported_modifier",
            f"{modifier!r}: packs have barcodes of their own here; only modifier 0 is taken",
        )  # fmt: skip
        return None
    fmt_text = (record.pos_code_format or "").lower()
    if fmt_text == "plu":
        check.error("pos_code_format", "unsupported_code_format", "PLU codes are not taken: items need a GS1 barcode")
        return None
    if fmt_text and fmt_text not in _FORMATS:
        check.error("pos_code_format", "invalid_code_format", f"{record.pos_code_format!r} is not a known format")
        return None
    try:
        barcode = parse(record.pos_code, expected=_FORMATS.get(fmt_text))
    except BarcodeError as exc:
        check.error("pos_code", exc.code, f"{record.pos_code!r}: {exc.message}")
        return None
    if barcode.kind is BarcodeKind.COUPON:
        check.error("pos_code", "coupon_not_a_product", f"{record.pos_code!r} is a coupon, not a product")
        return None
    return barcode.gtin14


def _units(check: _Check, record: ItemRecord, current: Product | None) -> int | None:
    """The units per pack the row keeps: the product's own; a pricebook never makes or unmakes packs."""
    units = 1
    if record.selling_units is not None:
        try:
            number = Decimal(record.selling_units)
        except InvalidOperation:
            number = Decimal(-1)
        if not number.is_finite() or number != number.to_integral_value() or number < 1:
            check.error("selling_units", "invalid_selling_units", f"{record.selling_units!r} is not a whole number ≥ 1")
            return None
        units = int(number)
    expected = current.units_per_pack if current is not None else 1
    if record.selling_units is not None and units != expected:
        what = f"the product is sold by {expected}" if current is not None else "a new item is a single"
        check.error(
            "selling_units", "selling_units_mismatch",
            f"{units}: {what}; packs and their base unit are set up in the catalog",
        )  # fmt: skip
        return None
    return expected


def _existing_values(product: Product, context: Context, categories_by_id: dict[int, str]) -> dict[str, str]:
    return {
        "sku": product.sku, "name": product.name, "brand": product.brand, "size": product.size,
        "category": categories_by_id[product.category_id], "price": dollars(product.price_cents),
        "base_sku": context.skus.get(product.base_product_id or 0, ""), "units_per_pack": str(product.units_per_pack),
    }  # fmt: skip


def plan_items(plan: Plan, source: str, records: list[ItemRecord], context: Context) -> None:
    categories_by_id = {c.id: c.code for c in context.categories.values()}
    for record in records:
        check = _Check(plan, source, "item", record.position, record.pos_code or "")
        for bad in record.invalid:
            check.error(bad, "invalid_value", "expected text or a number")
        action = check.action(record.action)
        gtin = _gtin(check, record)
        if action is None or gtin is None or check.failed:
            continue
        current = context.owners.get(gtin)
        if action is Action.DELETE:
            if current is None:
                at = where(source, "item", record.position)
                plan.warnings.append(f"{at}: item {record.pos_code} is not in the catalog; nothing to delete")
            else:
                values = {**_existing_values(current, context, categories_by_id), "barcode": gtin, "active": "false"}
                plan.rows.append(ItemRow(record, values, deactivates=current.is_active))
            continue
        if action is Action.CHANGE and current is None:
            check.error("pos_code", "unknown_item", f"{record.pos_code} is not in the catalog: use addchange")
            continue
        values = _existing_values(current, context, categories_by_id) if current is not None else {"sku": gtin}
        if record.description is not None:
            # One line: whitespace runs (a newline in a description) become one space.
            values["name"] = " ".join(record.description.split())
        if record.merchandise_code is not None:
            code = category_code(record.merchandise_code)
            if code is None:
                check.error("merchandise_code", "invalid_merchandise_code", _BAD_CODE.format(record.merchandise_code))
            values["category"] = code or ""
        if record.regular_sell_price is not None:
            values["price"] = record.regular_sell_price
        units = _units(check, record, current)
        tax_class = check.tax_class(record.tax_strategy, context)
        age = check.age(record.sales_restriction)
        active = check.flag(record.active)
        if check.failed or units is None:
            continue
        values["units_per_pack"] = str(units)
        values.update(barcode=gtin, tax_class=tax_class or "", active=active)
        if age is not None:
            values["age_restricted"] = "true" if age[0] else "false"
            values["min_age"] = "" if age[1] is None else str(age[1])
        plan.rows.append(ItemRow(record, values))


def plan_departments(plan: Plan, source: str, records: list[DepartmentRecord], context: Context) -> None:
    seen: dict[str, int] = {}
    for record in records:
        check = _Check(plan, source, "department", record.position, record.merchandise_code or "")
        for bad in record.invalid:
            check.error(bad, "invalid_value", "expected text or a number")
        action = check.action(record.action)
        code = None
        if record.merchandise_code is None:
            check.error("merchandise_code", "required", "the department's code is required")
        else:
            code = category_code(record.merchandise_code)
            if code is None:
                check.error("merchandise_code", "invalid_merchandise_code", _BAD_CODE.format(record.merchandise_code))
            elif code in seen:
                check.error(
                    "merchandise_code", "duplicate_department", f"also at {where(source, 'department', seen[code])}"
                )
            else:
                seen[code] = record.position
        name = " ".join(record.description.split()) if record.description is not None else None
        if name is not None and len(name) > _NAME_MAX:
            check.error("department_description", "too_long", f"more than {_NAME_MAX} characters")
        tax_class, age = check.tax_class(record.tax_strategy, context), check.age(record.sales_restriction)
        if action is None or code is None or check.failed:
            continue
        existing = context.categories.get(code)
        if action is Action.DELETE and existing is None:
            at = where(source, "department", record.position)
            plan.warnings.append(f"{at}: department {record.merchandise_code} is unknown; nothing to delete")
            continue
        if action is Action.CHANGE and existing is None:
            unknown = f"{record.merchandise_code} is unknown: use addchange"
            check.error("merchandise_code", "unknown_department", unknown)
            continue
        if action is not Action.DELETE and existing is None and not name:
            check.error("department_description", "required", "a new department needs its description")
            continue
        plan.departments.append(DepartmentPlan(record, action, code, existing, name, tax_class, age))


def csv_text(rows: list[ItemRow]) -> str:
    """The rows in the importer's CSV format (its own reader then parses them as it parses any CSV)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(KNOWN)
    for row in rows:
        writer.writerow([row.values.get(column, "") for column in KNOWN])
    return out.getvalue()
