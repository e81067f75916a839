"""Two `posomni serve` processes on one PostgreSQL database and one Redis, as behind a load balancer: no
oversell, no double charge, idempotency and revocation hold across them, and a mixed load whose every call goes
to the next process leaves the books right. The scenarios live in bench/multiprocess.py, which also reports them
as figures (`python bench/multiprocess.py`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bench import multiprocess as scenarios
from bench.stack import AppServer, Catalog, Station, app_env, prepare_store, provision, stopping

from posomni.database import Database
from posomni.security.crypto import generate_key
from tests.conftest import RUN_ID, _admin_execute, _db_url, connect_redis, drop_namespace, redis_env
from tests.support import seed_demo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

REGISTERS = 10
SCARCE_UNITS = 4


@dataclass
class Cluster:
    urls: list[str]
    stations: list[Station]
    # A register kept out of the other tests: its cashier's sessions are revoked.
    spare: Station
    # The catalog without the scarce product, for the scenarios that must not run out of stock.
    everyday: Catalog
    env: dict[str, str]


@pytest.fixture(scope="module")
async def cluster(pg_template: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    client = await connect_redis()
    name = f"posomni_t_{RUN_ID}_mp_{uuid.uuid4().hex[:6]}"
    await _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    url = _db_url(name)
    tmp = tmp_path_factory.mktemp("multiprocess")
    namespace = f"posomni-mp-{uuid.uuid4().hex[:8]}"
    try:
        database = Database(url, pool_size=2)
        try:
            await seed_demo(database)
        finally:
            await database.dispose()
        env = app_env(url, Path(tmp), redis_port=None, encryption_key=generate_key()) | redis_env(client, namespace)
        catalog = await prepare_store(env)
        servers = [AppServer(env, Path(tmp), name=f"app{n}") for n in range(2)]
        with stopping(*servers):
            for server in servers:
                server.start()
            for server in servers:
                await server.wait_ready()
            stations = await provision(servers[0].url, REGISTERS + 1)
            _, scarce = await scenarios.scarce_product(env)
            yield Cluster(
                [s.url for s in servers], stations[:-1], stations[-1], scenarios.without(catalog, scarce), env
            )
    finally:
        await drop_namespace(client, namespace)
        await client.aclose()
        await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _passes(outcome: scenarios.Outcome) -> None:
    assert outcome.ok, f"{outcome.name}: {outcome.problems} ({outcome.figures})"


async def test_registers_on_both_processes_never_oversell_the_last_units(cluster: Cluster) -> None:
    outcome = await scenarios.no_oversell(cluster.urls, cluster.stations, cluster.env, SCARCE_UNITS)
    _passes(outcome)
    assert outcome.figures["outcomes"] == {"sold": SCARCE_UNITS, "insufficient_stock": REGISTERS - SCARCE_UNITS}


async def test_one_key_sent_to_both_processes_charges_the_card_once(cluster: Cluster) -> None:
    _passes(await scenarios.no_double_charge(cluster.urls, cluster.stations, cluster.everyday, cluster.env, sales=6))


async def test_a_key_used_on_one_process_replays_on_the_other(cluster: Cluster) -> None:
    _passes(await scenarios.idempotency_across(cluster.urls, cluster.stations[0], cluster.everyday))


async def test_signing_out_on_one_process_is_refused_on_the_other(cluster: Cluster) -> None:
    outcome = await scenarios.revocation_across(cluster.urls, cluster.spare.register_id, cluster.spare.username)
    _passes(outcome)


async def test_round_robin_load_leaves_payments_stock_and_audit_right(cluster: Cluster) -> None:
    seconds = float(os.environ.get("POSOMNI_MULTIPROCESS_SECONDS", "8"))
    outcome, _ = await scenarios.mixed_load(
        cluster.urls, cluster.stations, cluster.everyday, cluster.env, seconds, think=0.2
    )
    _passes(outcome)
    assert outcome.figures["sales"] >= len(cluster.stations)
