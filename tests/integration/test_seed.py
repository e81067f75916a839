"""The demo seed: a Florida store, a login for each role, and about 60 products with valid barcodes, packs and
cases linked to their base unit, and opening stock that matches its ledger."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from sqlalchemy import func, select

from posomni.catalog import barcodes
from posomni.catalog.models import Barcode, Product
from posomni.database import Database
from posomni.inventory.models import StockLevel, StockMovement
from posomni.security.passwords import verify_password, verify_pin
from posomni.seed.demo import DEMO_LOGINS, DEMO_STORE_CODE
from posomni.stores.models import Register, Store
from posomni.users.models import Role, User
from tests.support import seed_demo


async def test_demo_store_is_in_florida_with_state_and_local_tax(database: Database) -> None:
    await seed_demo(database)
    async with database.sessionmaker() as session:
        store = await session.scalar(select(Store).where(Store.code == DEMO_STORE_CODE))
        assert store is not None
        registers = list(await session.scalars(select(Register).where(Register.store_id == store.id)))
    assert (store.state, store.timezone) == ("FL", "America/New_York")
    assert (store.state_tax_rate, store.local_tax_rate) == (Decimal("0.06"), Decimal("0.01"))
    assert registers


async def test_demo_users_cover_every_role_with_hashed_passwords_and_pins(database: Database) -> None:
    await seed_demo(database)
    async with database.sessionmaker() as session:
        users = {u.username: u for u in await session.scalars(select(User))}
    assert {Role(u.role) for u in users.values()} == set(Role)
    for login in DEMO_LOGINS:
        user = users[login.username]
        assert user.password_hash != login.password
        assert verify_password(user.password_hash, login.password)
        if login.pin is None:
            assert user.pin_hash is None
        else:
            assert user.pin_hash is not None
            assert login.pin not in user.pin_hash
            assert verify_pin(user.pin_hash, login.pin)


async def test_demo_products_have_valid_barcodes_packs_linked_to_base_units_and_stock(database: Database) -> None:
    await seed_demo(database)
    async with database.sessionmaker() as session:
        products = {p.id: p for p in await session.scalars(select(Product))}
        codes = list(await session.scalars(select(Barcode)))
        levels = {lv.product_id: lv for lv in await session.scalars(select(StockLevel))}
        rows = await session.execute(
            select(StockMovement.product_id, func.sum(StockMovement.quantity)).group_by(StockMovement.product_id)
        )
        ledger: dict[int, int] = dict(rows.all())
    assert len(products) >= 60
    by_product: dict[int, list[str]] = defaultdict(list)
    for code in codes:
        assert len(code.gtin) == 14
        assert barcodes.is_valid(code.gtin), code.gtin
        assert barcodes.classify(code.gtin) is barcodes.BarcodeKind.PRODUCT
        by_product[code.product_id].append(code.gtin)
    assert set(by_product) == set(products)

    packs = [p for p in products.values() if p.base_product_id is not None]
    bases = [p for p in products.values() if p.base_product_id is None]
    assert {p.units_per_pack for p in packs} >= {6, 24}
    for pack in packs:
        base = products[pack.base_product_id]  # type: ignore[index]
        assert base.base_product_id is None
        assert base.units_per_pack == 1
        assert pack.units_per_pack > 1
        assert pack.id not in levels  # stock lives on the base unit only
    assert all(p.units_per_pack == 1 for p in bases)
    assert set(levels) == {p.id for p in bases}
    assert sum(level.on_hand for level in levels.values()) > 0
    for product_id, level in levels.items():
        assert ledger.get(product_id, 0) == level.on_hand
    assert any(p.age_restricted and p.min_age == 21 for p in products.values())
    assert all(p.price_cents > 0 for p in products.values())
