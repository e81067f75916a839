"""Several workers on one PostgreSQL database: never two deliveries of one store at once, order per store
kept, every message delivered once, and a claim never waits behind another worker's locks."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from posomni.database import Database
from posomni.kit.time import utcnow
from posomni.outbox import repository
from posomni.outbox.worker import OutboxWorker
from tests.fakes.backoffice_server import FakeBackOffice

from .conftest import create_stores, enqueue_messages, ids_of, make_client, make_worker, pending_count


async def _work_until_empty(worker: OutboxWorker, database: Database, stop: asyncio.Event) -> int:
    delivered = 0
    while not stop.is_set():
        count = await worker.run_once()
        delivered += count
        if count == 0:
            if await pending_count(database) == 0:
                stop.set()
            await asyncio.sleep(0.005)
    return delivered


async def test_two_workers_racing_deliver_each_message_once_in_order_one_per_store_at_a_time(
    pg_url: str, fake: FakeBackOffice
) -> None:
    databases = [Database(pg_url, pool_size=3), Database(pg_url, pool_size=3)]
    clients = [make_client(fake), make_client(fake)]
    try:
        stores = await create_stores(databases[0], "S1", "S2", "S3")
        keys = {code: await enqueue_messages(databases[0], sid, 60, prefix=code) for code, sid in stores.items()}
        # A little latency keeps each delivery in flight long enough for the other worker to try the store.
        fake.slow(0.002)
        # Two stores per round each, so the workers must share three stores between them.
        workers = [make_worker(db, client, batch_size=2) for db, client in zip(databases, clients, strict=True)]
        stop = asyncio.Event()
        async with asyncio.timeout(30):
            rounds = (_work_until_empty(w, db, stop) for w, db in zip(workers, databases, strict=True))
            delivered = await asyncio.gather(*rounds)
    finally:
        for client in clients:
            await client.close()
        for database in databases:
            await database.dispose()

    assert fake.overlaps == 0, "two deliveries of one store were in flight at the same time"
    assert sum(delivered) == 180
    assert min(delivered) > 0, f"one worker did all the work: {delivered}"
    database = Database(pg_url)
    try:
        for code, store_keys in keys.items():
            assert fake.first_arrival_order(code) == await ids_of(database, store_keys)
            assert all(fake.delivery_count(k) == 1 for k in store_keys)
    finally:
        await database.dispose()


async def test_a_claim_skips_the_heads_another_worker_is_claiming_without_waiting(pg_url: str) -> None:
    database = Database(pg_url, pool_size=3)
    try:
        stores = await create_stores(database, "S1", "S2", "S3")
        for code, sid in stores.items():
            await enqueue_messages(database, sid, 2, prefix=code)
        now = utcnow()
        lease = now + timedelta(seconds=30)
        async with database.sessionmaker() as first, database.sessionmaker() as second:
            # The first worker's claim transaction is still open: its heads are locked, not yet leased.
            mine = await repository.claim_heads(first, now=now, lease_until=lease, limit=2, skip_locked=True)
            async with asyncio.timeout(2):
                theirs = await repository.claim_heads(second, now=now, lease_until=lease, limit=10, skip_locked=True)
            my_ids, their_ids = {c.message.id for c in mine}, {c.message.id for c in theirs}
            await second.rollback()
            await first.rollback()
    finally:
        await database.dispose()

    assert len(my_ids) == 2
    assert len(their_ids) == 1
    assert my_ids.isdisjoint(their_ids)
    assert {c.store_code for c in mine + theirs} == {"S1", "S2", "S3"}
