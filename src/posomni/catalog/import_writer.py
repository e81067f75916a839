"""Writing a validated CSV import (see `importer.py`) in batches, and the export that round-trips with it.

A 100,000-row catalog is written with multi-row INSERTs and executemany UPDATEs of a few thousand rows each,
never one statement per row through the ORM. Everything happens in the caller's transaction: all of it or none.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TextIO, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.cache.service import CacheService
from posomni.catalog.importer import KNOWN, Existing, Row, RowError, load_existing, read_rows, validate
from posomni.catalog.lookup import invalidate
from posomni.catalog.models import Barcode, Category, PriceChange, Product
from posomni.catalog.repository import lock_gtins_for_change, search_text_for
from posomni.inventory.models import MovementReason, StockLevel, StockMovement
from posomni.inventory.service import negative_stock_allowed
from posomni.kit.time import utcnow
from posomni.outbox import service as outbox
from posomni.security.crypto import EncryptionService
from posomni.stores.models import Store

BATCH: Final = 2000
DEFAULT_MIN_AGE: Final = 21
# Fields an import may change on an existing product ("unchanged" when their cell is blank).
_COMPARED: Final = (
    "name", "brand", "size", "search_text", "category_id", "price_cents", "cost_cents", "base_product_id",
    "units_per_pack", "tax_class", "deposit_class", "age_restricted", "min_age", "attributes", "is_active",
)  # fmt: skip


@dataclass
class ImportReport:
    rows: int
    imported: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    price_changes: int = 0
    stock_changes: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _table(model: type[Any]) -> Table:
    # Core inserts (executemany of plain rows): the ORM's bulk path is several times slower for 100,000 rows.
    return cast(Table, model.__table__)


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


async def _store(session: AsyncSession, store_id: int | None, rows: list[Row]) -> tuple[int | None, str | None]:
    """The store that `stock`/`reorder_point` values are for; an error message when it cannot be told."""
    if not any(r.stock is not None or r.reorder_point is not None or r.reorder_quantity is not None for r in rows):
        return store_id, None
    if store_id is not None:
        return store_id, None
    stores = list(await session.scalars(select(Store.id).limit(2)))
    if len(stores) == 1:
        return stores[0], None
    return None, "the file has stock values: say which store they are for (--store)"


def _values(row: Row, base_id: int | None, current: Product | None) -> dict[str, Any]:
    """The product columns this row sets; blank optional cells keep the current value (or the category's)."""
    category = row.category
    if row.age_restricted is not None:
        restricted = row.age_restricted
    else:
        restricted = current.age_restricted if current is not None else category.age_restricted
    if row.min_age is not None:
        min_age: int | None = row.min_age
    elif current is not None and current.age_restricted == restricted:
        min_age = current.min_age
    else:
        min_age = category.min_age or DEFAULT_MIN_AGE
    fallback_tax = current.tax_class if current is not None else category.tax_class
    values: dict[str, Any] = {
        "name": row.name,
        "brand": row.brand,
        "size": row.size,
        "search_text": search_text_for(row.name, row.brand, row.size),
        "category_id": category.id,
        "price_cents": row.price_cents,
        "cost_cents": row.cost_cents if row.cost_cents is not None else (current.cost_cents if current else 0),
        "base_product_id": base_id,
        "units_per_pack": row.units_per_pack,
        "tax_class": row.tax_class or fallback_tax,
        "deposit_class": row.deposit_class or (current.deposit_class if current is not None else None),
        "age_restricted": restricted,
        "min_age": min_age if restricted else None,
        "attributes": row.attributes if row.attributes is not None else (dict(current.attributes) if current else {}),
        "is_active": row.active if row.active is not None else (current.is_active if current is not None else True),
    }
    return values


async def import_catalog(
    session: AsyncSession,
    cache: CacheService,
    crypto: EncryptionService,
    actor: Actor,
    text: str,
    *,
    store_id: int | None = None,
    skip_invalid: bool = False,
    dry_run: bool = False,
    source: str = "",
) -> ImportReport:
    """Validate every row, then (no errors, or `skip_invalid`) create or update by SKU. Never commits."""
    header, raw_rows = read_rows(text)
    existing = await load_existing(session)
    validation = validate(header, raw_rows, existing)
    report = ImportReport(rows=len(raw_rows), errors=validation.errors, warnings=validation.warnings)
    store, problem = await _store(session, store_id, validation.rows)
    if problem is not None:
        report.errors.insert(0, RowError(1, "", "stock", "store_required", problem))
    fatal = problem is not None or any(e.code == "missing_columns" for e in report.errors)
    report.skipped = len(validation.invalid_lines)
    if fatal or (report.errors and not skip_invalid) or dry_run:
        return report
    await _write(session, cache, crypto, actor, validation.rows, existing, report, store, text, source)
    report.imported = True
    return report


async def _write(
    session: AsyncSession,
    cache: CacheService,
    crypto: EncryptionService,
    actor: Actor,
    rows: list[Row],
    existing: Existing,
    report: ImportReport,
    store_id: int | None,
    text: str,
    source: str,
) -> None:
    now = utcnow()
    ids = {sku: p.id for sku, p in existing.products.items()}
    max_id = max(ids.values(), default=0)
    new_rows = [r for r in rows if r.sku not in existing.products]
    # Base units first, so packs can point at them.
    for group in ([r for r in new_rows if r.base_sku is None], [r for r in new_rows if r.base_sku is not None]):
        for chunk in _chunks(group):
            batch = [
                {"sku": r.sku, **_values(r, ids.get(r.base_sku or ""), None), "created_at": now, "updated_at": now}
                for r in chunk
            ]
            await session.execute(_table(Product).insert(), batch)
        if group:
            # Ids in one query afterwards: RETURNING through executemany costs a round trip per small batch.
            inserted = await session.execute(select(Product.id, Product.sku).where(Product.id > max_id))
            ids.update({sku: pid for pid, sku in inserted})
    report.created = len(new_rows)
    changed_products: list[int] = []
    price_changes: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    new_barcodes: list[dict[str, Any]] = []
    by_owner: dict[int, list[str]] = {}
    for gtin, owner in existing.barcode_owner.items():
        by_owner.setdefault(owner, []).append(gtin)
    for row in rows:
        current = existing.products.get(row.sku)
        pid = ids[row.sku]
        known = set(by_owner.get(pid, ())) if current is not None else set()
        new_barcodes.extend({"gtin": g, "product_id": pid} for g in row.gtins if g not in known)
        if current is None:
            price_changes.append({"product_id": pid, "old_price_cents": None, "new_price_cents": row.price_cents})
            continue
        values = _values(row, ids.get(row.base_sku or "") if row.base_sku else None, current)
        diff = {k: v for k, v in values.items() if getattr(current, k) != v}
        if diff or any(g not in known for g in row.gtins):
            changed_products.append(pid)
        if not diff:
            report.unchanged += 0 if any(g not in known for g in row.gtins) else 1
            continue
        updates.append({"id": pid, **diff, "updated_at": now})
        if "price_cents" in diff:
            price_changes.append(
                {"product_id": pid, "old_price_cents": current.price_cents, "new_price_cents": row.price_cents}
            )
    report.updated = len(changed_products)
    # Before the updates, as every catalog writer does: scans of these products stop being cached until commit.
    await lock_gtins_for_change(session, [gtin for pid in changed_products for gtin in by_owner.get(pid, ())])
    for chunk in _chunks(updates):
        await session.execute(update(Product), list(chunk))
    for chunk in _chunks(new_barcodes):
        await session.execute(_table(Barcode).insert(), list(chunk))
    await _price_history(session, actor, price_changes, now, report)
    if store_id is not None:
        await _stock(session, store_id, rows, ids, now, report, actor, text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    await audit.record(
        session, crypto, actor, "catalog.imported", store_id=None, target_type="import", target_id=digest[:16],
        details={
            "source": source, "sha256": digest, "rows": report.rows, "created": report.created,
            "updated": report.updated, "unchanged": report.unchanged,
            "skipped_lines": sorted({e.line for e in report.errors}),
            "price_changes": report.price_changes, "stock_changes": report.stock_changes, "store_id": store_id,
        },
    )  # fmt: skip
    await session.flush()
    # After the writes: every view of a changed product is read again from the new rows. New barcodes need
    # nothing: unknown barcodes are never cached.
    await invalidate(cache, [gtin for pid in changed_products for gtin in by_owner.get(pid, ())])


async def _price_history(
    session: AsyncSession, actor: Actor, changes: list[dict[str, Any]], now: Any, report: ImportReport
) -> None:
    rows = [{**c, "changed_by": actor.user_id, "changed_at": now, "source": "import", "reason": ""} for c in changes]
    # A created product's first price is history only; a changed price also goes to the back office, which
    # needs the history row's id for its idempotency key.
    for chunk in _chunks([r for r in rows if r["old_price_cents"] is None]):
        await session.execute(_table(PriceChange).insert(), list(chunk))
    for row in (r for r in rows if r["old_price_cents"] is not None):
        change_id = await session.scalar(insert(PriceChange).values(**row).returning(PriceChange.id))
        report.price_changes += 1
        await outbox.enqueue(
            session, store_id=None, topic="price.changed", aggregate_id=str(row["product_id"]), payload={
                "product_id": row["product_id"], "old_price_cents": row["old_price_cents"],
                "new_price_cents": row["new_price_cents"], "changed_at": now.isoformat(),
                "price_change_id": change_id, "source": "import",
            }, idempotency_key=f"price.changed:{change_id}", request_id=actor.request_id,
        )  # fmt: skip


async def _stock(
    session: AsyncSession,
    store_id: int,
    rows: list[Row],
    ids: dict[str, int],
    now: Any,
    report: ImportReport,
    actor: Actor,
    text: str,
) -> None:
    """Set on-hand quantities and reorder points of base products; every change of on_hand is a movement."""
    allow = await negative_stock_allowed(session, store_id)
    levels = {
        level.product_id: level
        for level in await session.scalars(select(StockLevel).where(StockLevel.store_id == store_id))
    }
    reference = f"import:{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    new_levels: list[dict[str, Any]] = []
    deltas: list[dict[str, Any]] = []
    reorders: list[dict[str, Any]] = []
    movements: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: ids[r.sku]):
        if row.base_sku is not None or (
            row.stock is None and row.reorder_point is None and row.reorder_quantity is None
        ):
            continue
        pid = ids[row.sku]
        level = levels.get(pid)
        movement = {"store_id": store_id, "product_id": pid, "reference": reference, "note": "catalog import",
                    "actor_id": actor.user_id, "created_at": now}  # fmt: skip
        if level is None:
            new_levels.append({
                "store_id": store_id, "product_id": pid, "on_hand": row.stock or 0, "reserved": 0,
                "reorder_point": row.reorder_point or 0, "reorder_quantity": row.reorder_quantity or 0,
                "allow_negative": allow, "updated_at": now,
            })  # fmt: skip
            if row.stock:
                # Opening stock: received, so the ledger adds up to on_hand from the first day.
                movements.append({**movement, "quantity": row.stock, "reason": MovementReason.RECEIVE.value})
            continue
        if row.stock is not None and row.stock != level.on_hand:
            # A difference, applied in the database (not "set to"), so a sale meanwhile is not lost.
            delta = row.stock - level.on_hand
            deltas.append({"p_store": store_id, "p_product": pid, "p_delta": delta, "p_now": now})
            movements.append({**movement, "quantity": delta, "reason": MovementReason.ADJUST.value})
        point = level.reorder_point if row.reorder_point is None else row.reorder_point
        quantity = level.reorder_quantity if row.reorder_quantity is None else row.reorder_quantity
        if (point, quantity) != (level.reorder_point, level.reorder_quantity):
            reorders.append({"p_store": store_id, "p_product": pid, "p_point": point, "p_quantity": quantity})
    table = cast(Table, StockLevel.__table__)
    where = (table.c.store_id == bindparam("p_store")) & (table.c.product_id == bindparam("p_product"))
    for chunk in _chunks(new_levels):
        await session.execute(_table(StockLevel).insert(), list(chunk))
    for chunk in _chunks(deltas):
        statement = update(table).where(where).values(on_hand=table.c.on_hand + bindparam("p_delta"),
                                                      updated_at=bindparam("p_now"))  # fmt: skip
        await session.execute(statement, list(chunk))
    for chunk in _chunks(reorders):
        statement = update(table).where(where).values(reorder_point=bindparam("p_point"),
                                                      reorder_quantity=bindparam("p_quantity"))  # fmt: skip
        await session.execute(statement, list(chunk))
    for chunk in _chunks(movements):
        await session.execute(_table(StockMovement).insert(), list(chunk))
    report.stock_changes = len(movements)


# --- export ------------------------------------------------------------------------------------------------


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


async def export_catalog(session: AsyncSession, out: TextIO, *, store_id: int | None = None) -> int:
    """Write every product in the import format (base units first); returns the number of rows."""
    categories = {c.id: c.code for c in await session.scalars(select(Category))}
    products = list(await session.scalars(select(Product).order_by(Product.base_product_id.is_not(None), Product.sku)))
    skus = {p.id: p.sku for p in products}
    barcodes: dict[int, list[str]] = {}
    for gtin, pid in await session.execute(select(Barcode.gtin, Barcode.product_id).order_by(Barcode.gtin)):
        barcodes.setdefault(pid, []).append(gtin)
    levels: dict[int, StockLevel] = {}
    if store_id is not None:
        levels = {
            lv.product_id: lv for lv in await session.scalars(select(StockLevel).where(StockLevel.store_id == store_id))
        }
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(KNOWN)
    for p in products:
        level = levels.get(p.id)
        stock_cells = ["", "", ""] if level is None else [level.on_hand, level.reorder_point, level.reorder_quantity]
        writer.writerow([
            p.sku, p.name, p.brand, p.size, categories[p.category_id], _money(p.price_cents), _money(p.cost_cents),
            "|".join(barcodes.get(p.id, [])), skus.get(p.base_product_id or 0, ""), p.units_per_pack, p.tax_class,
            p.deposit_class or "", stock_cells[0], stock_cells[1], stock_cells[2], str(p.age_restricted).lower(),
            "" if p.min_age is None else p.min_age,
            json.dumps(p.attributes, sort_keys=True, separators=(",", ":")) if p.attributes else "",
            str(p.is_active).lower(),
        ])  # fmt: skip
    return len(products)
