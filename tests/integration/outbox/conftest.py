"""Fixtures for the outbox tests: the fake back office on a loopback port, stores, and quick settings (tiny
backoffs and timeouts, so that outages, retries and leases play out in a fraction of a second)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from posomni.backoffice.conexxus import ConexxusClient
from posomni.database import Database
from posomni.outbox import repository, service
from posomni.outbox.models import OutboxMessage
from posomni.outbox.worker import OutboxWorker
from posomni.stores.models import Store
from tests.fakes.backoffice_server import API_KEY, FakeBackOffice, running_fake_backoffice

CLIENT_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 0.5,
    "read_timeout": 1.0,
    "max_tries": 3,
    "backoff_base": 0.005,
    "backoff_max": 0.02,
    "max_retry_after_wait": 2.0,
    "failure_threshold": 5,
    "recovery_seconds": 0.2,
}

WORKER_DEFAULTS: dict[str, Any] = {
    "batch_size": 10,
    "poll_interval": 0.02,
    "max_attempts": 5,
    "lease_seconds": 5.0,
    "backoff_base": 0.02,
    "backoff_max": 0.1,
    "outage_backoff_max": 0.1,
    "gauges_interval": 0.2,
}


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeBackOffice]:
    # One server for the whole run: starting and stopping uvicorn costs a few tenths of a second per test.
    with running_fake_backoffice() as backoffice:
        yield backoffice


@pytest.fixture
def fake(fake_server: FakeBackOffice) -> FakeBackOffice:
    fake_server.reset()
    return fake_server


def make_client(fake: FakeBackOffice, **overrides: Any) -> ConexxusClient:
    return ConexxusClient(fake.base_url, API_KEY, **{**CLIENT_DEFAULTS, **overrides})


@pytest.fixture
async def client(fake: FakeBackOffice) -> AsyncIterator[ConexxusClient]:
    backoffice = make_client(fake)
    yield backoffice
    await backoffice.close()


def make_worker(database: Database, client: Any, **overrides: Any) -> OutboxWorker:
    return OutboxWorker(database, client, **{**WORKER_DEFAULTS, **overrides})


async def create_stores(database: Database, *codes: str) -> dict[str, int]:
    async with database.unit_of_work() as session:
        stores = [
            Store(code=code, name=f"Store {code}", timezone="America/New_York", state="NY",
                  state_tax_rate=Decimal("0.04"))
            for code in codes
        ]  # fmt: skip
        session.add_all(stores)
        await session.flush()
        return {s.code: s.id for s in stores}


async def enqueue_messages(
    database: Database, store_id: int | None, count: int, *, prefix: str, per_transaction: int = 100
) -> list[str]:
    """`count` sale.completed messages for one store, in transactions of `per_transaction`; returns the keys."""
    keys = []
    for first in range(0, count, per_transaction):
        async with database.unit_of_work() as session:
            for n in range(first, min(first + per_transaction, count)):
                key = f"{prefix}:{n}"
                await service.enqueue(
                    session,
                    store_id=store_id,
                    topic="sale.completed",
                    aggregate_id=f"{prefix}-{n}",
                    payload={"n": n, "total_cents": 1999},
                    idempotency_key=key,
                )
                keys.append(key)
    return keys


async def messages(database: Database) -> dict[str, OutboxMessage]:
    """Every outbox row by idempotency key."""
    async with database.sessionmaker() as session:
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        return {m.idempotency_key: m for m in rows}


async def ids_of(database: Database, keys: list[str]) -> list[int]:
    by_key = await messages(database)
    return [by_key[k].id for k in keys]


async def pending_count(database: Database) -> int:
    async with database.sessionmaker() as session:
        return (await repository.counts(session)).pending


async def drain(worker: OutboxWorker, database: Database, *, within: float = 20.0) -> float:
    """Run the worker until nothing is pending; returns the seconds it took."""
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(worker.run_forever(stop))
    try:
        async with asyncio.timeout(within):
            while True:
                if not await pending_count(database):
                    break
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
    return time.perf_counter() - started


async def wait_until(predicate: Any, *, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)
