"""The catalog: products, packs, categories and barcodes, with every change audited, every price change in the
price history and the outbox, and the lookup cache invalidated.

For the register and the checkout (in-process, never committing):

* `lookup(session, cache, code) -> ProductView` — a scan (see `lookup.py`);
* `view_by_id(session, product_id) -> ProductView` — a product chosen from a search;
* `pricing_context(session, store_id, product_ids) -> PricingContext` — promotions, mix & match group
  memberships and case deals for the pricing engine (see `promotions.py`).

Units: `price_cents` and `cost_cents` are cents per sellable unit of *this* product (a 6-pack's price is the
6-pack's); stock is kept only on base units (see `inventory.service`).
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.cache.service import CacheService
from posomni.catalog import repository
from posomni.catalog.barcodes import BarcodeKind, display_form, parse
from posomni.catalog.errors import (
    BarcodeNotOnProduct,
    CategoryNotFound,
    CouponNotAProduct,
    DuplicateBarcode,
    DuplicateCategory,
    DuplicateSku,
    InvalidPack,
    InvalidProduct,
    ProductNotFound,
    UnknownCategory,
)
from posomni.catalog.lookup import invalidate, invalidate_products, lookup, view_by_id
from posomni.catalog.models import Barcode, Category, PriceChange, Product
from posomni.catalog.promotions import PricingContext, pricing_context
from posomni.catalog.repository import search_text_for
from posomni.catalog.schemas import (
    BarcodeOut,
    CategoryCreate,
    CategoryUpdate,
    ProductCreate,
    ProductOut,
    ProductSummary,
    ProductUpdate,
    ProductView,
    SearchPage,
)
from posomni.kit.errors import PermissionDenied
from posomni.kit.time import utcnow
from posomni.outbox import service as outbox
from posomni.security.crypto import EncryptionService

__all__ = [
    "PricingContext",
    "ProductView",
    "lookup",
    "pricing_context",
    "view_by_id",
]

# Federal and Florida minimum age for alcohol and tobacco; used when a restricted product has no age set.
DEFAULT_MIN_AGE: Final = 21
TRACKED_FIELDS: Final = (
    "sku",
    "name",
    "brand",
    "size",
    "category_id",
    "tax_class",
    "age_restricted",
    "min_age",
    "deposit_class",
    "price_cents",
    "cost_cents",
    "base_product_id",
    "units_per_pack",
    "attributes",
    "is_active",
)


def snapshot(product: Product) -> dict[str, Any]:
    return {name: getattr(product, name) for name in TRACKED_FIELDS}


def out(product: Product, gtins: list[str], *, include_cost: bool) -> ProductOut:
    return ProductOut(
        id=product.id,
        sku=product.sku,
        name=product.name,
        brand=product.brand,
        size=product.size,
        category_id=product.category_id,
        tax_class=product.tax_class,
        age_restricted=product.age_restricted,
        min_age=product.min_age,
        deposit_class=product.deposit_class,
        price_cents=product.price_cents,
        cost_cents=product.cost_cents if include_cost else None,
        base_product_id=product.base_product_id,
        units_per_pack=product.units_per_pack,
        attributes=dict(product.attributes or {}),
        is_active=product.is_active,
        barcodes=[BarcodeOut(gtin=g, display=display_form(g)) for g in gtins],
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


# --- reading ---------------------------------------------------------------------------------------------------


async def get(session: AsyncSession, product_id: int) -> tuple[Product, list[str]]:
    product = await repository.product(session, product_id)
    if product is None:
        raise ProductNotFound(details={"product_id": product_id})
    return product, await repository.gtins_of(session, [product_id])


async def search(
    session: AsyncSession,
    q: str,
    *,
    limit: int = 20,
    offset: int = 0,
    category_id: int | None = None,
    include_inactive: bool = False,
) -> SearchPage:
    """Products whose name, brand or size contain every word of `q` (any case, anywhere in a word)."""
    rows = await repository.search(
        session, q, limit=limit + 1, offset=offset, category_id=category_id, include_inactive=include_inactive
    )
    items = [
        ProductSummary(
            id=p.id,
            sku=p.sku,
            name=p.name,
            brand=p.brand,
            size=p.size,
            price_cents=p.price_cents,
            units_per_pack=p.units_per_pack,
            base_product_id=p.base_product_id,
            age_restricted=p.age_restricted,
            is_active=p.is_active,
        )
        for p in rows[:limit]
    ]
    return SearchPage(items=items, next_offset=offset + limit if len(rows) > limit else None)


async def price_history(session: AsyncSession, product_id: int, limit: int = 100) -> list[PriceChange]:
    if await repository.product(session, product_id) is None:
        raise ProductNotFound(details={"product_id": product_id})
    return await repository.price_history(session, product_id, limit)


# --- validation ---------------------------------------------------------------------------------------------


async def _category(session: AsyncSession, category_id: int) -> Category:
    found = await repository.category(session, category_id)
    if found is None:
        raise UnknownCategory(details={"category_id": category_id})
    return found


async def check_pack(session: AsyncSession, product_id: int | None, base_id: int | None, units: int) -> None:
    """A pack points at a base unit (never at another pack, so there are no chains and no cycles) and holds at
    least 2 of it; a base unit holds 1."""
    if base_id is None:
        if units != 1:
            raise InvalidPack("A product without a base product is a base unit: units_per_pack is 1.",
                              details={"reason": "pack_needs_base"})  # fmt: skip
        return
    if base_id == product_id:
        raise InvalidPack("A pack cannot be its own base.", details={"reason": "base_is_itself"})
    if units < 2:
        raise InvalidPack("A pack holds at least 2 base units.", details={"reason": "units_per_pack"})
    base = await repository.product(session, base_id)
    if base is None:
        raise InvalidPack("The base product does not exist.", details={"reason": "base_missing", "base": base_id})
    if base.base_product_id is not None:
        raise InvalidPack("The base product is itself a pack: point at the single.",
                          details={"reason": "base_is_a_pack", "base": base_id})  # fmt: skip


def _age(restricted: bool, min_age: int | None, category: Category | None) -> int | None:
    if not restricted:
        if min_age is not None:
            raise InvalidProduct("min_age applies to age-restricted products only.", details={"field": "min_age"})
        return None
    if min_age is not None:
        return min_age
    return category.min_age if category is not None and category.min_age is not None else DEFAULT_MIN_AGE


async def _new_barcodes(session: AsyncSession, codes: list[str], product_id: int | None) -> list[str]:
    gtins: list[str] = []
    for code in codes:
        barcode = parse(code)
        if barcode.kind is BarcodeKind.COUPON:
            raise CouponNotAProduct(details={"gtin": barcode.gtin14})
        if barcode.gtin14 not in gtins:
            gtins.append(barcode.gtin14)
    owners = await repository.barcode_owners(session, gtins)
    for gtin, owner in owners.items():
        if owner != product_id:
            raise DuplicateBarcode(details={"gtin": gtin, "product_id": owner})
    return [g for g in gtins if g not in owners]


# --- writing ------------------------------------------------------------------------------------------------


async def record_price_change(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    product: Product,
    old_cents: int | None,
    *,
    source: str = "api",
    reason: str = "",
    audited: bool = True,
) -> PriceChange:
    """Price history row; for a change (not a new product's first price) also the `catalog.price_changed` audit
    entry (unless the caller audits a batch) and the `price.changed` outbox message, in the caller's
    transaction."""
    change = PriceChange(
        product_id=product.id,
        old_price_cents=old_cents,
        new_price_cents=product.price_cents,
        changed_by=actor.user_id,
        changed_at=utcnow(),
        source=source,
        reason=reason,
    )
    session.add(change)
    await session.flush()
    details = {"sku": product.sku, "before_cents": old_cents, "after_cents": product.price_cents, "reason": reason}
    if audited and old_cents is not None:
        await audit.record(
            session, crypto, actor, "catalog.price_changed", store_id=None, target_type="product",
            target_id=product.id, details=details,
        )  # fmt: skip
    if old_cents is None:
        # A new product's first price is history, not a change for the back office.
        return change
    await outbox.enqueue(
        session,
        store_id=None,
        topic="price.changed",
        aggregate_id=str(product.id),
        payload={
            "product_id": product.id,
            "sku": product.sku,
            "old_price_cents": old_cents,
            "new_price_cents": product.price_cents,
            "changed_at": change.changed_at.isoformat(),
            "price_change_id": change.id,
        },
        idempotency_key=f"price.changed:{change.id}",
        request_id=actor.request_id,
    )
    return change


async def create_product(
    session: AsyncSession, cache: CacheService, crypto: EncryptionService, actor: Actor, body: ProductCreate
) -> tuple[Product, list[str]]:
    if await repository.product_by_sku(session, body.sku) is not None:
        raise DuplicateSku(details={"sku": body.sku})
    category = await _category(session, body.category_id)
    await check_pack(session, None, body.base_product_id, body.units_per_pack)
    restricted = category.age_restricted if body.age_restricted is None else body.age_restricted
    gtins = await _new_barcodes(session, body.barcodes, None)
    product = Product(
        sku=body.sku,
        name=body.name,
        brand=body.brand,
        size=body.size,
        search_text=search_text_for(body.name, body.brand, body.size),
        category_id=category.id,
        tax_class=body.tax_class or category.tax_class,
        age_restricted=restricted,
        min_age=_age(restricted, body.min_age, category),
        deposit_class=body.deposit_class,
        price_cents=body.price_cents,
        cost_cents=body.cost_cents,
        base_product_id=body.base_product_id,
        units_per_pack=body.units_per_pack,
        attributes=dict(body.attributes),
        is_active=body.is_active,
    )
    session.add(product)
    await session.flush()
    session.add_all(Barcode(gtin=gtin, product_id=product.id) for gtin in gtins)
    await session.flush()
    await audit.record(
        session, crypto, actor, "catalog.product_created", store_id=None, target_type="product",
        target_id=product.id, details={**_jsonable(snapshot(product)), "barcodes": gtins},
    )  # fmt: skip
    await record_price_change(session, crypto, actor, product, None)
    await invalidate(cache, gtins)
    return product, sorted(gtins)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in values.items()}


async def update_product(
    session: AsyncSession,
    cache: CacheService,
    crypto: EncryptionService,
    actor: Actor,
    product_id: int,
    body: ProductUpdate,
    *,
    may_change_price: bool,
) -> tuple[Product, list[str]]:
    """Change the fields sent. A price change needs `may_change_price` (the PRICES_EDIT permission)."""
    gtins = await repository.gtins_of(session, [product_id])
    await repository.lock_gtins_for_change(session, gtins)
    # Row lock: two managers editing one product apply their changes one after the other.
    product = await repository.product(session, product_id, lock=True)
    if product is None:
        raise ProductNotFound(details={"product_id": product_id})
    # A barcode added meanwhile (rare): its bucket too, before anything changes.
    await repository.lock_gtins_for_change(session, set(await repository.gtins_of(session, [product_id])) - set(gtins))
    sent = body.model_fields_set
    before = snapshot(product)
    if body.price_cents is not None and body.price_cents != product.price_cents and not may_change_price:
        raise PermissionDenied("Changing a price needs the prices.edit permission.",
                               details={"required": "prices.edit"})  # fmt: skip
    if body.sku is not None and body.sku != product.sku:
        if await repository.product_by_sku(session, body.sku) is not None:
            raise DuplicateSku(details={"sku": body.sku})
        product.sku = body.sku
    category: Category | None = None
    if body.category_id is not None and body.category_id != product.category_id:
        category = await _category(session, body.category_id)
        product.category_id = category.id
    base_id = body.base_product_id if "base_product_id" in sent else product.base_product_id
    units = body.units_per_pack if body.units_per_pack is not None else product.units_per_pack
    if base_id is None and "base_product_id" in sent and body.units_per_pack is None:
        units = 1
    if (base_id, units) != (product.base_product_id, product.units_per_pack):
        await check_pack(session, product.id, base_id, units)
        if product.base_product_id is None and base_id is not None:
            if await repository.has_packs(session, product.id):
                raise InvalidPack("Other packs point at this product.", details={"reason": "has_packs"})
            if await repository.has_stock_history(session, product.id):
                raise InvalidPack("This product has stock or stock history: it stays a base unit.",
                                  details={"reason": "has_stock"})  # fmt: skip
        product.base_product_id, product.units_per_pack = base_id, units
    for name in ("name", "brand", "size", "tax_class", "price_cents", "cost_cents", "is_active"):
        value = getattr(body, name)
        if value is not None:
            setattr(product, name, value)
    if "deposit_class" in sent:
        product.deposit_class = body.deposit_class
    if body.attributes is not None:
        product.attributes = dict(body.attributes)
    if body.age_restricted is not None or "min_age" in sent:
        restricted = product.age_restricted if body.age_restricted is None else body.age_restricted
        min_age = body.min_age if "min_age" in sent else (product.min_age if restricted else None)
        product.age_restricted = restricted
        product.min_age = _age(restricted, min_age, category or await repository.category(session, product.category_id))
    product.search_text = search_text_for(product.name, product.brand, product.size)
    after = snapshot(product)
    changed = {k: {"before": before[k], "after": after[k]} for k in TRACKED_FIELDS if before[k] != after[k]}
    if not changed:
        return product, await repository.gtins_of(session, [product.id])
    await session.flush()
    price = changed.pop("price_cents", None)
    if changed:
        await audit.record(
            session, crypto, actor, "catalog.product_updated", store_id=None, target_type="product",
            target_id=product.id, details={"sku": product.sku, "changes": changed},
        )  # fmt: skip
    if price is not None:
        await record_price_change(session, crypto, actor, product, price["before"], reason=body.price_reason)
    # After the flush: the UPDATE holds the row, so no reader can cache the old values once they are deleted.
    await invalidate_products(session, cache, [product.id])
    return product, await repository.gtins_of(session, [product.id])


async def add_barcode(
    session: AsyncSession, cache: CacheService, crypto: EncryptionService, actor: Actor, product_id: int, code: str
) -> tuple[Product, list[str]]:
    barcode = parse(code)
    await repository.lock_gtins_for_change(session, [barcode.gtin14])
    product = await repository.product(session, product_id, lock=True)
    if product is None:
        raise ProductNotFound(details={"product_id": product_id})
    new = await _new_barcodes(session, [code], product.id)
    if new:
        session.add(Barcode(gtin=new[0], product_id=product.id))
        await session.flush()
        await audit.record(
            session, crypto, actor, "catalog.barcode_added", store_id=None, target_type="product",
            target_id=product.id, details={"sku": product.sku, "gtin": new[0]},
        )  # fmt: skip
        await invalidate(cache, new)
    return product, await repository.gtins_of(session, [product.id])


async def remove_barcode(
    session: AsyncSession, cache: CacheService, crypto: EncryptionService, actor: Actor, product_id: int, code: str
) -> tuple[Product, list[str]]:
    gtin = parse(code).gtin14
    await repository.lock_gtins_for_change(session, [gtin])
    product = await repository.product(session, product_id, lock=True)
    if product is None:
        raise ProductNotFound(details={"product_id": product_id})
    barcode = await session.scalar(select(Barcode).where(Barcode.gtin == gtin, Barcode.product_id == product.id))
    if barcode is None:
        raise BarcodeNotOnProduct(details={"gtin": gtin})
    await session.delete(barcode)
    await session.flush()
    await audit.record(
        session, crypto, actor, "catalog.barcode_removed", store_id=None, target_type="product",
        target_id=product.id, details={"sku": product.sku, "gtin": gtin},
    )  # fmt: skip
    await invalidate(cache, [gtin])
    return product, await repository.gtins_of(session, [product.id])


# --- categories ---------------------------------------------------------------------------------------------


async def list_categories(session: AsyncSession) -> list[Category]:
    return await repository.categories(session)


async def create_category(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, body: CategoryCreate
) -> Category:
    if await repository.category_by_code(session, body.code) is not None:
        raise DuplicateCategory(details={"code": body.code})
    category = Category(
        code=body.code,
        name=body.name,
        age_restricted=body.age_restricted,
        min_age=_age(body.age_restricted, body.min_age, None),
        tax_class=body.tax_class,
    )
    session.add(category)
    await session.flush()
    await audit.record(
        session, crypto, actor, "catalog.category_created", store_id=None, target_type="category",
        target_id=category.id, details=body.model_dump(),
    )  # fmt: skip
    return category


async def update_category(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, category_id: int, body: CategoryUpdate
) -> Category:
    """Changes the defaults for products created from now on; existing products keep their own copies."""
    category = await repository.category(session, category_id)
    if category is None:
        raise CategoryNotFound(details={"category_id": category_id})
    before = {"name": category.name, "age_restricted": category.age_restricted, "min_age": category.min_age,
              "tax_class": category.tax_class}  # fmt: skip
    if body.name is not None:
        category.name = body.name
    if body.tax_class is not None:
        category.tax_class = body.tax_class
    if body.age_restricted is not None or "min_age" in body.model_fields_set:
        restricted = category.age_restricted if body.age_restricted is None else body.age_restricted
        min_age = body.min_age if "min_age" in body.model_fields_set else category.min_age
        category.age_restricted = restricted
        category.min_age = _age(restricted, min_age if restricted else None, None)
    after = {"name": category.name, "age_restricted": category.age_restricted, "min_age": category.min_age,
             "tax_class": category.tax_class}  # fmt: skip
    if before != after:
        await session.flush()
        await audit.record(
            session, crypto, actor, "catalog.category_updated", store_id=None, target_type="category",
            target_id=category.id, details={"before": before, "after": after},
        )  # fmt: skip
    return category
