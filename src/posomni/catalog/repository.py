"""Catalog queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.catalog.models import Barcode, Category, PriceChange, Product
from posomni.inventory.models import StockLevel, StockMovement

MAX_QUERY_TOKENS: Final = 8

# The columns a register needs: what `lookup` reads and caches.
VIEW_COLUMNS: Final = (
    Product.id,
    Product.sku,
    Product.name,
    Product.brand,
    Product.size,
    Product.category_id,
    Product.price_cents,
    Product.units_per_pack,
    Product.base_product_id,
    Product.age_restricted,
    Product.min_age,
    Product.tax_class,
    Product.deposit_class,
    Product.attributes,
    Product.is_active,
)


def search_text_for(name: str, brand: str, size: str) -> str:
    """What search matches against: name, brand and size, lower-cased (kept by every write of a product).

    The same formula as the demo seed's, so an import of an unchanged product changes nothing."""
    return " ".join((name, brand, size)).lower()[:400]


# Transaction-level advisory locks that order cache writes after invalidations (PostgreSQL; SQLite runs one
# write transaction at a time, which gives the same order). Keys: (class, bucket of the GTIN-14).
LOOKUP_LOCK_CLASS: Final = 7401
LOOKUP_LOCK_BUCKETS: Final = 256


def lock_bucket(gtin: str) -> int:
    return int(gtin) % LOOKUP_LOCK_BUCKETS


async def lock_gtins_for_change(session: AsyncSession, gtins: Iterable[str]) -> None:
    """Before changing what the views of these GTINs show: exclusive locks on their buckets, held until commit,
    taken in ascending order (before any product row lock, the order every catalog writer follows)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for bucket in sorted({lock_bucket(g) for g in gtins}):
        await session.execute(select(func.pg_advisory_xact_lock(LOOKUP_LOCK_CLASS, bucket)))


async def view_row(session: AsyncSession, gtin: str) -> tuple[Row[Any] | None, bool]:
    """The product row behind a GTIN-14, and whether it may be cached.

    A reader first tries a shared lock on the GTIN's bucket. It fails only while a writer holding the exclusive
    lock is changing a product of that bucket: the row is then read (its committed, still current, values) but
    not cached. When it succeeds, no writer of that bucket can invalidate until this transaction ends, so the
    value cached here can never land after a writer's invalidation. Advisory locks write nothing to the WAL: a
    cache miss costs two indexed reads and no disk flush.
    """
    cacheable = True
    if session.get_bind().dialect.name == "postgresql":
        cacheable = bool(
            await session.scalar(select(func.pg_try_advisory_xact_lock_shared(LOOKUP_LOCK_CLASS, lock_bucket(gtin))))
        )
    statement = select(*VIEW_COLUMNS).join(Barcode, Barcode.product_id == Product.id).where(Barcode.gtin == gtin)
    return (await session.execute(statement)).first(), cacheable


async def view_row_by_id(session: AsyncSession, product_id: int) -> tuple[Row[Any] | None, str | None]:
    row = (await session.execute(select(*VIEW_COLUMNS).where(Product.id == product_id))).first()
    if row is None:
        return None, None
    gtin = await session.scalar(select(func.min(Barcode.gtin)).where(Barcode.product_id == product_id))
    return row, gtin


async def product(session: AsyncSession, product_id: int, *, lock: bool = False) -> Product | None:
    statement = select(Product).where(Product.id == product_id)
    if lock:
        statement = statement.with_for_update()
    return await session.scalar(statement.execution_options(populate_existing=True))


async def product_by_sku(session: AsyncSession, sku: str) -> Product | None:
    return await session.scalar(select(Product).where(Product.sku == sku))


async def category(session: AsyncSession, category_id: int) -> Category | None:
    return await session.get(Category, category_id)


async def categories(session: AsyncSession) -> list[Category]:
    return list(await session.scalars(select(Category).order_by(Category.code)))


async def category_by_code(session: AsyncSession, code: str) -> Category | None:
    return await session.scalar(select(Category).where(Category.code == code))


async def gtins_of(session: AsyncSession, product_ids: Iterable[int]) -> list[str]:
    ids = sorted(set(product_ids))
    if not ids:
        return []
    return list(await session.scalars(select(Barcode.gtin).where(Barcode.product_id.in_(ids)).order_by(Barcode.gtin)))


async def barcode_owners(session: AsyncSession, gtins: Sequence[str]) -> dict[str, int]:
    if not gtins:
        return {}
    rows = await session.execute(select(Barcode.gtin, Barcode.product_id).where(Barcode.gtin.in_(gtins)))
    return dict(rows.all())


async def has_packs(session: AsyncSession, product_id: int) -> bool:
    found = await session.scalar(select(Product.id).where(Product.base_product_id == product_id).limit(1))
    return found is not None


async def has_stock_history(session: AsyncSession, product_id: int) -> bool:
    """Stock or movements recorded on this product: it must stay a base unit."""
    level = await session.scalar(
        select(StockLevel.product_id).where(StockLevel.product_id == product_id, StockLevel.on_hand != 0).limit(1)
    )
    if level is not None:
        return True
    moved = await session.scalar(select(StockMovement.id).where(StockMovement.product_id == product_id).limit(1))
    return moved is not None


def _like_escape(token: str) -> str:
    return token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def query_tokens(q: str) -> list[str]:
    return [token for token in q.lower().split() if token][:MAX_QUERY_TOKENS]


async def search(
    session: AsyncSession,
    q: str,
    *,
    limit: int,
    offset: int,
    category_id: int | None = None,
    include_inactive: bool = False,
) -> list[Product]:
    """Products whose search text contains every word of `q` (case-insensitive, anywhere in a word), in
    search-text order.

    PostgreSQL: the words are LIKE '%word%' filters answered by the trigram GIN index (or, for very common
    words, by walking ix_products_search_text in order until the page is full: the planner chooses). SQLite
    scans ix_products_search_text, which holds only the lower-cased text, not the whole rows.
    """
    statement = select(Product)
    for token in query_tokens(q):
        statement = statement.where(Product.search_text.like(f"%{_like_escape(token)}%", escape="\\"))
    if category_id is not None:
        statement = statement.where(Product.category_id == category_id)
    if not include_inactive:
        statement = statement.where(Product.is_active.is_(True))
    statement = statement.order_by(Product.search_text, Product.id).limit(limit).offset(offset)
    return list(await session.scalars(statement))


async def barcodes_by_product(session: AsyncSession, product_ids: Sequence[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {pid: [] for pid in product_ids}
    if not product_ids:
        return found
    rows = await session.execute(
        select(Barcode.product_id, Barcode.gtin).where(Barcode.product_id.in_(product_ids)).order_by(Barcode.gtin)
    )
    for pid, gtin in rows:
        found[pid].append(gtin)
    return found


async def price_history(session: AsyncSession, product_id: int, limit: int) -> list[PriceChange]:
    return list(
        await session.scalars(
            select(PriceChange)
            .where(PriceChange.product_id == product_id)
            .order_by(PriceChange.changed_at.desc(), PriceChange.id.desc())
            .limit(limit)
        )
    )
