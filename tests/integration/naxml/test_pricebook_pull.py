"""The REST pricebook: pulled from the fake back office over real HTTP, applied like the NAXML file, never
applied twice when unchanged (ETag → 304, or the same body again), refused whole when it cannot be read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.registry import CollectorRegistry
from sqlalchemy import select

from posomni import bootstrap
from posomni.auth.principal import Actor
from posomni.backoffice.conexxus import ConexxusClient
from posomni.backoffice.pricebook_pull import PullReport, pull_pricebook
from posomni.cache.service import CacheService
from posomni.catalog.models import Category
from posomni.config import Settings
from posomni.database import Database
from tests.fakes.backoffice_server import API_KEY, FakeBackOffice
from tests.integration.naxml.conftest import Cli, audit_details, catalog_state, product
from tests.support import seed_demo

STORE = "FL-001"
PRICEBOOK: dict[str, Any] = {
    "departments": [{"action": "addchange", "merchandise_code": "1001", "description": "Craft Spirits",
                     "tax_strategy_id": "standard", "sales_restrict_code": "21"}],
    "items": [
        {"action": "addchange", "pos_code": "081234000011", "pos_code_format": "upcA", "regular_sell_price": "22.49"},
        {"action": "addchange", "pos_code": "850000001015", "description": "Gulf Coast Gin",
         "merchandise_code": "1001", "regular_sell_price": 34.99, "selling_units": 1, "active": True},
        {"action": "delete", "pos_code": "081234000592"},
    ],
}  # fmt: skip
FAST = {"connect_timeout": 0.5, "read_timeout": 1.0, "max_tries": 2, "backoff_base": 0.005, "backoff_max": 0.02}


async def pull(settings: Settings, database: Database, fake: FakeBackOffice, **options: Any) -> PullReport:
    client = ConexxusClient(fake.base_url, API_KEY, **FAST)
    cache = CacheService.from_settings(settings, namespace="test", registry=CollectorRegistry())
    try:
        return await pull_pricebook(
            database, bootstrap.encryption(settings), cache, client, Actor.system("test"), **options
        )
    finally:
        await client.close()
        await cache.close()


async def test_pull_applies_the_pricebook_once_and_skips_it_while_unchanged(
    database: Database, settings: Settings, fake: FakeBackOffice
) -> None:
    await seed_demo(database)
    fake.set_pricebook(STORE, PRICEBOOK)
    first = await pull(settings, database, fake)
    assert first.status == "applied", first
    assert first.report is not None
    assert (first.report.created, first.report.updated, first.report.deactivated) == (1, 1, 1)
    assert (await product(database, "VOD-TITO-750")).price_cents == 2249
    assert not (await product(database, "TOB-SWIS-2")).is_active
    async with database.sessionmaker() as session:
        craft = await session.scalar(select(Category).where(Category.code == "mc_1001"))
    assert craft is not None
    assert (craft.age_restricted, craft.min_age) == (True, 21)
    crypto = bootstrap.encryption(settings)
    [entry] = await audit_details(database, crypto, "catalog.pricebook_imported")
    assert entry["source"] == "rest"
    assert entry["etag"] == first.etag

    # Unchanged: the ETag goes back as If-None-Match, the back office answers 304, nothing is written.
    state = await catalog_state(database)
    second = await pull(settings, database, fake)
    assert second.status == "unchanged"
    assert fake.pricebook_gets[-1] == (STORE, first.etag, 304)
    assert await catalog_state(database) == state

    # A back office without ETags sends the same body again: recognised by its SHA-256, not applied.
    fake.set_pricebook(STORE, PRICEBOOK, etags=False)
    third = await pull(settings, database, fake)
    assert third.status == "unchanged"
    assert fake.pricebook_gets[-1][2] == 200
    assert await catalog_state(database) == state

    # A new pricebook is applied; --force applies even an unchanged one (and changes nothing).
    changed = {**PRICEBOOK, "items": [{"pos_code": "081234000011", "regular_sell_price": "22.99"}]}
    fake.set_pricebook(STORE, changed)
    assert (await pull(settings, database, fake)).status == "applied"
    assert (await product(database, "VOD-TITO-750")).price_cents == 2299
    forced = await pull(settings, database, fake, force=True)
    assert forced.status == "applied"
    assert forced.report is not None
    assert forced.report.unchanged == 1
    assert fake.pricebook_gets[-1][1] is None
    assert len(await audit_details(database, crypto, "catalog.pricebook_imported")) == 3


async def test_invalid_items_are_reported_by_index_and_nothing_is_applied(
    database: Database, settings: Settings, fake: FakeBackOffice
) -> None:
    await seed_demo(database)
    fake.set_pricebook(STORE, {"items": [
        {"pos_code": "081234000011", "regular_sell_price": "22.49"},
        {"pos_code": "081234000012", "regular_sell_price": "1.00"},
        {"pos_code": "081234000028", "regular_sell_price": {"amount": 1}},
        {"pos_code": "081234000035", "action": "explode"},
    ]})  # fmt: skip
    state = await catalog_state(database)
    pulled = await pull(settings, database, fake)
    assert pulled.status == "invalid"
    assert pulled.report is not None
    assert [(e.position, e.code, e.field) for e in pulled.report.errors] == [
        (2, "invalid_check_digit", "pos_code"), (3, "invalid_value", "regular_sell_price"),
        (4, "invalid_action", "action"),
    ]  # fmt: skip
    assert await catalog_state(database) == state
    # Not remembered: the next pull fetches the whole pricebook again (no If-None-Match).
    await pull(settings, database, fake)
    assert fake.pricebook_gets[-1][1] is None


async def test_an_unreachable_back_office_applies_nothing(
    database: Database, settings: Settings, fake: FakeBackOffice
) -> None:
    await seed_demo(database)
    fake.set_pricebook(STORE, PRICEBOOK)
    fake.go_down()
    state = await catalog_state(database)
    pulled = await pull(settings, database, fake)
    assert pulled.status == "unavailable"
    assert "unavailable" in (pulled.error or "")
    fake.come_back()
    fake.set_pricebook(STORE, {"items": "everything"})
    assert (await pull(settings, database, fake)).status == "refused"
    assert await catalog_state(database) == state


async def test_the_command_pulls_and_then_finds_it_unchanged(
    database: Database, settings: Settings, db_url: str, tmp_path: Path, fake: FakeBackOffice
) -> None:
    await seed_demo(database)
    fake.set_pricebook(STORE, PRICEBOOK)
    run = Cli(settings, db_url, tmp_path, CONEXXUS_API_URL=fake.base_url, CONEXXUS_API_KEY=API_KEY)
    first = await run("backoffice", "pull-pricebook")
    assert first.exit_code == 0, first.output
    assert "1 created, 1 updated, 0 unchanged, 1 deactivated; 1 price changes" in first.output
    second = await run("backoffice", "pull-pricebook", "--store", STORE)
    assert second.exit_code == 0, second.output
    assert "unchanged since it was last applied" in second.output
    unconfigured = await Cli(settings, db_url, tmp_path)("backoffice", "pull-pricebook")
    assert unconfigured.exit_code == 1
    assert "CONEXXUS_API_URL" in unconfigured.output
