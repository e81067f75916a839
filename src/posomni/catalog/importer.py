"""`posomni catalog import`: a CSV catalog from another system, validated row by row, created or updated by SKU.

Columns (the seed's `products.csv`, plus optional extras): sku, name, brand, size, category (code), price, cost
(dollars, "21.99"), barcode (several separated by "|"), base_sku, units_per_pack, tax_class, deposit_class,
stock, reorder_point; optional reorder_quantity, age_restricted, min_age, attributes (a JSON object), active.

Every row is checked before anything is written, and every problem is reported with its line number (the
header is line 1). With any problem nothing is imported, unless the caller skips invalid rows (a pack whose
base row is invalid is then skipped too). Blank optional cells mean "category default" for a new product and
"unchanged" for an existing one.

`stock` sets the store's on-hand quantity of a base product: opening stock is a `receive` movement, a later
difference an `adjust` movement, so the ledger still adds up. The writer is in `import_writer.py`.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.catalog.barcodes import BarcodeError, BarcodeKind, parse
from posomni.catalog.models import Barcode, Category, Product
from posomni.inventory.models import StockLevel, StockMovement
from posomni.kit.money import Money

REQUIRED: Final = ("sku", "name", "category", "price")
KNOWN: Final = (
    "sku", "name", "brand", "size", "category", "price", "cost", "barcode", "base_sku", "units_per_pack",
    "tax_class", "deposit_class", "stock", "reorder_point", "reorder_quantity", "age_restricted", "min_age",
    "attributes", "active",
)  # fmt: skip
MAX_CENTS: Final = 10_000_000
MAX_ERRORS_SHOWN: Final = 10_000
_TRUE: Final = frozenset({"true", "yes", "y", "1"})
_FALSE: Final = frozenset({"false", "no", "n", "0"})
_LIMITS: Final = {"sku": 64, "name": 200, "brand": 100, "size": 40, "tax_class": 32, "deposit_class": 32}


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    sku: str
    field: str
    code: str
    message: str


@dataclass
class Row:
    """One valid row, parsed: money in cents, barcodes as GTIN-14s. None means "not given"."""

    line: int
    sku: str
    name: str
    brand: str
    size: str
    category: Category
    price_cents: int
    cost_cents: int | None
    gtins: list[str]
    base_sku: str | None
    units_per_pack: int
    tax_class: str | None
    deposit_class: str | None
    stock: int | None
    reorder_point: int | None
    reorder_quantity: int | None
    age_restricted: bool | None
    min_age: int | None
    attributes: dict[str, Any] | None
    active: bool | None


@dataclass
class Existing:
    """What the database already holds that the rows are checked against."""

    products: dict[str, Product]
    barcode_owner: dict[str, int]
    bases_with_packs: set[int]
    with_stock_history: set[int]
    categories: dict[str, Category]


@dataclass
class Validation:
    rows: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    total: int = 0

    @property
    def invalid_lines(self) -> list[int]:
        return sorted({e.line for e in self.errors})


class _RowProblems(Exception):
    pass


class _Reader:
    """Parses one CSV row, collecting every problem instead of stopping at the first."""

    def __init__(self, line: int, raw: dict[str, str | None]) -> None:
        self.line = line
        self.raw = raw
        self.sku = (raw.get("sku") or "").strip()
        self.errors: list[RowError] = []

    def error(self, column: str, code: str, message: str) -> None:
        self.errors.append(RowError(self.line, self.sku, column, code, message))

    def text(self, column: str, *, required: bool = False) -> str:
        value = (self.raw.get(column) or "").strip()
        if required and not value:
            self.error(column, "required", f"{column} is required")
        limit = _LIMITS.get(column)
        if limit is not None and len(value) > limit:
            self.error(column, "too_long", f"{column} has more than {limit} characters")
        return value

    def cents(self, column: str, *, required: bool = False) -> int | None:
        value = self.text(column, required=required)
        if not value:
            return None
        try:
            cents = Money.parse(value).cents
        except ValueError:
            self.error(column, "invalid_money", f"{column} {value!r} is not an amount like 21.99")
            return None
        if not 0 <= cents <= MAX_CENTS:
            self.error(column, "invalid_money", f"{column} must be between 0.00 and {MAX_CENTS // 100:,}.00")
            return None
        return cents

    def whole(self, column: str, *, minimum: int = 0, maximum: int = 1_000_000) -> int | None:
        value = self.text(column)
        if not value:
            return None
        try:
            number = int(value)
        except ValueError:
            self.error(column, "invalid_number", f"{column} {value!r} is not a whole number")
            return None
        if not minimum <= number <= maximum:
            self.error(column, "invalid_number", f"{column} must be between {minimum} and {maximum}")
            return None
        return number

    def flag(self, column: str) -> bool | None:
        value = self.text(column).lower()
        if not value:
            return None
        if value in _TRUE or value in _FALSE:
            return value in _TRUE
        self.error(column, "invalid_flag", f"{column} {value!r} is not true or false")
        return None

    def slug(self, column: str) -> str | None:
        value = self.text(column)
        if value and not (value[0].isalpha() and all(c.isalnum() or c == "_" for c in value) and value.islower()):
            self.error(column, "invalid_code", f"{column} {value!r}: lower-case letters, digits and _")
        return value or None

    def attributes(self) -> dict[str, Any] | None:
        value = self.text("attributes")
        if not value:
            return None
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or not all(
            isinstance(v, str | int | bool) and 1 <= len(k) <= 32 for k, v in parsed.items()
        ):
            self.error("attributes", "invalid_attributes", 'attributes is a JSON object like {"vintage": "2021"}')
            return None
        return parsed


def read_rows(text: str) -> tuple[list[str], list[tuple[int, dict[str, str | None]]]]:
    """(header, [(line number, row)]); the line number is where the row starts, counting the header as 1."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, str | None]]] = []
    start = reader.line_num + 1
    for raw in reader:
        rows.append((start, {k: v for k, v in raw.items() if isinstance(k, str)}))
        start = reader.line_num + 1
    return header, rows


