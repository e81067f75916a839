"""Stores, their registers and their policies. Every change is audited with what it was before and after.

Reading is scoped: a store-bound user (cashier, manager) sees only their own store, and another store's id
answers 404 as if it did not exist; chain-wide users (admins, auditors) see every store.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.inventory import service as inventory
from posomni.kit.errors import Conflict, NotFound, ValidationFailed
from posomni.kit.time import is_valid_timezone
from posomni.security.crypto import EncryptionService
from posomni.stores import settings as policies
from posomni.stores.models import Register, Store
from posomni.stores.schemas import RegisterCreate, RegisterOut, RegisterUpdate, StoreOut, StoreUpdate

# Stored as Numeric(7, 5): at most five decimal places, below 1.
_RATE_PLACES: Final = 5


class InvalidSettings(ValidationFailed):
    code = "invalid_settings"
    default_message = "Some store settings are not valid."


class InvalidStore(ValidationFailed):
    default_message = "Some store fields are not valid."


class StoreSettingsBroken(Conflict):
    code = "store_settings_invalid"
    default_message = (
        "This store's stored settings are not valid; an admin must correct them before age-restricted sales."
    )


def rate_text(rate: Decimal) -> str:
    # One spelling however the database returns it: "0.06", never "0.06000" or "6E-2".
    return format(Decimal(rate).normalize(), "f")


def store_out(store: Store) -> StoreOut:
    return StoreOut(
        id=store.id,
        code=store.code,
        name=store.name,
        timezone=store.timezone,
        address=store.address,
        state=store.state,
        county=store.county,
        currency=store.currency,
        state_tax_rate=rate_text(store.state_tax_rate),
        local_tax_rate=rate_text(store.local_tax_rate),
        is_active=store.is_active,
    )


def register_out(register: Register) -> RegisterOut:
    return RegisterOut(
        id=register.id,
        store_id=register.store_id,
        code=register.code,
        name=register.name,
        card_reader_id=register.card_reader_id,
        is_active=register.is_active,
    )


def policies_of(store: Store) -> policies.StoreSettings:
    """The store's policies in force, for every domain that obeys them (compliance, sales, inventory)."""
    try:
        return policies.effective(store.settings)
    except policies.InvalidStoredSettings as exc:
        raise StoreSettingsBroken(
            details={"store_id": store.id, "problems": [p.as_dict() for p in exc.problems]}
        ) from None


async def list_stores(session: AsyncSession, *, scope: int | None) -> list[Store]:
    """`scope`: the viewer's own store, or None for a chain-wide viewer."""
    query = select(Store).order_by(Store.id)
    if scope is not None:
        query = query.where(Store.id == scope)
    return list(await session.scalars(query))


async def get_store(session: AsyncSession, store_id: int, *, scope: int | None = None) -> Store:
    store = await session.get(Store, store_id)
    if store is None or (scope is not None and store.id != scope):
        raise NotFound("No such store.", details={"store_id": store_id})
    return store


async def store_by_code(session: AsyncSession, code: str) -> Store:
    store = await session.scalar(select(Store).where(Store.code == code))
    if store is None:
        raise NotFound("No such store.", details={"code": code})
    return store


def _rate(value: str, field: str, problems: list[dict[str, str]]) -> Decimal | None:
    text = value.strip()
    try:
        rate = Decimal(text)
    except InvalidOperation:
        rate = None
    exponent = rate.as_tuple().exponent if rate is not None else 0
    if rate is None or not rate.is_finite() or not isinstance(exponent, int) or -exponent > _RATE_PLACES:
        problems.append({"field": field, "message": 'a decimal fraction with up to 5 places, e.g. "0.06"'})
        return None
    if not Decimal(0) <= rate < Decimal(1):
        problems.append({"field": field, "message": 'a rate from "0" to below "1" (0.06 is 6 %)'})
        return None
    return rate


def _text(value: object) -> str:
    return rate_text(value) if isinstance(value, Decimal) else str(value)


async def update_store(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, store_id: int, data: StoreUpdate
) -> Store:
    store = await get_store(session, store_id)
    problems: list[dict[str, str]] = []
    changes: dict[str, Any] = {}
    for field in ("name", "address", "county"):
        value = getattr(data, field)
        if value is not None:
            changes[field] = value.strip()
    if data.name is not None and not data.name.strip():
        problems.append({"field": "name", "message": "a store needs a name"})
    if data.timezone is not None:
        if is_valid_timezone(data.timezone):
            changes["timezone"] = data.timezone
        else:
            problems.append({"field": "timezone", "message": "an IANA time zone, e.g. America/New_York"})
    for field in ("state_tax_rate", "local_tax_rate"):
        value = getattr(data, field)
        if value is not None and (rate := _rate(value, field, problems)) is not None:
            changes[field] = rate
    if problems:
        raise InvalidStore(details={"problems": problems})
    before = {k: _text(getattr(store, k)) for k in changes if getattr(store, k) != changes[k]}
    after = {k: _text(changes[k]) for k in before}
    for field, value in changes.items():
        setattr(store, field, value)
    await session.flush()
    if before:
        await audit.record(
            session, crypto, actor, "store.updated", store_id=store.id, target_type="store", target_id=store.id,
            details={"before": before, "after": after},
        )  # fmt: skip
    return store


