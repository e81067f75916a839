"""Stock: the functions the checkout saga calls, adjustments, transfers, the ledger check and the negative-stock
setting. Receiving is in `receiving.py`, cycle counts in `counts.py`, reports in `reports.py`.

Units: every quantity here is in **base units** (bottles, cans) of a **base product**; a 6-pack sold is 6 units
of its single (`catalog` gives each product its `units_per_pack` and `base_product_id`). Costs are cents.

The checkout's contract (none of these commits; each change is a conditional UPDATE or an upsert, and rows are
touched in ascending product id, the one lock order every stock change here follows):

* `reserve(session, store_id, items, *, reference)` — hold stock for a completing sale.
* `release(session, store_id, items, *, reference)` — give a reservation back (compensation).
* `commit_sale(session, store_id, items, *, reference, actor_id)` — the sale happened: stock leaves.
* `restock(session, store_id, items, *, reason="return", reference, actor_id)` — goods come back.

`items` are `(base product id, base units)` pairs; the same product may appear twice (its units are added).
`reference` names the sale or return (`"sale:42"`, `"return:7"`): a repeated call with the same reference does
nothing the second time, so a retried or recovered saga step is safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.inventory import repository
from posomni.inventory.errors import (
    InsufficientStock,
    InvalidAdjustment,
    InvalidStockItems,
    NotABaseUnit,
    ReservationMismatch,
    StockNotReserved,
    StoreNotFound,
    UnknownProduct,
)
from posomni.inventory.models import MovementReason
from posomni.kit.ids import token
from posomni.outbox import service as outbox
from posomni.security.crypto import EncryptionService

Items = Sequence[tuple[int, int]]

NEGATIVE_STOCK_SETTING: Final = "allow_negative_stock"
# Reasons that put goods back on the shelf through `restock`.
RESTOCK_REASONS: Final = frozenset({MovementReason.RETURN.value, MovementReason.ADJUST.value})
MAX_UNITS: Final = 1_000_000


def normalise_items(items: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Validated, duplicates added together, in ascending product id (the lock order)."""
    totals: dict[int, int] = {}
    for item in items:
        try:
            product_id, units = item
        except (TypeError, ValueError):
            raise InvalidStockItems() from None
        for value in (product_id, units):
            # bool is an int; True units is a bug, not a unit.
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidStockItems(details={"item": [str(product_id), str(units)]})
        totals[product_id] = totals.get(product_id, 0) + units
        if totals[product_id] > MAX_UNITS:
            raise InvalidStockItems(f"At most {MAX_UNITS} units of one product.", details={"product_id": product_id})
    return sorted(totals.items())


async def _require_base_units(session: AsyncSession, product_ids: Sequence[int]) -> None:
    bases = await repository.base_of(session, product_ids)
    unknown = [pid for pid in product_ids if pid not in bases]
    if unknown:
        raise UnknownProduct(details={"product_ids": unknown})
    packs = [pid for pid in product_ids if bases[pid] is not None]
    if packs:
        # A case id here would reserve one "case" of a row that never holds stock: refuse the mistake loudly.
        raise NotABaseUnit(details={"product_ids": packs})


async def negative_stock_allowed(session: AsyncSession, store_id: int) -> bool:
    """The store's `allow_negative_stock` setting (default: refused)."""
    settings = await repository.store_settings(session, store_id)
    if settings is None:
        raise StoreNotFound(details={"store_id": store_id})
    return bool(settings.get(NEGATIVE_STOCK_SETTING, False))


async def apply_negative_stock_setting(session: AsyncSession, store_id: int, allowed: bool | None = None) -> list[int]:
    """Bring `StockLevel.allow_negative` of every product of the store in step with the store setting.

    Call it after changing `Store.settings["allow_negative_stock"]` (pass the new value, or None to read it).
    Returns the products still below zero: when negative stock is switched off they keep the flag (the database
    needs it to hold a negative row) until a count or receipt brings them back to zero or more. Sales of them are
    refused meanwhile: `reserve` reads the setting, not the flag.
    """
    value = await negative_stock_allowed(session, store_id) if allowed is None else allowed
    return await repository.set_allow_negative(session, store_id, value)


# --- the checkout saga's functions -------------------------------------------------------------------------