async def load_existing(session: AsyncSession) -> Existing:
    products = {p.sku: p for p in await session.scalars(select(Product))}
    owners = dict((await session.execute(select(Barcode.gtin, Barcode.product_id))).all())
    bases = set(
        await session.scalars(select(Product.base_product_id).where(Product.base_product_id.is_not(None)).distinct())
    )
    moved = set(await session.scalars(select(StockMovement.product_id).distinct()))
    stocked = set(await session.scalars(select(StockLevel.product_id).where(StockLevel.on_hand != 0).distinct()))
    categories = {c.code.lower(): c for c in await session.scalars(select(Category))}
    return Existing(products, owners, {b for b in bases if b is not None}, moved | stocked, categories)


def _parse(reader: _Reader, existing: Existing, seen_gtins: dict[str, tuple[int, str]]) -> Row | None:
    sku = reader.text("sku", required=True)
    name = reader.text("name", required=True)
    brand, size = reader.text("brand"), reader.text("size")
    code = reader.text("category", required=True)
    category = existing.categories.get(code.lower())
    if code and category is None:
        reader.error("category", "unknown_category", f"unknown category {code!r}")
    price = reader.cents("price", required=True)
    cost = reader.cents("cost")
    units = reader.whole("units_per_pack", minimum=1, maximum=10_000)
    base_sku = reader.text("base_sku") or None
    gtins: list[str] = []
    for code_text in filter(None, (part.strip() for part in reader.text("barcode").split("|"))):
        try:
            barcode = parse(code_text)
        except BarcodeError as exc:
            reader.error("barcode", exc.code, f"barcode {code_text!r}: {exc.message}")
            continue
        if barcode.kind is BarcodeKind.COUPON:
            reader.error("barcode", "coupon_not_a_product", f"barcode {code_text!r} is a coupon, not a product")
            continue
        first = seen_gtins.get(barcode.gtin14)
        if first is not None and first[1] != sku:
            reader.error("barcode", "duplicate_barcode", f"barcode {code_text!r} is also on line {first[0]}")
            continue
        owner = existing.barcode_owner.get(barcode.gtin14)
        current = existing.products.get(sku)
        if owner is not None and (current is None or current.id != owner):
            reader.error("barcode", "duplicate_barcode", f"barcode {code_text!r} belongs to another product")
            continue
        seen_gtins.setdefault(barcode.gtin14, (reader.line, sku))
        if barcode.gtin14 not in gtins:
            gtins.append(barcode.gtin14)
    stock, reorder = reader.whole("stock"), reader.whole("reorder_point")
    reorder_quantity = reader.whole("reorder_quantity")
    restricted, min_age = reader.flag("age_restricted"), reader.whole("min_age", maximum=99)
    if restricted is False and min_age is not None:
        reader.error("min_age", "invalid_product", "min_age applies to age-restricted products only")
    units_per_pack = units or 1
    tax_class, deposit_class = reader.slug("tax_class"), reader.slug("deposit_class")
    attributes, active = reader.attributes(), reader.flag("active")
    if base_sku is None and units_per_pack != 1:
        reader.error("units_per_pack", "invalid_pack", "a product without base_sku is a single: units_per_pack 1")
    if base_sku is not None:
        if base_sku == sku:
            reader.error("base_sku", "invalid_pack", "a pack cannot be its own base")
        if units_per_pack < 2:
            reader.error("units_per_pack", "invalid_pack", "a pack holds at least 2 base units")
        if any(value for value in (stock, reorder, reorder_quantity)):
            reader.error("stock", "stock_on_pack", "stock is kept on the base product, not on a pack")
        current = existing.products.get(sku)
        if current is not None and current.base_product_id is None:
            if current.id in existing.bases_with_packs:
                reader.error("base_sku", "invalid_pack", "other packs point at this product: it stays a base unit")
            if current.id in existing.with_stock_history:
                reader.error("base_sku", "invalid_pack", "this product has stock history: it stays a base unit")
    if reader.errors or category is None or price is None:
        return None
    return Row(
        line=reader.line, sku=sku, name=name, brand=brand, size=size, category=category, price_cents=price,
        cost_cents=cost, gtins=gtins, base_sku=base_sku, units_per_pack=units_per_pack, tax_class=tax_class,
        deposit_class=deposit_class, stock=stock, reorder_point=reorder, reorder_quantity=reorder_quantity,
        age_restricted=restricted, min_age=min_age, attributes=attributes, active=active,
    )  # fmt: skip