async def get_settings(session: AsyncSession, store_id: int, *, scope: int | None = None) -> dict[str, Any]:
    store = await get_store(session, store_id, scope=scope)
    return policies_of(store).as_dict()


async def replace_settings(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, store_id: int, document: object
) -> dict[str, Any]:
    """PUT semantics: the document replaces the stored settings; a key left out returns to its default."""
    store = await get_store(session, store_id)
    normalised, problems = policies.validate(document)
    if problems:
        raise InvalidSettings(details={"problems": [p.as_dict() for p in problems]})
    # Compared as effective values, so replacing "absent" by its default is not reported as a change. A store
    # whose stored settings are broken compares against what was stored.
    try:
        old = policies.effective(store.settings).as_dict()
    except policies.InvalidStoredSettings:
        old = dict(store.settings or {})
    new = policies.effective(normalised).as_dict()
    keys = sorted(set(old) | set(new))
    before = {k: old.get(k) for k in keys if old.get(k) != new.get(k)}
    after = {k: new.get(k) for k in before}
    # A new dict, not an in-place edit: the JSON column only notices assignment.
    store.settings = normalised
    await session.flush()
    if "allow_negative_stock" in before:
        # The stock rows' database-level flag follows the setting in the same transaction.
        await inventory.apply_negative_stock_setting(session, store.id, bool(new["allow_negative_stock"]))
    if before:
        await audit.record(
            session, crypto, actor, "store.settings_changed", store_id=store.id, target_type="store",
            target_id=store.id, details={"before": before, "after": after},
        )  # fmt: skip
    return new


async def list_registers(session: AsyncSession, store_id: int, *, scope: int | None = None) -> list[Register]:
    store = await get_store(session, store_id, scope=scope)
    return list(await session.scalars(select(Register).where(Register.store_id == store.id).order_by(Register.id)))


async def create_register(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, store_id: int, data: RegisterCreate
) -> Register:
    store = await get_store(session, store_id)
    taken = await session.scalar(select(Register.id).where(Register.store_id == store.id, Register.code == data.code))
    if taken is not None:
        raise Conflict("This store already has a register with that code.", details={"code": data.code})
    if data.card_reader_id is not None:
        await _check_reader_free(session, data.card_reader_id, None)
    register = Register(store_id=store.id, code=data.code, name=data.name.strip(), card_reader_id=data.card_reader_id)
    session.add(register)
    await session.flush()
    await audit.record(
        session, crypto, actor, "register.created", store_id=store.id, target_type="register",
        target_id=register.id, details={"code": register.code, "name": register.name,
                                        "card_reader_id": register.card_reader_id},
    )  # fmt: skip
    return register


async def _check_reader_free(session: AsyncSession, reader_id: str, register_id: int | None) -> None:
    # One reader, one register: two registers driving the same reader would take each other's payments.
    holder = await session.scalar(
        select(Register.id).where(Register.card_reader_id == reader_id, Register.is_active.is_(True))
    )
    if holder is not None and holder != register_id:
        raise Conflict("That card reader is paired with another register.", details={"register_id": holder})


async def update_register(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, register_id: int, data: RegisterUpdate
) -> Register:
    register = await session.get(Register, register_id)
    if register is None:
        raise NotFound("No such register.", details={"register_id": register_id})
    changes: dict[str, Any] = {}
    if data.name is not None:
        changes["name"] = data.name.strip()
    if "card_reader_id" in data.model_fields_set:
        if data.card_reader_id is not None:
            await _check_reader_free(session, data.card_reader_id, register.id)
        changes["card_reader_id"] = data.card_reader_id
    if data.is_active is not None:
        changes["is_active"] = data.is_active
    before = {k: getattr(register, k) for k, v in changes.items() if getattr(register, k) != v}
    after = {k: changes[k] for k in before}
    for field, value in changes.items():
        setattr(register, field, value)
    await session.flush()
    if before:
        await audit.record(
            session, crypto, actor, "register.updated", store_id=register.store_id, target_type="register",
            target_id=register.id, details={"before": before, "after": after},
        )  # fmt: skip
    return register
