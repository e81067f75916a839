"""Applying a pricebook (read by `parse.py`, mapped by `adapter.py`) to the catalog: all or nothing.

Order, inside one SAVEPOINT of the caller's transaction (never committed here):

1. every record is checked; departments are created or changed first (through `catalog.service`, audited),
   so items of a new department validate;
2. the items go through the CSV importer (`catalog.import_writer.import_catalog`) — its validation of every
   row, its batched writes, price history, `price.changed` outbox messages and its `catalog.imported` entry;
3. emptied departments are removed; then one `catalog.pricebook_imported` audit entry with the document's
   SHA-256 (and the REST ETag) and the counts.

With any problem nothing is kept (the savepoint is rolled back) unless `skip_invalid`, which applies the valid
records and reports the others; a dry run checks everything the same way and keeps nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.backoffice.naxml.adapter import (
    COLUMN_FIELDS,
    FIELD_NAMES,
    Context,
    DepartmentPlan,
    Plan,
    RecordError,
    csv_text,
    plan_departments,
    plan_items,
    where,
)
from posomni.backoffice.naxml.schemas import Action, Pricebook
from posomni.backoffice.naxml.vocabulary import merchandise_code
from posomni.cache.service import CacheService
from posomni.catalog import service as catalog
from posomni.catalog.barcodes import BarcodeError, normalize
from posomni.catalog.import_writer import import_catalog
from posomni.catalog.importer import read_rows
from posomni.catalog.models import Barcode, Category, Product
from posomni.catalog.schemas import CategoryCreate, CategoryUpdate
from posomni.security.crypto import EncryptionService
from posomni.stores.models import Store

AUDIT_ACTION = "catalog.pricebook_imported"
_IN_CHUNK = 500


@dataclass
class PricebookReport:
    # "naxml" (positions are lines of the file) or "rest" (1-based indexes in "items" and "departments").
    source: str
    items: int
    departments: int
    applied: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    skipped: int = 0
    price_changes: int = 0
    departments_created: int = 0
    departments_updated: int = 0
    departments_deleted: int = 0
    errors: list[RecordError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "items": self.items, "departments": self.departments, "created": self.created,
            "updated": self.updated, "unchanged": self.unchanged, "deactivated": self.deactivated,
            "skipped": self.skipped, "price_changes": self.price_changes,
            "departments_created": self.departments_created, "departments_updated": self.departments_updated,
            "departments_deleted": self.departments_deleted,
        }  # fmt: skip


class _Undo(Exception):
    """Raised inside the savepoint to roll back what was applied there (a dry run, or refused records)."""


async def _tax_classes(session: AsyncSession) -> frozenset[str]:
    # The classes a sale can be priced with (`sales.service.tax_rates`): any other would fail every checkout.
    classes = {"standard", "exempt"}
    for settings in await session.scalars(select(Store.settings)):
        classes.update(str(name) for name in (settings or {}).get("tax_rates", {}))
    return frozenset(classes)


async def _context(session: AsyncSession, book: Pricebook, tax_strategies: dict[str, str]) -> Context:
    gtins = set()
    for record in book.items:
        try:
            gtins.add(normalize(record.pos_code or ""))
        except BarcodeError:
            continue
    owners: dict[str, Product] = {}
    ordered = sorted(gtins)
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start : start + _IN_CHUNK]
        rows = await session.execute(select(Barcode.gtin, Product).join(Product).where(Barcode.gtin.in_(chunk)))
        owners.update(dict(rows.all()))
    base_ids = sorted({p.base_product_id for p in owners.values() if p.base_product_id is not None})
    skus = dict((await session.execute(select(Product.id, Product.sku).where(Product.id.in_(base_ids)))).all())
    categories = {c.code: c for c in await session.scalars(select(Category))}
    return Context(categories, owners, skus, await _tax_classes(session), dict(tax_strategies))


async def _check_deletions(session: AsyncSession, plan: Plan, source: str) -> None:
    """A department is removed only if no product stays in it once the file's items are applied."""
    moved = {row.values["sku"]: row.values.get("category", "") for row in plan.rows}
    for department in [d for d in plan.departments if d.action is Action.DELETE]:
        assert department.existing is not None
        skus = await session.scalars(select(Product.sku).where(Product.category_id == department.existing.id))
        staying = [sku for sku in skus if moved.get(sku, department.code) == department.code]
        if staying:
            _in_use(plan, source, department, len(staying))


def _in_use(plan: Plan, source: str, department: DepartmentPlan, products: int) -> None:
    name = FIELD_NAMES[source]["merchandise_code"]
    record = department.record
    plan.errors.append(RecordError(
        record.position, "department", record.merchandise_code or "", name, "department_in_use",
        f"{name}: {products} product(s) are still in department {record.merchandise_code}; move them first",
    ))  # fmt: skip
    plan.departments.remove(department)


async def _apply_departments(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, plan: Plan, report: PricebookReport
) -> None:
    for department in plan.departments:
        age = department.age
        if department.action is Action.DELETE:
            continue
        if department.existing is None:
            restricted, min_age = age if age is not None else (False, None)
            await catalog.create_category(session, crypto, actor, CategoryCreate(
                code=department.code, name=department.name or department.code, age_restricted=restricted,
                min_age=min_age, tax_class=department.tax_class or "standard",
            ))  # fmt: skip
            report.departments_created += 1
            continue
        current = department.existing
        changes: dict[str, Any] = {}
        if department.name is not None and department.name != current.name:
            changes["name"] = department.name
        if department.tax_class is not None and department.tax_class != current.tax_class:
            changes["tax_class"] = department.tax_class
        if age is not None and age != (current.age_restricted, current.min_age):
            changes.update(age_restricted=age[0], min_age=age[1])
        if changes:
            await catalog.update_category(session, crypto, actor, current.id, CategoryUpdate(**changes))
            report.departments_updated += 1


