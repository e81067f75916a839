"""Helpers for compliance tests: a settable clock, AAMVA cards, sales rows made directly with the ORM."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.catalog.models import Product
from posomni.compliance import service as compliance
from posomni.compliance.models import ComplianceEvent
from posomni.compliance.service import SaleComplianceDecision
from posomni.database import Database
from posomni.sales.models import Sale, SaleLine
from posomni.security.crypto import EncryptionService
from posomni.seed.demo import DEMO_STORE_CODE
from posomni.stores.models import Register, Store
from posomni.users.models import User

DATA = Path(__file__).resolve().parents[2] / "data" / "aamva"
EXPECTED: dict[str, dict[str, Any]] = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))
# Byte for byte, control characters kept, as the scanner sends them.
SAMPLES: dict[str, str] = {
    name: (DATA / case["file"]).read_bytes().decode("latin-1") for name, case in EXPECTED.items()
}
NEW_YORK = ZoneInfo("America/New_York")


@dataclass
class Clock:
    now: datetime

    def set_local(self, day: date, at: time = time(12, 0), zone: str = "America/New_York") -> datetime:
        self.now = datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)
        return self.now


def local(day: date, at: time = time(12, 0), zone: str = "America/New_York") -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def mmddccyy(day: date) -> str:
    return day.strftime("%m%d%Y")


def build_card(
    *,
    dob: date,
    expires: date,
    issued: date | None = None,
    under_21_until: date | None = None,
    number: str = "D1234567",
    last: str = "DOE",
    first: str = "JANE",
) -> str:
    """A conforming Florida v10 licence with correct offsets."""
    elements = [
        f"DAQ{number}",
        f"DCS{last}",
        f"DAC{first}",
        "DADNONE",
        f"DBB{mmddccyy(dob)}",
        f"DBA{mmddccyy(expires)}",
    ]
    if issued is not None:
        elements.append(f"DBD{mmddccyy(issued)}")
    if under_21_until is not None:
        elements.append(f"DDJ{mmddccyy(under_21_until)}")
    elements += ["DBC2", "DAJFL", "DCGUSA"]
    body = "DL" + "\n".join(elements) + "\r"
    header = "@\n\x1e\rANSI 636010" + "1001" + "01"
    offset = len(header) + 10
    return header + f"DL{offset:04d}{len(body):04d}" + body


async def store_id(database: Database, code: str = DEMO_STORE_CODE) -> int:
    async with database.sessionmaker() as session:
        found = await session.scalar(select(Store.id).where(Store.code == code))
    assert found is not None
    return int(found)


async def user(database: Database, username: str) -> User:
    async with database.sessionmaker() as session:
        found = await session.scalar(select(User).where(User.username == username))
    assert found is not None
    return found


async def update_store(database: Database, **values: Any) -> None:
    async with database.unit_of_work() as session:
        store = await session.scalar(select(Store).where(Store.code == DEMO_STORE_CODE))
        assert store is not None
        settings = values.pop("settings", None)
        if settings is not None:
            store.settings = {**store.settings, **settings}
        for key, value in values.items():
            setattr(store, key, value)


async def set_birth_date(database: Database, username: str, birth_date: date | None) -> None:
    async with database.unit_of_work() as session:
        found = await session.scalar(select(User).where(User.username == username))
        assert found is not None
        found.birth_date = birth_date


_receipts = iter(range(1, 1_000_000))


async def make_sale(
    database: Database,
    *,
    lines: list[tuple[bool, int | None]],
    status: str = "open",
    business_date: date = date(2026, 6, 15),
    cashier: str = "cashier",
) -> int:
    """A sale in the demo store with one line per (age_restricted, min_age); read-only use of the sales tables."""
    async with database.unit_of_work() as session:
        store = await session.scalar(select(Store).where(Store.code == DEMO_STORE_CODE))
        assert store is not None
        register = await session.scalar(select(Register).where(Register.store_id == store.id).order_by(Register.id))
        clerk = await session.scalar(select(User).where(User.username == cashier))
        product = await session.scalar(select(Product).order_by(Product.id))
        assert register is not None
        assert clerk is not None
        assert product is not None
        sale = Sale(
            store_id=store.id, register_id=register.id, cashier_id=clerk.id, status=status,
            receipt_number=f"T-{next(_receipts):06d}-{id(session)}", business_date=business_date,
            completed_at=datetime.now(UTC) if status == "completed" else None,
        )  # fmt: skip
        session.add(sale)
        await session.flush()
        for number, (restricted, min_age) in enumerate(lines, start=1):
            session.add(
                SaleLine(
                    sale_id=sale.id,
                    line_no=number,
                    product_id=product.id,
                    stock_product_id=product.id,
                    description=product.name,
                    quantity=1,
                    unit_price_cents=product.price_cents,
                    tax_class=product.tax_class,
                    age_restricted=restricted,
                    min_age=min_age,
                )
            )
        return sale.id


async def events(session: AsyncSession) -> list[ComplianceEvent]:
    return list(await session.scalars(select(ComplianceEvent).order_by(ComplianceEvent.id)))


def text_columns(event: ComplianceEvent) -> dict[str, str]:
    """Every text value the row holds, encrypted columns included: what an attacker with the table would see."""
    values = {}
    for column in inspect(ComplianceEvent).columns:
        value = getattr(event, column.key)
        if value is not None:
            values[column.key] = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return values


async def authorize(
    database: Database,
    crypto: EncryptionService,
    *,
    sale_id: int,
    at: datetime,
    clerk: str = "cashier",
    required_min_age: int | None = 21,
    customer_id: int | None = None,
) -> SaleComplianceDecision:
    """The checkout's compliance step in a transaction of its own, as the saga runs it (a refusal's record is
    committed by the unit of work because the error keeps its records)."""
    async with database.unit_of_work() as session:
        store = await session.scalar(select(Store).where(Store.code == DEMO_STORE_CODE))
        user = await session.scalar(select(User).where(User.username == clerk))
        assert store is not None
        assert user is not None
        return await compliance.authorize_sale(
            session, crypto, store=store, sale_id=sale_id, clerk=user, required_min_age=required_min_age,
            customer_id=customer_id, at=at, register_id=None,
        )  # fmt: skip


def crypto_of(http: httpx.AsyncClient) -> EncryptionService:
    app: Any = http._transport.app  # type: ignore[attr-defined]
    crypto: EncryptionService = app.state.crypto
    return crypto


async def scan(http: httpx.AsyncClient, headers: dict[str, str], raw: str, **extra: Any) -> httpx.Response:
    return await http.post("/compliance/id-checks", headers=headers, json={"method": "scan", "raw": raw, **extra})


async def manual(http: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> httpx.Response:
    body = {"method": "manual", "document_type": "passport", "photo_compared": True, **fields}
    for key in ("dob", "expires", "issued"):
        if isinstance(body.get(key), date):
            body[key] = body[key].isoformat()
    return await http.post("/compliance/id-checks", headers=headers, json=body)
