"""Lookup by scan, through a cache keyed by GTIN-14, and the cache's invalidation.

`lookup(session, cache, code)` is what the register (and the checkout, in-process) calls for every scan: it
validates and normalises the code, answers from Redis (or the in-memory fallback) when it can, and otherwise
reads the one barcode row and its product by primary key. Nothing is loaded at start-up; a cold cache costs one
indexed query per GTIN.

A stale price at the register is a bug, so:

* every write that changes what a `ProductView` shows (product fields, price, barcodes) calls `invalidate`
  after its UPDATE has been sent (after `flush`), in the same request;
* writers take an exclusive advisory lock on the GTINs' buckets before changing anything, and a value is
  cached only when its reader got the shared lock (see `repository.view_row`), so a reader can never put an
  old price back into the cache after a writer's invalidation;
* unknown barcodes are not cached (a barcode added a moment later must be found at once);
* while the cache is served from process memory (Redis not configured, or unreachable) entries live only
  `MEMORY_TTL_S`: another app process's invalidation cannot reach this process's memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.cache.service import CacheService
from posomni.catalog import repository
from posomni.catalog.barcodes import BarcodeKind, display_form, parse
from posomni.catalog.errors import CouponNotAProduct, ProductNotFound, UnknownBarcode
from posomni.catalog.schemas import ProductView
from posomni.logging import get_logger

log = get_logger(__name__)

KEY_PREFIX: Final = "catalog:gtin:"
# Redis entries are deleted on every change, so they may live long; the TTL only bounds memory use.
REDIS_TTL_S: Final = 3600.0
# Entries in one process's memory cannot be reached by another process's invalidation: keep them briefly.
MEMORY_TTL_S: Final = 2.0
_DELETE_BATCH: Final = 500


def cache_key(gtin: str) -> str:
    return f"{KEY_PREFIX}{gtin}"


def _view(row: Row[Any], gtin: str | None) -> ProductView:
    values = row._mapping
    return ProductView(
        id=values["id"],
        sku=values["sku"],
        name=values["name"],
        brand=values["brand"],
        size=values["size"],
        description=f"{values['name']} {values['size']}".strip(),
        gtin=gtin,
        barcode=None if gtin is None else display_form(gtin),
        category_id=values["category_id"],
        price_cents=values["price_cents"],
        units_per_pack=values["units_per_pack"],
        base_product_id=values["base_product_id"],
        stock_product_id=values["base_product_id"] or values["id"],
        age_restricted=values["age_restricted"],
        min_age=values["min_age"],
        tax_class=values["tax_class"],
        deposit_class=values["deposit_class"],
        attributes=dict(values["attributes"] or {}),
        is_active=values["is_active"],
    )


async def lookup(session: AsyncSession, cache: CacheService, code: str) -> ProductView:
    """The sellable product behind a scanned or typed barcode.

    `code` may be any GS1 form (UPC-A, UPC-E, EAN-8, EAN-13, GTIN-14); it is normalised to its GTIN-14, so a
    UPC-E scan finds the product stored under its UPC-A. Raises `barcodes.BarcodeError` (422, with code
    `invalid_characters`, `invalid_length` or `invalid_check_digit`), `CouponNotAProduct` (422,
    `coupon_not_a_product`) and `UnknownBarcode` (404, `unknown_barcode`). An inactive product is returned with
    `is_active` false: refusing to sell it is the caller's decision. Never commits.
    """
    barcode = parse(code)
    if barcode.kind is BarcodeKind.COUPON:
        raise CouponNotAProduct()
    gtin = barcode.gtin14
    key = cache_key(gtin)
    cached = await cache.get(key)
    if cached is not None:
        try:
            return ProductView.model_validate_json(cached)
        except ValidationError:
            # Written by another version of the app: read it again below and overwrite it.
            log.warning("catalog_cache_entry_unreadable", gtin=gtin)
    row, cacheable = await repository.view_row(session, gtin)
    if row is None:
        raise UnknownBarcode(details={"gtin": gtin})
    view = _view(row, gtin)
    if cacheable:
        await _remember(cache, key, view)
    return view


async def view_by_id(session: AsyncSession, product_id: int) -> ProductView:
    """The same view for a product chosen from a search (no scan): `gtin` is its first barcode, if any."""
    row, gtin = await repository.view_row_by_id(session, product_id)
    if row is None:
        raise ProductNotFound(details={"product_id": product_id})
    return _view(row, gtin)


async def _remember(cache: CacheService, key: str, view: ProductView) -> None:
    payload = view.model_dump_json()
    if cache.mode == "redis" and await cache.set(key, payload, REDIS_TTL_S):
        return
    # Only this process's memory holds it (or Redis failed just now): short-lived, see the module docstring.
    await cache.set(key, payload, MEMORY_TTL_S)


async def invalidate(cache: CacheService, gtins: Iterable[str]) -> None:
    """Forget the cached views of these GTIN-14s. Call after the change has been flushed to the database."""
    keys = sorted({cache_key(gtin) for gtin in gtins})
    for start in range(0, len(keys), _DELETE_BATCH):
        await cache.delete(*keys[start : start + _DELETE_BATCH])


async def invalidate_products(session: AsyncSession, cache: CacheService, product_ids: Iterable[int]) -> None:
    await invalidate(cache, await repository.gtins_of(session, product_ids))