async def reserve(session: AsyncSession, store_id: int, items: Items, *, reference: str) -> None:
    """Hold `items` for the sale `reference`: for each, `reserved += n` only while `on_hand − reserved ≥ n`
    (always, when the store allows negative stock).

    Raises `InsufficientStock` (409, `insufficient_stock`, details listing every short product with what is
    available) and then leaves nothing reserved, even if the caller goes on to commit its session. Calling it
    again with the same reference and items does nothing; with other items it raises `ReservationMismatch`.
    Also `InvalidStockItems`, `UnknownProduct`, `NotABaseUnit` (422) for malformed items, `StoreNotFound`.
    """
    wanted = normalise_items(items)
    if not wanted:
        return
    existing = await repository.reservation(session, store_id, reference, lock=True)
    if existing:
        if existing == dict(wanted):
            return
        raise ReservationMismatch(details={"reference": reference})
    await _require_base_units(session, [pid for pid, _ in wanted])
    allow = await negative_stock_allowed(session, store_id)
    done: list[tuple[int, int]] = []
    short: list[tuple[int, int]] = []
    # Ascending product id: two sales of the same products lock their rows in the same order, never a deadlock.
    for product_id, units in wanted:
        if await repository.try_reserve(session, store_id, product_id, units, allow=allow):
            done.append((product_id, units))
        else:
            short.append((product_id, units))
    if short:
        # Undo here rather than rely on the caller's rollback: a saga that records the failure and commits
        # must not commit half a reservation.
        for product_id, units in done:
            await repository.unreserve(session, store_id, product_id, units)
        left = await repository.available(session, store_id, [pid for pid, _ in short])
        raise InsufficientStock(
            details={
                "items": [
                    {"product_id": pid, "requested": units, "available": max(left[pid], 0)} for pid, units in short
                ]
            }
        )
    await repository.add_reservation(session, store_id, reference, wanted)


async def release(session: AsyncSession, store_id: int, items: Items, *, reference: str) -> None:
    """Give back what `reference` reserved of the products in `items` (the quantities come from the reservation
    record). Idempotent: releasing twice, or releasing a reference that never reserved, does nothing."""
    product_ids = [pid for pid, _ in normalise_items(items)]
    held = await repository.reservation(session, store_id, reference, lock=True)
    releasing = [(pid, held[pid]) for pid in product_ids if pid in held]
    for product_id, units in releasing:
        await repository.unreserve(session, store_id, product_id, units)
    if releasing:
        await repository.drop_reservation(session, store_id, reference, [pid for pid, _ in releasing])


async def commit_sale(
    session: AsyncSession, store_id: int, items: Items, *, reference: str, actor_id: int | None
) -> None:
    """The sale `reference` is final: `on_hand −= n` and `reserved −= n` per item, and a `sale` movement each.

    `items` must be exactly what was reserved under `reference` (`ReservationMismatch` otherwise). A repeated
    call after success does nothing; without a reservation (and no earlier commit) it raises `StockNotReserved`.
    `InsufficientStock` only when a count or adjustment took reserved stock away meanwhile.
    """
    wanted = normalise_items(items)
    held = await repository.reservation(session, store_id, reference, lock=True)
    if not held:
        if not wanted or await repository.has_movements(session, store_id, reference, MovementReason.SALE.value):
            return
        raise StockNotReserved(details={"reference": reference})
    if held != dict(wanted):
        raise ReservationMismatch(details={"reference": reference})
    done: list[tuple[int, int]] = []
    for product_id, units in wanted:
        if not await repository.take_reserved(session, store_id, product_id, units):
            for pid, taken in done:
                await repository.untake(session, store_id, pid, taken)
            left = await repository.available(session, store_id, [product_id])
            raise InsufficientStock(
                details={"items": [{"product_id": product_id, "requested": units, "available": left[product_id]}]}
            )
        done.append((product_id, units))
    await repository.drop_reservation(session, store_id, reference)
    await repository.add_movements(
        session,
        store_id,
        [(pid, -units) for pid, units in wanted],
        reason=MovementReason.SALE.value,
        reference=reference,
        actor_id=actor_id,
    )


async def restock(
    session: AsyncSession,
    store_id: int,
    items: Items,
    *,
    reason: str = MovementReason.RETURN.value,
    reference: str,
    actor_id: int | None,
) -> None:
    """Goods back on the shelf (a return, a voided sale): `on_hand += n` and a movement each.

    `reference` must name this return (`"return:7"`, `"void:42"`), not the original sale: a second call with
    the same reference and reason does nothing, so two partial returns of one sale need two references.
    """
    if reason not in RESTOCK_REASONS:
        raise InvalidStockItems(f"reason must be one of {sorted(RESTOCK_REASONS)}.", details={"reason": reason})
    wanted = normalise_items(items)
    if not wanted or await repository.has_movements(session, store_id, reference, reason):
        return
    await _require_base_units(session, [pid for pid, _ in wanted])
    allow = await negative_stock_allowed(session, store_id)
    for product_id, units in wanted:
        await repository.add_on_hand(session, store_id, product_id, units, allow=allow)
    await repository.add_movements(session, store_id, wanted, reason=reason, reference=reference, actor_id=actor_id)


