"""`posomni catalog import | export`: every bad row reported with its line, all or nothing, --skip-invalid,
updates by SKU, and an export that imports back unchanged."""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
from pathlib import Path
from typing import Any

from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from posomni.catalog.barcodes import BarcodeFormat, make_code
from posomni.catalog.models import PriceChange, Product
from posomni.cli import app as cli
from posomni.config import Settings
from posomni.database import Database
from posomni.outbox.models import OutboxMessage
from posomni.seed.demo import seed
from posomni.stores.models import Store
from tests.integration.catalog.helpers import assert_ledger_holds, demo_store_id, product_id, stock
from tests.support import seed_demo

HEADER = (
    "sku,name,brand,size,category,price,cost,barcode,base_sku,units_per_pack,tax_class,deposit_class,stock,"
    "reorder_point"
)


class Cli:
    def __init__(self, settings: Settings, db_url: str, tmp_path: Path) -> None:
        self.env = {
            "POS_ENV": "test", "DATABASE_URL": db_url, "ALLOWED_ORIGINS": "http://127.0.0.1:8000",
            "AUDIT_LOG_ENCRYPTION_KEY": settings.audit_log_encryption_key.get_secret_value(),
            "REDIS_HOST": "", "COLUMNS": "200",
        }  # fmt: skip
        self.none = str(tmp_path / "none.env")
        self.runner = CliRunner()

    async def __call__(self, *args: str) -> Result:
        return await asyncio.to_thread(self.runner.invoke, cli, [*args, "--env-file", self.none], env=self.env)


async def count_products(database: Database) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Product)) or 0)


def write_csv(path: Path, *lines: str) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


async def test_every_bad_row_is_reported_and_nothing_is_imported(
    database: Database, settings: Settings, db_url: str, tmp_path: Path
) -> None:
    await seed_demo(database)
    run = Cli(settings, db_url, tmp_path)
    before = await count_products(database)
    good = make_code("400638133393", BarcodeFormat.EAN_13)
    coupon = make_code("51234567890", BarcodeFormat.UPC_A)
    file = write_csv(
        tmp_path / "bad.csv",
        f"NEW-A,New Lager,Newbrew,12 oz can,beer,1.99,0.80,{good},,1,standard,,24,6",  # 2: valid
        "NEW-B,Bad Check,Brand,750 mL,wine,9.99,5.00,0821840904660,,1,standard,,,",  # 3
        "NEW-A,Same SKU,Brand,750 mL,wine,9.99,5.00,,,1,standard,,,",  # 4
        "NEW-C,Bad Price,Brand,750 mL,wine,12.345,5.00,,,1,standard,,,",  # 5
        "NEW-D,Unknown Category,Brand,1 L,perfume,9.99,5.00,,,1,standard,,,",  # 6
        "NEW-E,Orphan Pack,Brand,6-pack,beer,9.99,5.00,,NOPE,6,standard,,,",  # 7
        "NEW-F,Taken Barcode,Brand,750 mL,spirits,9.99,5.00,081234000011,,1,standard,,,",  # 8
        f"NEW-G,Coupon,Brand,750 mL,spirits,9.99,5.00,{coupon},,1,standard,,,",  # 9
        "NEW-A-6,New Lager 6-pack,Newbrew,6-pack,beer,9.99,4.80,,NEW-A,6,standard,,,",  # 10: valid
        f"NEW-H,Same Barcode,Brand,750 mL,wine,9.99,5.00,{good},,1,standard,,,",  # 11
        "NEW-I,Bad Pack Size,Brand,750 mL,wine,9.99,5.00,,,6,standard,,,",  # 12
        '"NEW-J","Quoted, with comma",Brand,750 mL,wine,abc,5.00,,,1,standard,,-3,',  # 13
    )
    result = await run("catalog", "import", str(file))
    assert result.exit_code == 1, result.output
    expected = {
        3: "invalid_check_digit", 4: "duplicate_sku", 5: "invalid_money", 6: "unknown_category",
        7: "unknown_base", 8: "duplicate_barcode", 9: "coupon_not_a_product", 11: "duplicate_barcode",
        12: "invalid_pack", 13: "invalid_money",
    }  # fmt: skip
    for line, code in expected.items():
        assert f"line {line} " in result.output, (line, result.output)
        assert code in result.output
    assert "line 2 " not in result.output
    assert "line 10 " not in result.output
    assert "10 invalid row(s): nothing imported" in result.output.replace("\n", " ")
    assert await count_products(database) == before

    skipped = await run("catalog", "import", str(file), "--skip-invalid")
    assert skipped.exit_code == 0, skipped.output
    assert "2 created" in skipped.output
    assert await count_products(database) == before + 2
    store = await demo_store_id(database)
    lager = await product_id(database, "NEW-A")
    assert await stock(database, store, lager) == (24, 0)
    await assert_ledger_holds(database, store)