def validate(header: list[str], raw_rows: list[tuple[int, dict[str, str | None]]], existing: Existing) -> Validation:
    result = Validation(total=len(raw_rows))
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        result.errors.append(RowError(1, "", ",".join(missing), "missing_columns", f"missing columns: {missing}"))
        return result
    unknown = [column for column in header if column not in KNOWN]
    if unknown:
        result.warnings.append(f"ignored columns: {', '.join(unknown)}")
    first_line: dict[str, int] = {}
    seen_gtins: dict[str, tuple[int, str]] = {}
    parsed: dict[str, Row] = {}
    for line, raw in raw_rows:
        reader = _Reader(line, raw)
        if reader.sku in first_line:
            reader.error("sku", "duplicate_sku", f"sku {reader.sku!r} is also on line {first_line[reader.sku]}")
        elif reader.sku:
            first_line[reader.sku] = line
        row = _parse(reader, existing, seen_gtins)
        result.errors.extend(reader.errors)
        if row is not None:
            parsed[row.sku] = row
    # Packs last: a pack is valid only when its base is a valid base row of the file or a base unit already.
    invalid_skus = {e.sku for e in result.errors}
    for row in parsed.values():
        if row.base_sku is None:
            continue
        base_row = parsed.get(row.base_sku)
        base_product = existing.products.get(row.base_sku)
        if base_row is not None:
            problem = None if base_row.base_sku is None else "base_is_a_pack"
        elif row.base_sku in invalid_skus and row.base_sku in first_line:
            problem = "base_invalid"
        elif base_product is None:
            problem = "unknown_base"
        else:
            problem = None if base_product.base_product_id is None else "base_is_a_pack"
        if problem is not None:
            messages = {
                "base_is_a_pack": f"base {row.base_sku!r} is itself a pack",
                "base_invalid": f"base {row.base_sku!r} is on an invalid line",
                "unknown_base": f"base {row.base_sku!r} is neither in the file nor in the catalog",
            }
            result.errors.append(RowError(row.line, row.sku, "base_sku", problem, messages[problem]))
    bad = {e.line for e in result.errors}
    result.rows = [row for row in parsed.values() if row.line not in bad]
    result.errors.sort(key=lambda e: (e.line, e.field))
    return result


def read_file(path: Path) -> str:
    # utf-8-sig: spreadsheets add a byte-order mark that would otherwise become part of the first column name.
    return path.read_text(encoding="utf-8-sig")