async def _delete_departments(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, plan: Plan, source: str, report: PricebookReport
) -> None:
    for department in [d for d in plan.departments if d.action is Action.DELETE]:
        category = department.existing
        assert category is not None
        # Checked again after the items: with --skip-invalid, a skipped item may still sit in the department.
        left = await session.scalar(select(func.count()).select_from(Product).where(Product.category_id == category.id))
        if left:
            _in_use(plan, source, department, int(left))
            continue
        details = {"code": category.code, "name": category.name, "merchandise_code": merchandise_code(category.code)}
        await session.delete(category)
        await session.flush()
        await audit.record(
            session, crypto, actor, "catalog.category_deleted", store_id=None, target_type="category",
            target_id=category.id, details=details,
        )  # fmt: skip
        report.departments_deleted += 1


def _importer_errors(plan: Plan, source: str, text: str, errors: list[Any]) -> None:
    """The importer reports CSV lines and columns: turned back into the records and fields they came from."""
    _, lines = read_rows(text)
    by_line = {line: row for (line, _), row in zip(lines, plan.rows, strict=True)}
    names = FIELD_NAMES[source]
    for error in errors:
        row = by_line.get(error.line)
        if row is None:
            plan.errors.append(RecordError(0, "pricebook", "", error.field, error.code, error.message))
            continue
        record = row.record
        name = names[COLUMN_FIELDS.get(error.field, "pos_code")]
        # The importer speaks of CSV columns and lines; say it in the source's terms.
        message = error.message.removeprefix(f"{error.field} ")
        if error.code == "unknown_category":
            message = f"unknown department {record.merchandise_code!r}: add it (a department record) or in the catalog"
        elif error.code == "duplicate_sku":
            first = next(r.record.position for r in plan.rows if r.values["sku"] == row.values["sku"])
            message = f"the same item is also at {where(source, 'item', first)}"
        plan.errors.append(
            RecordError(record.position, "item", record.pos_code or "", name, error.code, f"{name}: {message}")
        )


async def apply_pricebook(
    session: AsyncSession,
    cache: CacheService,
    crypto: EncryptionService,
    actor: Actor,
    book: Pricebook,
    *,
    sha256: str,
    source_name: str,
    skip_invalid: bool = False,
    dry_run: bool = False,
    tax_strategies: dict[str, str] | None = None,
    store_id: int | None = None,
    etag: str | None = None,
) -> PricebookReport:
    """Check every record, then apply them all (or, with `skip_invalid`, the valid ones). Never commits."""
    report = PricebookReport(
        source=book.source, items=len(book.items), departments=len(book.departments), warnings=list(book.warnings)
    )
    plan = Plan()
    try:
        async with session.begin_nested():
            await _apply(session, cache, crypto, actor, book, plan, report, skip_invalid, dry_run, tax_strategies or {})
            if not report.applied:
                raise _Undo
            await audit.record(
                session, crypto, actor, AUDIT_ACTION, store_id=store_id, target_type="pricebook",
                target_id=sha256[:16], details={
                    "source": book.source, "name": source_name, "sha256": sha256, "etag": etag, **report.counts(),
                    "skipped_positions": sorted({e.position for e in plan.errors}),
                },
            )  # fmt: skip
    except _Undo:
        report.applied = False
    report.errors = sorted(plan.errors, key=lambda e: (e.position, e.field, e.code))
    report.warnings.extend(plan.warnings)
    report.skipped = len({(e.record, e.position) for e in report.errors})
    return report


async def _apply(
    session: AsyncSession,
    cache: CacheService,
    crypto: EncryptionService,
    actor: Actor,
    book: Pricebook,
    plan: Plan,
    report: PricebookReport,
    skip_invalid: bool,
    dry_run: bool,
    tax_strategies: dict[str, str],
) -> None:
    context = await _context(session, book, tax_strategies)
    plan_departments(plan, book.source, book.departments, context)
    plan_items(plan, book.source, book.items, context)
    await _check_deletions(session, plan, book.source)
    await _apply_departments(session, crypto, actor, plan, report)
    write = not dry_run and (skip_invalid or not plan.errors)
    if plan.rows:
        text = csv_text(plan.rows)
        result = await import_catalog(
            session, cache, crypto, actor, text, skip_invalid=skip_invalid, dry_run=not write,
            source=f"pricebook:{book.source}",
        )  # fmt: skip
        _importer_errors(plan, book.source, text, result.errors)
        report.warnings.extend(result.warnings)
        write = write and result.imported
        bad = {e.position for e in plan.errors if e.record == "item"}
        report.deactivated = sum(1 for row in plan.rows if row.deactivates and row.record.position not in bad)
        report.created, report.unchanged = result.created, result.unchanged
        report.updated = max(0, result.updated - report.deactivated)
        report.price_changes = result.price_changes
    if write:
        await _delete_departments(session, crypto, actor, plan, book.source, report)
    report.applied = write