async def base_items(session: AsyncSession, lines: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sellable lines `(product id, quantity)` → stock items `(base product id, base units)`: a 6-pack × 2 is
    12 units of its single. Unknown products raise `UnknownProduct`."""
    quantities: dict[int, int] = {}
    for product_id, quantity in lines:
        quantities[product_id] = quantities.get(product_id, 0) + quantity
    found = await repository.products(session, quantities)
    unknown = sorted(set(quantities) - set(found))
    if unknown:
        raise UnknownProduct(details={"product_ids": unknown})
    return normalise_items(
        (product.base_product_id or product.id, quantities[product.id] * product.units_per_pack)
        for product in found.values()
    )


async def outstanding_reservations(session: AsyncSession, store_id: int, reference: str) -> dict[int, int]:
    """What `reference` holds now (base product id → base units); empty when nothing."""
    return await repository.reservation(session, store_id, reference, lock=False)


# --- adjustments and transfers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    product_id: int
    # Base units, signed.
    quantity: int


async def _stock_product(session: AsyncSession, product_id: int) -> tuple[int, int]:
    """(base product id, base units per unit of `product_id`): adjusting 2 damaged 6-packs removes 12 units."""
    found = (await repository.products(session, [product_id])).get(product_id)
    if found is None:
        raise UnknownProduct(details={"product_ids": [product_id]})
    return found.base_product_id or found.id, found.units_per_pack


async def _apply(
    session: AsyncSession, store_id: int, changes: Sequence[tuple[int, int]], *, allow: bool
) -> list[dict[str, Any]]:
    """Apply signed base-unit changes in ascending product id; returns the products that were short."""
    short: list[dict[str, Any]] = []
    for product_id, units in sorted(changes):
        if units > 0:
            await repository.add_on_hand(session, store_id, product_id, units, allow=allow)
        elif not await repository.remove_on_hand(session, store_id, product_id, -units, allow=allow):
            left = await repository.available(session, store_id, [product_id])
            short.append({"product_id": product_id, "requested": -units, "available": max(left[product_id], 0)})
    return short


async def announce(
    session: AsyncSession,
    store_id: int,
    aggregate: str,
    movement_ids: Sequence[int],
    changes: Sequence[tuple[int, int]],
    *,
    reason: str,
    reference: str,
    actor: Actor,
    extra: dict[str, Any] | None = None,
) -> None:
    """One `stock.movement` outbox message for one operation (all of its movements), in the same transaction."""
    payload = {
        "reason": reason,
        "reference": reference,
        "movements": [
            {"movement_id": mid, "product_id": pid, "quantity": units}
            for mid, (pid, units) in zip(movement_ids, changes, strict=True)
        ],
        **(extra or {}),
    }
    await outbox.enqueue(
        session,
        store_id=store_id,
        topic="stock.movement",
        aggregate_id=aggregate,
        payload=payload,
        idempotency_key=f"stock.movement:{store_id}:{aggregate}",
        request_id=actor.request_id,
    )


async def adjust(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    store_id: int,
    *,
    product_id: int,
    quantity: int,
    reason: str,
    note: str,
) -> Change:
    """Correct stock by `quantity` units of `product_id` (a pack's units are multiplied out to base units).

    `reason` is `adjust` (either sign) or `damage` (removes stock). Removing more than is available (on hand
    and not reserved by a completing sale) is refused with `InsufficientStock` unless negative stock is allowed.
    """
    if reason not in (MovementReason.ADJUST.value, MovementReason.DAMAGE.value):
        raise InvalidAdjustment("reason must be adjust or damage.", details={"reason": reason})
    if quantity == 0 or (reason == MovementReason.DAMAGE.value and quantity > 0):
        raise InvalidAdjustment("Damage removes stock: give a negative quantity.", details={"quantity": quantity})
    if not note.strip():
        raise InvalidAdjustment("Say why in the note.", details={"field": "note"})
    base_id, per_unit = await _stock_product(session, product_id)
    units = quantity * per_unit
    if abs(units) > MAX_UNITS:
        raise InvalidAdjustment(f"At most {MAX_UNITS} base units at once.", details={"quantity": quantity})
    allow = await negative_stock_allowed(session, store_id)
    short = await _apply(session, store_id, [(base_id, units)], allow=allow)
    if short:
        raise InsufficientStock(details={"items": short})
    reference = f"{reason}:{token(9)}"
    [movement_id] = await repository.add_movements(
        session, store_id, [(base_id, units)], reason=reason, reference=reference, actor_id=actor.user_id, note=note
    )
    details = {"product_id": base_id, "quantity": units, "reason": reason, "note": note, "movement_id": movement_id}
    if base_id != product_id:
        details |= {"entered_product_id": product_id, "entered_quantity": quantity}
    await audit.record(
        session,
        crypto,
        actor,
        "inventory.adjusted",
        store_id=store_id,
        target_type="product",
        target_id=base_id,
        details=details,
    )
    await announce(
        session,
        store_id,
        f"movement:{movement_id}",
        [movement_id],
        [(base_id, units)],
        reason=reason,
        reference=reference,
        actor=actor,
        extra={"note": note},
    )
    return Change(base_id, units)


async def transfer(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    *,
    from_store_id: int,
    to_store_id: int,
    items: Sequence[tuple[int, int]],
    note: str,
) -> str:
    """Move stock between two stores at once (no goods in transit): a `transfer` movement out of one and into
    the other per product, with one reference. Items are (product id, units); packs are multiplied out.
    Returns the reference."""
    if from_store_id == to_store_id:
        raise InvalidAdjustment("A transfer goes to another store.", details={"to_store_id": to_store_id})
    if not items:
        raise InvalidAdjustment("Nothing to transfer.")
    converted: list[tuple[int, int]] = []
    for product_id, quantity in items:
        if isinstance(quantity, bool) or quantity < 1:
            raise InvalidStockItems(details={"item": [product_id, quantity]})
        base_id, per_unit = await _stock_product(session, product_id)
        converted.append((base_id, quantity * per_unit))
    moving = normalise_items(converted)
    from_allows = await negative_stock_allowed(session, from_store_id)
    to_allows = await negative_stock_allowed(session, to_store_id)
    # Lock order across stores: (store id, product id) ascending, so two opposite transfers cannot deadlock.
    stores = sorted([(from_store_id, -1, from_allows), (to_store_id, 1, to_allows)])
    short: list[dict[str, Any]] = []
    for store_id, sign, allow in stores:
        result = await _apply(session, store_id, [(pid, sign * units) for pid, units in moving], allow=allow)
        short.extend(result)
    if short:
        raise InsufficientStock(details={"items": short})
    reference = f"transfer:{token(9)}"
    out_ids = await repository.add_movements(
        session,
        from_store_id,
        [(pid, -units) for pid, units in moving],
        reason=MovementReason.TRANSFER.value,
        reference=reference,
        actor_id=actor.user_id,
        note=f"to store {to_store_id}: {note}".strip(": "),
    )
    in_ids = await repository.add_movements(
        session,
        to_store_id,
        moving,
        reason=MovementReason.TRANSFER.value,
        reference=reference,
        actor_id=actor.user_id,
        note=f"from store {from_store_id}: {note}".strip(": "),
    )
    details = {
        "reference": reference,
        "from_store_id": from_store_id,
        "to_store_id": to_store_id,
        "items": [{"product_id": pid, "quantity": units} for pid, units in moving],
        "note": note,
    }
    await audit.record(
        session, crypto, actor, "inventory.transferred", store_id=from_store_id, target_type="transfer",
        target_id=reference, details=details,
    )  # fmt: skip
    for store_id, ids, sign in ((from_store_id, out_ids, -1), (to_store_id, in_ids, 1)):
        await announce(
            session, store_id, reference, ids, [(pid, sign * units) for pid, units in moving],
            reason=MovementReason.TRANSFER.value, reference=reference, actor=actor,
            extra={"from_store_id": from_store_id, "to_store_id": to_store_id},
        )  # fmt: skip
    return reference


# --- the ledger ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerMismatch:
    product_id: int
    on_hand: int
    # The sum of the product's movements in the store.
    ledger: int


async def ledger_mismatches(session: AsyncSession, store_id: int) -> list[LedgerMismatch]:
    """Every product of the store whose `on_hand` differs from the sum of its movements; empty when the ledger
    holds. Used by the tests after every operation, and by the fault drill."""
    return [LedgerMismatch(*row) for row in await repository.ledger_mismatches(session, store_id)]
