"""No oversell under real concurrency (PostgreSQL): many buyers of the last units, in one process, over two
engines, and through two app processes on one database."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from posomni import bootstrap
from posomni.auth.principal import Actor
from posomni.config import Settings
from posomni.database import Database
from posomni.inventory import service as inventory
from posomni.inventory.errors import InsufficientStock
from tests.conftest import base_env, make_settings
from tests.integration.catalog.helpers import assert_ledger_holds, demo_store_id, product_id, stock
from tests.support import PASSWORDS, seed_demo

pytestmark = pytest.mark.slow

BUYERS = 50
LAST_UNITS = 10


@pytest.fixture
async def pg_database(pg_url: str) -> AsyncIterator[Database]:
    database = Database(pg_url, pool_size=25)
    yield database
    await database.dispose()


async def _leave_only(database: Database, settings: Settings, sku: str, units: int) -> tuple[int, int]:
    """Adjust the demo stock of `sku` down to `units`; returns (store id, product id)."""
    store, product = await demo_store_id(database), await product_id(database, sku)
    on_hand, _ = await stock(database, store, product)
    async with database.unit_of_work() as session:
        await inventory.adjust(
            session, bootstrap.encryption(settings), Actor.system("test"), store, product_id=product,
            quantity=units - on_hand, reason="adjust", note="race test",
        )  # fmt: skip
    return store, product


async def _buy(database: Database, store: int, items: list[tuple[int, int]], n: int) -> str:
    """One buyer as the saga does it: reserve in one transaction, commit the sale in the next."""
    reference = f"sale:race:{n}"
    try:
        async with database.unit_of_work() as session:
            await inventory.reserve(session, store, items, reference=reference)
    except InsufficientStock:
        return "insufficient_stock"
    await asyncio.sleep(0)
    async with database.unit_of_work() as session:
        await inventory.commit_sale(session, store, items, reference=reference, actor_id=None)
    return "sold"


async def test_fifty_buyers_of_the_last_ten_units(pg_database: Database, pg_url: str) -> None:
    await seed_demo(pg_database)
    store, tito = await _leave_only(pg_database, make_settings(DATABASE_URL=pg_url), "VOD-TITO-750", LAST_UNITS)
    results = await asyncio.gather(*(_buy(pg_database, store, [(tito, 1)], n) for n in range(BUYERS)))
    assert Counter(results) == {"sold": LAST_UNITS, "insufficient_stock": BUYERS - LAST_UNITS}
    assert await stock(pg_database, store, tito) == (0, 0)
    await assert_ledger_holds(pg_database, store)


async def test_buyers_split_over_two_engines(pg_database: Database, pg_url: str) -> None:
    await seed_demo(pg_database)
    store, tito = await _leave_only(pg_database, make_settings(DATABASE_URL=pg_url), "VOD-TITO-750", LAST_UNITS)
    other = Database(pg_url, pool_size=25)
    try:
        engines = (pg_database, other)
        results = await asyncio.gather(*(_buy(engines[n % 2], store, [(tito, 1)], n) for n in range(BUYERS)))
    finally:
        await other.dispose()
    assert Counter(results) == {"sold": LAST_UNITS, "insufficient_stock": BUYERS - LAST_UNITS}
    assert await stock(pg_database, store, tito) == (0, 0)
    await assert_ledger_holds(pg_database, store)


async def test_six_pack_buyers_take_six_units_each(pg_database: Database, pg_url: str) -> None:
    await seed_demo(pg_database)
    store, bud = await _leave_only(pg_database, make_settings(DATABASE_URL=pg_url), "BER-BUD-1", LAST_UNITS)
    six = await product_id(pg_database, "BER-BUD-6")
    async with pg_database.sessionmaker() as session:
        items = await inventory.base_items(session, [(six, 1)])
    assert items == [(bud, 6)]
    results = await asyncio.gather(*(_buy(pg_database, store, items, n) for n in range(BUYERS)))
    assert Counter(results) == {"sold": 1, "insufficient_stock": BUYERS - 1}
    assert await stock(pg_database, store, bud) == (4, 0)
    await assert_ledger_holds(pg_database, store)


# --- two app processes ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _servers(env: dict[str, str], count: int, tmp_path: Path) -> Iterator[list[str]]:
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[BinaryIO] = []
    urls: list[str] = []
    try:
        for n in range(count):
            port = _free_port()
            log = (tmp_path / f"server{n}.log").open("wb")
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "posomni.app:create_app_from_env", "--factory",
                     "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                    env=env, stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for log in logs:
            log.close()


async def _wait_until_up(http: httpx.AsyncClient, url: str, seconds: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            if (await http.get(f"{url}/health", timeout=2)).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"the app at {url} did not start")
        await asyncio.sleep(0.2)


async def test_fifty_buyers_through_two_app_processes(pg_database: Database, pg_url: str, tmp_path: Path) -> None:
    """The same race over HTTP: 50 concurrent "remove one unit" requests spread over two uvicorn processes."""
    await seed_demo(pg_database)
    env_values = base_env(DATABASE_URL=pg_url, POSOMNI_DATA_DIR=str(tmp_path), RATE_LIMIT_PER_CLIENT="100000/minute")
    settings = make_settings(**{k: v for k, v in env_values.items() if k != "POS_ENV"})
    store, tito = await _leave_only(pg_database, settings, "VOD-TITO-750", LAST_UNITS)
    env = {**os.environ, **env_values, "POSOMNI_ENV_FILE": str(tmp_path / "none.env")}
    env.pop("REDIS_HOST", None)
    with _servers(env, 2, tmp_path) as urls:
        async with httpx.AsyncClient(timeout=60) as http:
            for url in urls:
                await _wait_until_up(http, url)
            login = await http.post(f"{urls[0]}/auth/login", json={"username": "manager",
                                                                    "password": PASSWORDS["manager"]})  # fmt: skip
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            body = {"product_id": tito, "quantity": -1, "reason": "adjust", "note": "sold off the books"}
            responses = await asyncio.gather(
                *(http.post(f"{urls[n % 2]}/inventory/adjustments", json=body, headers=headers) for n in range(BUYERS))
            )
    outcomes = Counter("ok" if r.status_code == 201 else r.json()["error"]["code"] for r in responses)
    unexpected = [r.text for r in responses if r.status_code not in (201, 409)]
    assert outcomes == {"ok": LAST_UNITS, "insufficient_stock": BUYERS - LAST_UNITS}, unexpected[:3]
    assert await stock(pg_database, store, tito) == (0, 0)
    await assert_ledger_holds(pg_database, store)
