"""Mix & match promotions as data, and `pricing_context`, which turns them into the pricing engine's inputs.

Three kinds (the shapes `sales.pricing` takes):

* `quantity_for_price` — each complete set of `quantity` items of a group costs `price_cents` ("2 for $30");
* `percent_off_quantity` — `percent_off` off once `quantity` items of a group are bought ("any 6 wines 10 %");
* `case_price` — singles of one base product bought by the full case (`quantity` singles) cost `price_cents`
  per case. Only the single itself carries the deal: a 6-pack line is already priced as a pack.

A promotion applies to one store or (store_id None) to every store, between `starts_at` and `ends_at` when set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.catalog.errors import DuplicatePromotion, GroupNotFound, InvalidPromotion, PromotionNotFound
from posomni.catalog.models import MixMatchGroup, MixMatchGroupMember, Product, Promotion, PromotionKind
from posomni.catalog.schemas import GroupCreate, GroupMembers, GroupOut, PromotionCreate, PromotionOut, PromotionUpdate
from posomni.kit.time import utcnow
from posomni.sales.pricing import CaseDeal, PercentOffQuantity, QuantityForPrice, SetMode
from posomni.sales.pricing import Promotion as EnginePromotion
from posomni.security.crypto import EncryptionService
from posomni.stores.models import Store

_BP_PER_UNIT = Decimal(10_000)


class PricingContext(NamedTuple):
    """What `sales.pricing.SaleInput` needs from the catalog for a set of sellable products."""

    promotions: tuple[EnginePromotion, ...]
    # Sellable product id → the group ids (`SaleLineInput.mix_match_groups`) it belongs to.
    groups: Mapping[int, frozenset[str]]
    # Sellable product id (a single) → its case deal (`SaleLineInput.case_deal`).
    case_deals: Mapping[int, CaseDeal]


def _active(now: datetime, store_id: int) -> list[ColumnElement[bool]]:
    return [
        Promotion.is_active.is_(True),
        or_(Promotion.store_id.is_(None), Promotion.store_id == store_id),
        or_(Promotion.starts_at.is_(None), Promotion.starts_at <= now),
        or_(Promotion.ends_at.is_(None), Promotion.ends_at > now),
    ]


def _rate(percent_off_bp: int) -> Decimal:
    # Basis points to the engine's Decimal fraction, exactly: 1250 → Decimal("0.125").
    return Decimal(percent_off_bp) / _BP_PER_UNIT


async def pricing_context(
    session: AsyncSession, store_id: int, product_ids: Sequence[int], *, now: datetime | None = None
) -> PricingContext:
    """The promotions in force in `store_id` now that can touch these products, each product's mix & match
    groups, and the case deals of the singles among them. Group ids are group codes and promotion ids are
    promotion codes, both stable. Never commits."""
    moment = now or utcnow()
    ids = sorted(set(product_ids))
    if not ids:
        return PricingContext((), {}, {})
    memberships: dict[int, set[str]] = {}
    group_ids: set[int] = set()
    rows = await session.execute(
        select(MixMatchGroupMember.product_id, MixMatchGroup.id, MixMatchGroup.code)
        .join(MixMatchGroup, MixMatchGroup.id == MixMatchGroupMember.group_id)
        .where(MixMatchGroupMember.product_id.in_(ids))
    )
    codes: dict[int, str] = {}
    for product_id, group_id, code in rows:
        memberships.setdefault(product_id, set()).add(code)
        group_ids.add(group_id)
        codes[group_id] = code
    promotions: list[EnginePromotion] = []
    if group_ids:
        found = await session.scalars(
            select(Promotion)
            .where(Promotion.group_id.in_(sorted(group_ids)), *_active(moment, store_id))
            .order_by(Promotion.code)
        )
        for promotion in found:
            assert promotion.group_id is not None  # the CHECK constraint "shape"
            group = codes[promotion.group_id]
            if promotion.kind == PromotionKind.QUANTITY_FOR_PRICE.value:
                assert promotion.price_cents is not None
                promotions.append(
                    QuantityForPrice(promotion.code, promotion.description, group, promotion.quantity,
                                     promotion.price_cents)
                )  # fmt: skip
            else:
                assert promotion.percent_off_bp is not None
                mode = SetMode(promotion.mode or SetMode.EACH_COMPLETE_SET)
                promotions.append(
                    PercentOffQuantity(promotion.code, promotion.description, group, promotion.quantity,
                                       _rate(promotion.percent_off_bp), mode)
                )  # fmt: skip
    deals: dict[int, CaseDeal] = {}
    case_rows = await session.scalars(
        select(Promotion)
        .join(Product, Product.id == Promotion.product_id)
        .where(
            Promotion.kind == PromotionKind.CASE_PRICE.value,
            Promotion.product_id.in_(ids),
            Product.base_product_id.is_(None),
            *_active(moment, store_id),
        )
        # One deal per product: a store's own beats the chain-wide one, then the oldest.
        .order_by(Promotion.store_id.is_(None), Promotion.id)
    )
    for promotion in case_rows:
        assert promotion.product_id is not None and promotion.price_cents is not None
        deals.setdefault(
            promotion.product_id, CaseDeal(promotion.product_id, promotion.quantity, promotion.price_cents)
        )
    return PricingContext(tuple(promotions), {pid: frozenset(groups) for pid, groups in memberships.items()}, deals)


# --- management ---------------------------------------------------------------------------------------------


def promotion_out(promotion: Promotion) -> PromotionOut:
    percent = None if promotion.percent_off_bp is None else Decimal(promotion.percent_off_bp) / 100
    return PromotionOut(
        id=promotion.id,
        code=promotion.code,
        description=promotion.description,
        kind=promotion.kind,
        store_id=promotion.store_id,
        group_id=promotion.group_id,
        product_id=promotion.product_id,
        quantity=promotion.quantity,
        price_cents=promotion.price_cents,
        percent_off=percent,
        mode=promotion.mode,
        starts_at=promotion.starts_at,
        ends_at=promotion.ends_at,
        is_active=promotion.is_active,
    )


async def group_out(session: AsyncSession, group: MixMatchGroup) -> GroupOut:
    members = await session.scalars(
        select(MixMatchGroupMember.product_id)
        .where(MixMatchGroupMember.group_id == group.id)
        .order_by(MixMatchGroupMember.product_id)
    )
    return GroupOut(id=group.id, code=group.code, name=group.name, product_ids=list(members))


async def _existing_products(session: AsyncSession, ids: Sequence[int]) -> list[int]:
    wanted = sorted(set(ids))
    found = set(await session.scalars(select(Product.id).where(Product.id.in_(wanted)))) if wanted else set()
    missing = [pid for pid in wanted if pid not in found]
    if missing:
        raise InvalidPromotion("Unknown products.", details={"product_ids": missing[:50]})
    return wanted


async def list_groups(session: AsyncSession) -> list[MixMatchGroup]:
    return list(await session.scalars(select(MixMatchGroup).order_by(MixMatchGroup.code)))


async def create_group(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, body: GroupCreate
) -> MixMatchGroup:
    if await session.scalar(select(MixMatchGroup.id).where(MixMatchGroup.code == body.code)) is not None:
        raise DuplicatePromotion(details={"code": body.code})
    members = await _existing_products(session, body.product_ids)
    group = MixMatchGroup(code=body.code, name=body.name)
    session.add(group)
    await session.flush()
    session.add_all(MixMatchGroupMember(group_id=group.id, product_id=pid) for pid in members)
    await session.flush()
    await audit.record(
        session, crypto, actor, "catalog.group_created", store_id=None, target_type="mix_match_group",
        target_id=group.id, details={"code": group.code, "name": group.name, "product_ids": members},
    )  # fmt: skip
    return group


async def change_members(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, group_id: int, body: GroupMembers
) -> MixMatchGroup:
    group = await session.get(MixMatchGroup, group_id)
    if group is None:
        raise GroupNotFound(details={"group_id": group_id})
    adding = await _existing_products(session, body.add)
    current = set(
        await session.scalars(select(MixMatchGroupMember.product_id).where(MixMatchGroupMember.group_id == group.id))
    )
    new = [pid for pid in adding if pid not in current]
    session.add_all(MixMatchGroupMember(group_id=group.id, product_id=pid) for pid in new)
    removing = sorted(set(body.remove) & current)
    if removing:
        await session.execute(
            delete(MixMatchGroupMember).where(
                MixMatchGroupMember.group_id == group.id, MixMatchGroupMember.product_id.in_(removing)
            )
        )
    await session.flush()
    if new or removing:
        await audit.record(
            session, crypto, actor, "catalog.group_changed", store_id=None, target_type="mix_match_group",
            target_id=group.id, details={"code": group.code, "added": new, "removed": removing},
        )  # fmt: skip
    return group


async def list_promotions(session: AsyncSession, *, active_in_store: int | None = None) -> list[Promotion]:
    statement = select(Promotion).order_by(Promotion.code)
    if active_in_store is not None:
        statement = statement.where(*_active(utcnow(), active_in_store))
    return list(await session.scalars(statement))


def _bp(percent: Decimal | None) -> int | None:
    # Percent with at most two decimals (the schema checks) → whole basis points.
    return None if percent is None else int(percent * 100)


async def _check(session: AsyncSession, promotion: Promotion) -> None:
    kind = PromotionKind(promotion.kind)
    problems: list[str] = []
    if kind is PromotionKind.CASE_PRICE:
        if promotion.product_id is None or promotion.group_id is not None:
            problems.append("a case price names a base product (product_id) and no group")
        if promotion.price_cents is None:
            problems.append("a case price needs price_cents")
        if promotion.quantity < 2:
            problems.append("a case holds at least 2 singles")
        if promotion.product_id is not None:
            base = await session.get(Product, promotion.product_id)
            if base is None or base.base_product_id is not None:
                problems.append("product_id must be an existing base unit (a single)")
    else:
        if promotion.group_id is None or promotion.product_id is not None:
            problems.append("a mix & match promotion names a group (group_id) and no product")
        elif await session.get(MixMatchGroup, promotion.group_id) is None:
            problems.append("the group does not exist")
        if kind is PromotionKind.QUANTITY_FOR_PRICE and promotion.price_cents is None:
            problems.append("N for $X needs price_cents")
        if kind is PromotionKind.PERCENT_OFF_QUANTITY and promotion.percent_off_bp is None:
            problems.append("percent off needs percent_off")
    if kind is not PromotionKind.PERCENT_OFF_QUANTITY and (promotion.percent_off_bp is not None or promotion.mode):
        problems.append("percent_off and mode belong to percent_off_quantity promotions")
    if kind is PromotionKind.PERCENT_OFF_QUANTITY and promotion.price_cents is not None:
        problems.append("a percent-off promotion has no price_cents")
    if promotion.store_id is not None and await session.get(Store, promotion.store_id) is None:
        problems.append("the store does not exist")
    if promotion.starts_at and promotion.ends_at and promotion.ends_at <= promotion.starts_at:
        problems.append("ends_at must be after starts_at")
    if problems:
        raise InvalidPromotion(details={"problems": problems})


async def create_promotion(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, body: PromotionCreate
) -> Promotion:
    if await session.scalar(select(Promotion.id).where(Promotion.code == body.code)) is not None:
        raise DuplicatePromotion(details={"code": body.code})
    promotion = Promotion(
        code=body.code,
        description=body.description,
        kind=body.kind.value,
        store_id=body.store_id,
        group_id=body.group_id,
        product_id=body.product_id,
        quantity=body.quantity,
        price_cents=body.price_cents,
        percent_off_bp=_bp(body.percent_off),
        mode=None if body.mode is None else body.mode.value,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        is_active=body.is_active,
    )
    await _check(session, promotion)
    session.add(promotion)
    await session.flush()
    await audit.record(
        session, crypto, actor, "catalog.promotion_created", store_id=None, target_type="promotion",
        target_id=promotion.id, details=promotion_out(promotion).model_dump(mode="json"),
    )  # fmt: skip
    return promotion


async def update_promotion(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, promotion_id: int, body: PromotionUpdate
) -> Promotion:
    promotion = await session.get(Promotion, promotion_id, with_for_update=True)
    if promotion is None:
        raise PromotionNotFound(details={"promotion_id": promotion_id})
    before = promotion_out(promotion).model_dump(mode="json")
    sent = body.model_fields_set
    for name in ("description", "quantity", "price_cents", "is_active"):
        value = getattr(body, name)
        if value is not None:
            setattr(promotion, name, value)
    if body.percent_off is not None:
        promotion.percent_off_bp = _bp(body.percent_off)
    if body.mode is not None:
        promotion.mode = body.mode.value
    for name in ("starts_at", "ends_at"):
        if name in sent:
            setattr(promotion, name, getattr(body, name))
    await _check(session, promotion)
    after = promotion_out(promotion).model_dump(mode="json")
    if before != after:
        await session.flush()
        await audit.record(
            session, crypto, actor, "catalog.promotion_updated", store_id=None, target_type="promotion",
            target_id=promotion.id, details={"before": before, "after": after},
        )  # fmt: skip
    return promotion