async def test_a_pack_of_an_invalid_base_row_is_skipped_with_it(
    database: Database, settings: Settings, db_url: str, tmp_path: Path
) -> None:
    await seed_demo(database)
    run = Cli(settings, db_url, tmp_path)
    file = write_csv(
        tmp_path / "packs.csv",
        "NEW-A,New Lager,Newbrew,12 oz can,nope,1.99,0.80,,,1,standard,,,",
        "NEW-A-6,New Lager 6-pack,Newbrew,6-pack,beer,9.99,4.80,,NEW-A,6,standard,,,",
        "NEW-B-6,Pack of a pack,Newbrew,6-pack,beer,9.99,4.80,,BER-BUD-6,6,standard,,,",
        "NEW-C,Stock on a pack,Newbrew,6-pack,beer,9.99,4.80,,BER-BUD-1,6,standard,,12,",
    )
    result = await run("catalog", "import", str(file), "--skip-invalid")
    assert result.exit_code == 0, result.output
    for line, code in ((2, "unknown_category"), (3, "base_invalid"), (4, "base_is_a_pack"), (5, "stock_on_pack")):
        assert f"line {line} " in result.output
        assert code in result.output
    assert "0 created" in result.output


async def test_import_updates_by_sku_with_price_history_and_stock_movements(
    database: Database, settings: Settings, db_url: str, tmp_path: Path
) -> None:
    await seed_demo(database)
    run = Cli(settings, db_url, tmp_path)
    exported = tmp_path / "catalog.csv"
    assert (await run("catalog", "export", str(exported))).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8"))))
    for row in rows:
        if row["sku"] == "VOD-TITO-750":
            row["price"], row["stock"] = "22.99", "30"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    changed = tmp_path / "changed.csv"
    changed.write_text(out.getvalue(), encoding="utf-8")
    result = await run("catalog", "import", str(changed))
    assert result.exit_code == 0, result.output
    assert "0 created, 1 updated" in result.output
    assert "1 price changes" in result.output
    tito = await product_id(database, "VOD-TITO-750")
    store = await demo_store_id(database)
    assert await stock(database, store, tito) == (30, 0)
    async with database.sessionmaker() as session:
        history = list(await session.scalars(select(PriceChange).where(PriceChange.product_id == tito)))
        messages = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "price.changed")))
    assert [(h.old_price_cents, h.new_price_cents, h.source) for h in history] == [(2199, 2299, "import")]
    assert [m.payload["new_price_cents"] for m in messages] == [2299]
    await assert_ledger_holds(database, store)


async def _fresh_sqlite(sqlite_template: Path, tmp_path: Path) -> Database:
    target = tmp_path / "fresh.db"
    shutil.copyfile(sqlite_template, target)
    fresh = Database(f"sqlite+aiosqlite:///{target}")
    async with fresh.unit_of_work() as session:
        await seed(session, demo=False)
        store: dict[str, Any] = {"code": "FL-001", "name": "Fresh", "timezone": "America/New_York", "state": "FL"}
        session.add(Store(**store, state_tax_rate=0.06, settings={}))  # type: ignore[arg-type]
    return fresh


async def test_export_imports_back_unchanged_and_into_an_empty_catalog(
    database: Database, settings: Settings, db_url: str, tmp_path: Path, sqlite_template: Path
) -> None:
    await seed_demo(database)
    run = Cli(settings, db_url, tmp_path)
    first = tmp_path / "first.csv"
    exported = await run("catalog", "export", str(first))
    assert exported.exit_code == 0, exported.output
    again = await run("catalog", "import", str(first))
    assert again.exit_code == 0, again.output
    assert "0 created, 0 updated, 70 unchanged" in again.output
    fresh = await _fresh_sqlite(sqlite_template, tmp_path)
    try:
        into_fresh = Cli(settings, fresh.url, tmp_path)
        loaded = await into_fresh("catalog", "import", str(first))
        assert loaded.exit_code == 0, loaded.output
        assert "70 created" in loaded.output
        second = tmp_path / "second.csv"
        assert (await into_fresh("catalog", "export", str(second))).exit_code == 0
        assert second.read_text(encoding="utf-8") == first.read_text(encoding="utf-8")
        async with fresh.sessionmaker() as session:
            store = await session.scalar(select(Store.id))
        assert store is not None
        await assert_ledger_holds(fresh, store)
    finally:
        await fresh.dispose()
