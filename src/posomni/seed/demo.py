"""Seeding. Idempotent: every row is looked up by its natural key first, so running it twice adds nothing.

Production seeding creates the reference categories only: no store guesses and no default passwords (the
first admin comes from `posomni users create`)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.catalog.models import Barcode, Category, Product
from posomni.inventory.models import MovementReason, StockLevel, StockMovement
from posomni.kit.money import Money
from posomni.security.passwords import hash_password, hash_pin
from posomni.stores.models import Register, Store
from posomni.users.models import Role, User

PRODUCTS_CSV = Path(__file__).with_name("products.csv")

CATEGORIES: tuple[tuple[str, str, bool, int | None, str], ...] = (
    # code, name, age restricted, minimum age, tax class
    ("spirits", "Spirits", True, 21, "standard"),
    ("wine", "Wine", True, 21, "standard"),
    ("beer", "Beer", True, 21, "standard"),
    ("seltzer", "Hard seltzer", True, 21, "standard"),
    ("tobacco", "Tobacco", True, 21, "standard"),
    ("mixers", "Mixers and soft drinks", False, None, "standard"),
    ("snacks", "Snacks", False, None, "standard"),
    ("supplies", "Ice and party supplies", False, None, "standard"),
    ("produce", "Produce", False, None, "exempt"),
)

DEMO_STORE_CODE = "FL-001"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: Role
    password: str
    pin: str | None


# Development only; `posomni preflight` refuses to pass while any account still uses one of these.
DEMO_LOGINS: tuple[DemoLogin, ...] = (
    DemoLogin("admin", Role.ADMIN, "demo-admin-pass-2026", None),
    DemoLogin("manager", Role.MANAGER, "demo-manager-pass-2026", "7391"),
    DemoLogin("cashier", Role.CASHIER, "demo-cashier-pass-2026", "4826"),
    DemoLogin("auditor", Role.AUDITOR, "demo-auditor-pass-2026", None),
)

DEFAULT_STORE_SETTINGS: dict[str, object] = {
    # Florida default (Fla. Stat. 562.14): no alcohol sales from 00:00 to 07:00 store-local time.
    "sale_hours": {"default": [{"opens": "07:00", "closes": "24:00"}]},
    "allow_negative_stock": False,
    "min_clerk_age": 18,
    "verified_profile_skips_scan": False,
    "deposits": {},
}


@dataclass
class SeedReport:
    created: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, count: int = 1) -> None:
        self.created[kind] = self.created.get(kind, 0) + count

    @property
    def total(self) -> int:
        return sum(self.created.values())


def gtin14(code: str) -> str:
    return code.strip().zfill(14)


async def seed_reference(session: AsyncSession, report: SeedReport) -> dict[str, Category]:
    existing = {c.code: c for c in await session.scalars(select(Category))}
    for code, name, restricted, min_age, tax_class in CATEGORIES:
        if code not in existing:
            category = Category(code=code, name=name, age_restricted=restricted, min_age=min_age, tax_class=tax_class)
            session.add(category)
            existing[code] = category
            report.add("categories")
    await session.flush()
    return existing


async def _demo_store(session: AsyncSession, report: SeedReport) -> Store:
    store = await session.scalar(select(Store).where(Store.code == DEMO_STORE_CODE))
    if store is None:
        store = Store(
            code=DEMO_STORE_CODE,
            name="POS-Omni Demo Liquors",
            timezone="America/New_York",
            address="100 Main Street, Clearwater, FL 33755",
            state="FL",
            county="Pinellas",
            currency="usd",
            state_tax_rate=Decimal("0.06"),
            local_tax_rate=Decimal("0.01"),
            settings=dict(DEFAULT_STORE_SETTINGS),
        )
        session.add(store)
        await session.flush()
        report.add("stores")
    for code, name in (("R1", "Register 1"), ("R2", "Register 2")):
        found = await session.scalar(select(Register).where(Register.store_id == store.id, Register.code == code))
        if found is None:
            session.add(Register(store_id=store.id, code=code, name=name))
            report.add("registers")
    await session.flush()
    return store


async def _demo_users(session: AsyncSession, store: Store, report: SeedReport, bcrypt_cost: int) -> None:
    for login in DEMO_LOGINS:
        if await session.scalar(select(User.id).where(User.username == login.username)) is not None:
            continue
        store_bound = login.role in (Role.CASHIER, Role.MANAGER)
        insecure = bcrypt_cost < 12
        session.add(
            User(
                username=login.username,
                full_name=f"Demo {login.role.value.title()}",
                role=login.role.value,
                store_id=store.id if store_bound else None,
                password_hash=hash_password(login.password, cost=bcrypt_cost, allow_insecure_cost=insecure),
                pin_hash=(hash_pin(login.pin, cost=bcrypt_cost, allow_insecure_cost=insecure) if login.pin else None),
            )
        )
        report.add("users")
    await session.flush()


async def _demo_products(
    session: AsyncSession, store: Store, categories: dict[str, Category], report: SeedReport
) -> None:
    with PRODUCTS_CSV.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_sku = {p.sku: p for p in await session.scalars(select(Product))}
    # Base units first, so packs can point at them.
    for row in sorted(rows, key=lambda r: bool(r["base_sku"])):
        if row["sku"] in by_sku:
            continue
        category = categories[row["category"]]
        base = by_sku[row["base_sku"]] if row["base_sku"] else None
        product = Product(
            sku=row["sku"],
            name=row["name"],
            brand=row["brand"],
            size=row["size"],
            search_text=" ".join((row["name"], row["brand"], row["size"])).lower(),
            category_id=category.id,
            tax_class=row["tax_class"],
            age_restricted=category.age_restricted,
            min_age=category.min_age,
            deposit_class=row["deposit_class"] or None,
            price_cents=Money.parse(row["price"]).cents,
            cost_cents=Money.parse(row["cost"]).cents,
            base_product_id=base.id if base else None,
            units_per_pack=int(row["units_per_pack"]),
        )
        session.add(product)
        await session.flush()
        session.add(Barcode(gtin=gtin14(row["barcode"]), product_id=product.id))
        by_sku[product.sku] = product
        report.add("products")
        stock = int(row["stock"])
        if base is None:
            session.add(
                StockLevel(
                    store_id=store.id,
                    product_id=product.id,
                    on_hand=stock,
                    reorder_point=int(row["reorder_point"]),
                    reorder_quantity=int(row["reorder_point"]) * 2,
                )
            )
            if stock:
                # The ledger must always add up to on_hand, opening stock included.
                session.add(
                    StockMovement(
                        store_id=store.id,
                        product_id=product.id,
                        quantity=stock,
                        reason=MovementReason.RECEIVE.value,
                        reference="opening-stock",
                        note="demo seed",
                    )
                )
    await session.flush()


async def seed(session: AsyncSession, *, demo: bool, bcrypt_cost: int = 12) -> SeedReport:
    report = SeedReport()
    categories = await seed_reference(session, report)
    if demo:
        store = await _demo_store(session, report)
        await _demo_users(session, store, report, bcrypt_cost)
        await _demo_products(session, store, categories, report)
    return report
