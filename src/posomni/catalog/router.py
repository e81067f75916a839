from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from posomni.auth.dependencies import Auth, actor, require
from posomni.auth.permissions import Permission
from posomni.auth.principal import Principal
from posomni.catalog import promotions, service
from posomni.catalog.dependencies import Cache
from posomni.catalog.models import Product
from posomni.catalog.schemas import (
    MAX_ID,
    BarcodeIn,
    CategoryCreate,
    CategoryOut,
    CategoryUpdate,
    GroupCreate,
    GroupMembers,
    GroupOut,
    PriceChangeOut,
    ProductCreate,
    ProductOut,
    ProductUpdate,
    ProductView,
    PromotionCreate,
    PromotionOut,
    PromotionUpdate,
    SearchPage,
)
from posomni.dependencies import DbSession

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
router = APIRouter(prefix="/catalog", tags=["catalog"])
Reader = Annotated[Principal, Depends(require(Permission.CATALOG_READ))]
Editor = Annotated[Principal, Depends(require(Permission.CATALOG_EDIT))]
Reports = Annotated[Principal, Depends(require(Permission.REPORTS_VIEW))]


def _out(principal: Principal, found: tuple[Product, list[str]]) -> ProductOut:
    # Cost is for the people who set prices, not for every register.
    return service.out(*found, include_cost=principal.can(Permission.CATALOG_EDIT))


@router.get("/lookup/{code}", response_model=ProductView)
async def lookup(code: str, session: DbSession, cache: Cache, principal: Reader) -> ProductView:
    return await service.lookup(session, cache, code)


@router.get("/products", response_model=SearchPage)
async def search_products(
    session: DbSession,
    principal: Reader,
    q: Annotated[str, Query(max_length=200, description="Words of the name, brand or size; any case.")] = "",
    category_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    include_inactive: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> SearchPage:
    return await service.search(
        session, q, limit=limit, offset=offset, category_id=category_id, include_inactive=include_inactive
    )


@router.post("/products", response_model=ProductOut, status_code=201)
async def create_product(
    body: ProductCreate, request: Request, session: DbSession, cache: Cache, auth: Auth, principal: Editor
) -> ProductOut:
    created = await service.create_product(session, cache, auth.crypto, actor(request, principal), body)
    return _out(principal, created)


@router.get("/products/{product_id}", response_model=ProductOut)
async def get_product(product_id: PathId, session: DbSession, principal: Reader) -> ProductOut:
    return _out(principal, await service.get(session, product_id))


@router.patch("/products/{product_id}", response_model=ProductOut)
async def update_product(
    product_id: PathId,
    body: ProductUpdate,
    request: Request,
    session: DbSession,
    cache: Cache,
    auth: Auth,
    principal: Editor,
) -> ProductOut:
    updated = await service.update_product(
        session, cache, auth.crypto, actor(request, principal), product_id, body,
        may_change_price=principal.can(Permission.PRICES_EDIT),
    )  # fmt: skip
    return _out(principal, updated)


@router.get("/products/{product_id}/price-history", response_model=list[PriceChangeOut])
async def price_history(
    product_id: PathId, session: DbSession, principal: Reports, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[PriceChangeOut]:
    rows = await service.price_history(session, product_id, limit)
    return [
        PriceChangeOut(id=r.id, product_id=r.product_id, old_price_cents=r.old_price_cents,
                       new_price_cents=r.new_price_cents, changed_by=r.changed_by, changed_at=r.changed_at,
                       source=r.source, reason=r.reason)
        for r in rows
    ]  # fmt: skip


@router.post("/products/{product_id}/barcodes", response_model=ProductOut, status_code=201)
async def add_barcode(
    product_id: PathId,
    body: BarcodeIn,
    request: Request,
    session: DbSession,
    cache: Cache,
    auth: Auth,
    principal: Editor,
) -> ProductOut:
    changed = await service.add_barcode(session, cache, auth.crypto, actor(request, principal), product_id, body.code)
    return _out(principal, changed)


@router.delete("/products/{product_id}/barcodes/{code}", response_model=ProductOut)
async def remove_barcode(
    product_id: PathId, code: str, request: Request, session: DbSession, cache: Cache, auth: Auth, principal: Editor
) -> ProductOut:
    changed = await service.remove_barcode(session, cache, auth.crypto, actor(request, principal), product_id, code)
    return _out(principal, changed)


# --- categories ----------------------------------------------------------------------------------------------


@router.get("/categories", response_model=list[CategoryOut])
async def list_categories(session: DbSession, principal: Reader) -> list[CategoryOut]:
    return [CategoryOut.model_validate(c) for c in await service.list_categories(session)]


@router.post("/categories", response_model=CategoryOut, status_code=201)
async def create_category(
    body: CategoryCreate, request: Request, session: DbSession, auth: Auth, principal: Editor
) -> CategoryOut:
    category = await service.create_category(session, auth.crypto, actor(request, principal), body)
    return CategoryOut.model_validate(category)


@router.patch("/categories/{category_id}", response_model=CategoryOut)
async def update_category(
    category_id: PathId, body: CategoryUpdate, request: Request, session: DbSession, auth: Auth, principal: Editor
) -> CategoryOut:
    category = await service.update_category(session, auth.crypto, actor(request, principal), category_id, body)
    return CategoryOut.model_validate(category)


# --- mix & match ---------------------------------------------------------------------------------------------


@router.get("/mix-match-groups", response_model=list[GroupOut])
async def list_groups(session: DbSession, principal: Reader) -> list[GroupOut]:
    return [await promotions.group_out(session, g) for g in await promotions.list_groups(session)]


@router.post("/mix-match-groups", response_model=GroupOut, status_code=201)
async def create_group(
    body: GroupCreate, request: Request, session: DbSession, auth: Auth, principal: Editor
) -> GroupOut:
    group = await promotions.create_group(session, auth.crypto, actor(request, principal), body)
    return await promotions.group_out(session, group)


@router.post("/mix-match-groups/{group_id}/members", response_model=GroupOut)
async def change_members(
    group_id: PathId, body: GroupMembers, request: Request, session: DbSession, auth: Auth, principal: Editor
) -> GroupOut:
    group = await promotions.change_members(session, auth.crypto, actor(request, principal), group_id, body)
    return await promotions.group_out(session, group)


@router.get("/promotions", response_model=list[PromotionOut])
async def list_promotions(
    session: DbSession,
    principal: Reader,
    active_in_store: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only those in force now in this store.")
    ] = None,
) -> list[PromotionOut]:
    found = await promotions.list_promotions(session, active_in_store=active_in_store)
    return [promotions.promotion_out(p) for p in found]


@router.post("/promotions", response_model=PromotionOut, status_code=201)
async def create_promotion(
    body: PromotionCreate, request: Request, session: DbSession, auth: Auth, principal: Editor
) -> PromotionOut:
    created = await promotions.create_promotion(session, auth.crypto, actor(request, principal), body)
    return promotions.promotion_out(created)


@router.patch("/promotions/{promotion_id}", response_model=PromotionOut)
async def update_promotion(
    promotion_id: PathId, body: PromotionUpdate, request: Request, session: DbSession, auth: Auth, principal: Editor
) -> PromotionOut:
    changed = await promotions.update_promotion(session, auth.crypto, actor(request, principal), promotion_id, body)
    return promotions.promotion_out(changed)
