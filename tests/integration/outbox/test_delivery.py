"""The outbox and its worker against the fake back office, on SQLite and PostgreSQL: outages, poison
messages, Retry-After, lost responses, a worker that dies mid-delivery, and what /health and the metrics see."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from posomni.backoffice.client import NullBackOfficeClient
from posomni.backoffice.conexxus import ConexxusClient
from posomni.database import Database
from posomni.kit.time import utcnow
from posomni.outbox import repository, service
from posomni.outbox.errors import InvalidOutboxMessage, OutboxMessageNotDead
from posomni.outbox.models import OutboxMessage
from posomni.outbox.worker import OutboxWorker
from posomni.worker import outbox_worker
from tests.conftest import make_settings
from tests.fakes.backoffice_server import FakeBackOffice

from .conftest import (
    create_stores,
    drain,
    enqueue_messages,
    ids_of,
    make_client,
    make_worker,
    messages,
    pending_count,
    wait_until,
)

# How long the 1,000-message backlog may take to drain once the back office is back.
BACKLOG_DRAIN_BOUND_S = 180.0


async def test_enqueue_belongs_to_the_callers_transaction(database: Database) -> None:
    stores = await create_stores(database, "S1")

    async def failing_sale() -> None:
        async with database.unit_of_work() as session:
            await service.enqueue(
                session, store_id=stores["S1"], topic="sale.voided", aggregate_id="sale-1", payload={"x": 1}
            )
            raise RuntimeError("the sale failed")

    with pytest.raises(RuntimeError):
        await failing_sale()
    assert await messages(database) == {}

    async with database.unit_of_work() as session:
        message = await service.enqueue(
            session, store_id=stores["S1"], topic="shift.closed", aggregate_id="7", payload={"z": 1}
        )
    assert message.idempotency_key.startswith("shift.closed:7:")
    assert (await messages(database))[message.idempotency_key].status == "pending"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("topic", "sale.exploded"),
        ("aggregate_id", ""),
        ("idempotency_key", "has spaces in it"),
        ("request_id", "bad\nid"),
        ("payload", {"amount": float("nan")}),
    ],
)
async def test_enqueue_refuses_what_the_back_office_could_not_take(
    database: Database, field: str, value: object
) -> None:
    arguments: dict[str, object] = {
        "store_id": None,
        "topic": "price.changed",
        "aggregate_id": "p1",
        "payload": {"price_cents": 100},
    }
    arguments[field] = value
    async with database.sessionmaker() as session:
        with pytest.raises(InvalidOutboxMessage):
            await service.enqueue(session, **arguments)  # type: ignore[arg-type]


# The suite's 120-s limit per test would cut the drain's wait short: this test gets the wait plus two minutes.
@pytest.mark.timeout(BACKLOG_DRAIN_BOUND_S + 120)
async def test_back_office_down_while_1000_messages_are_enqueued_then_each_arrives_once_in_order(
    database: Database, fake: FakeBackOffice, client: ConexxusClient
) -> None:
    stores = await create_stores(database, "S1", "S2", "S3")
    fake.refuse_connections()
    worker = make_worker(database, client)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run_forever(stop))
    try:
        keys: dict[str, list[str]] = {code: [] for code in stores}
        # Interleaved across stores, as three busy registers would write them.
        for round_ in range(4):
            for code, store_id in stores.items():
                keys[code] += await enqueue_messages(
                    database, store_id, 84 if code != "S3" else 82, prefix=f"{code}-r{round_}", per_transaction=42
                )
        assert sum(len(k) for k in keys.values()) == 1000
        await asyncio.sleep(0.3)
        assert await pending_count(database) == 1000
        assert (await client.health())["last_error"].startswith("ConnectError")
    finally:
        stop.set()
        await running

    fake.accept_connections()
    await asyncio.sleep(0.25)  # let the breaker's recovery time pass
    # A bound on the wait, not a speed test: the drain took over 30 s at a load average of 7 on two cores (the
    # whole test takes ~15 s at 4). Only a drain that stops making progress should fail here.
    await drain(worker, database, within=BACKLOG_DRAIN_BOUND_S)

    assert fake.keys() == {k for store_keys in keys.values() for k in store_keys}
    assert all(fake.delivery_count(k) == 1 for store_keys in keys.values() for k in store_keys)
    for code, store_keys in keys.items():
        assert fake.first_arrival_order(code) == await ids_of(database, store_keys)


async def test_a_poison_message_is_parked_at_once_and_blocks_nothing(
    database: Database, fake: FakeBackOffice, client: ConexxusClient
) -> None:
    stores = await create_stores(database, "S1", "S2")
    s1 = await enqueue_messages(database, stores["S1"], 3, prefix="s1")
    s2 = await enqueue_messages(database, stores["S2"], 3, prefix="s2")
    fake.poison(s1[1], status=400)

    await drain(make_worker(database, client), database)

    parked = (await messages(database))[s1[1]]
    assert parked.status == "dead"
    assert parked.attempts == 1
    assert parked.last_error is not None
    assert parked.last_error.startswith("rejected: HTTP 400")
    assert fake.first_arrival_order("S1") == await ids_of(database, [s1[0], s1[2]])
    assert fake.first_arrival_order("S2") == await ids_of(database, s2)
    async with database.sessionmaker() as session:
        report = await service.status(session)
    assert (report.pending, report.dead, report.delivered) == (0, 1, 5)
    assert [d.idempotency_key for d in report.dead_messages] == [s1[1]]

    fake.cure(s1[1])
    async with database.unit_of_work() as session:
        await service.retry(session, parked.id)
    await drain(make_worker(database, client), database)

    assert (await messages(database))[s1[1]].status == "delivered"
    assert fake.delivery_count(s1[1]) == 1
    async with database.unit_of_work() as session:
        with pytest.raises(OutboxMessageNotDead):
            await service.retry(session, parked.id)


async def test_a_message_failing_with_5xx_is_parked_after_max_attempts_and_retry_brings_it_back(
    database: Database, fake: FakeBackOffice
) -> None:
    stores = await create_stores(database, "S1")
    keys = await enqueue_messages(database, stores["S1"], 3, prefix="s1")
    fake.poison(keys[0], status=500)
    client = make_client(fake, max_tries=1, failure_threshold=100)
    try:
        await drain(make_worker(database, client, max_attempts=3), database)

        failed = (await messages(database))[keys[0]]
        assert failed.status == "dead"
        assert failed.attempts == 3
        assert failed.last_error is not None
        assert failed.last_error.startswith("failed: HTTP 500")
        assert fake.keys() == {keys[1], keys[2]}

        fake.cure(keys[0])
        async with database.unit_of_work() as session:
            assert [m.id for m in await service.retry_all_dead(session)] == [failed.id]
        await drain(make_worker(database, client), database)
    finally:
        await client.close()
    assert (await messages(database))[keys[0]].status == "delivered"
    assert fake.delivery_count(keys[0]) == 1


async def test_a_failing_head_holds_back_its_store_but_not_the_others(
    database: Database, fake: FakeBackOffice, client: ConexxusClient
) -> None:
    stores = await create_stores(database, "S1", "S2")
    s1 = await enqueue_messages(database, stores["S1"], 3, prefix="s1")
    await enqueue_messages(database, stores["S2"], 20, prefix="s2")
    # 503 says "unavailable": the message is not at fault, so it is never parked, and it waits in front.
    fake.poison(s1[0], status=503)
    worker = make_worker(database, client)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run_forever(stop))
    try:
        await wait_until(lambda: len(fake.first_arrival_order("S2")) == 20)
        await asyncio.sleep(0.2)
        head = (await messages(database))[s1[0]]
        assert head.status == "pending"
        assert head.attempts == 0
        assert head.last_error is not None
        assert head.last_error.startswith("unavailable: HTTP 503")
        assert fake.first_arrival_order("S1") == []
        fake.cure(s1[0])
        await wait_until(lambda: len(fake.first_arrival_order("S1")) == 3)
    finally:
        stop.set()
        await running
    assert fake.first_arrival_order("S1") == await ids_of(database, s1)


async def test_flapping_back_office_delivers_everything_once_and_in_order(
    database: Database, fake: FakeBackOffice, client: ConexxusClient
) -> None:
    stores = await create_stores(database, "S1", "S2")
    s1 = await enqueue_messages(database, stores["S1"], 25, prefix="s1")
    s2 = await enqueue_messages(database, stores["S2"], 25, prefix="s2")
    fake.flap()

    await drain(make_worker(database, client), database)

    assert all(fake.delivery_count(k) == 1 for k in s1 + s2)
    assert fake.first_arrival_order("S1") == await ids_of(database, s1)
    assert fake.first_arrival_order("S2") == await ids_of(database, s2)


async def test_retry_after_longer_than_the_client_waits_is_honoured_by_the_schedule(
    database: Database, fake: FakeBackOffice
) -> None:
    stores = await create_stores(database, "S1")
    keys = await enqueue_messages(database, stores["S1"], 1, prefix="s1")
    fake.rate_limit(1, retry_after="1")
    client = make_client(fake, max_retry_after_wait=0.1)
    worker = make_worker(database, client, backoff_max=5.0)
    try:
        started = time.monotonic()
        assert await worker.run_once() == 0
        waiting = (await messages(database))[keys[0]]
        assert waiting.next_attempt_at - utcnow() > timedelta(seconds=0.8)
        assert await worker.run_once() == 0  # not due yet: no request
        assert fake.request_count() == 1

        await drain(worker, database)
    finally:
        await client.close()
    assert time.monotonic() - started >= 1.0
    assert fake.request_count() == 2
    assert fake.delivery_count(keys[0]) == 1


async def test_a_response_lost_after_processing_is_delivered_again_with_the_same_key(
    database: Database, fake: FakeBackOffice
) -> None:
    stores = await create_stores(database, "S1")
    keys = await enqueue_messages(database, stores["S1"], 2, prefix="s1")
    fake.lose_next_responses(1)
    # One try per delivery: the resend comes from the outbox, not from the client's retry.
    client = make_client(fake, max_tries=1)
    try:
        await drain(make_worker(database, client), database)
    finally:
        await client.close()
    assert fake.delivery_count(keys[0]) == 2
    assert fake.delivery_count(keys[1]) == 1
    assert fake.first_arrival_order("S1") == await ids_of(database, keys)


async def test_a_slow_back_office_never_slows_enqueue(
    database: Database, fake: FakeBackOffice, client: ConexxusClient
) -> None:
    stores = await create_stores(database, "S1", "S2")
    await enqueue_messages(database, stores["S1"], 5, prefix="backlog")
    fake.slow(1.0)
    worker = make_worker(database, client)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run_forever(stop))
    try:
        await wait_until(lambda: fake.request_count() >= 1)
        timings = []
        for n in range(20):
            started = time.perf_counter()
            await enqueue_messages(database, stores["S2"], 1, prefix=f"sale-{n}")
            timings.append(time.perf_counter() - started)
    finally:
        stop.set()
        fake.slow(0)
        await running
    # A back office taking a second per document must not show in the sale's transaction.
    assert max(timings) < 0.25, timings


async def test_a_worker_killed_mid_delivery_loses_nothing(database: Database, fake: FakeBackOffice) -> None:
    stores = await create_stores(database, "S1", "S2")
    s1 = await enqueue_messages(database, stores["S1"], 3, prefix="s1")
    s2 = await enqueue_messages(database, stores["S2"], 3, prefix="s2")
    fake.slow(0.3)
    first, second = make_client(fake), make_client(fake)
    try:
        doomed = asyncio.create_task(make_worker(database, first, lease_seconds=1.0).run_once())
        await wait_until(lambda: fake.request_count() >= 2)
        doomed.cancel()  # the process dies: its claims are never completed
        with pytest.raises(asyncio.CancelledError):
            await doomed
        fake.slow(0)

        survivor = make_worker(database, second, lease_seconds=1.0)
        assert await survivor.run_once() == 0, "the dead worker's leases still hold"
        seconds = await drain(survivor, database)
    finally:
        await first.close()
        await second.close()

    assert seconds > 0.3
    assert fake.keys() == set(s1 + s2)
    assert fake.first_arrival_order("S1") == await ids_of(database, s1)
    assert fake.first_arrival_order("S2") == await ids_of(database, s2)
    # The heads in flight when the worker died were stored by the back office and sent again with their keys.
    assert fake.delivery_count(s1[0]) == 2
    assert fake.delivery_count(s2[0]) == 2


async def test_an_abandoned_claim_expires_and_the_message_is_delivered(
    database: Database, fake: FakeBackOffice, client: ConexxusClient
) -> None:
    stores = await create_stores(database, "S1")
    keys = await enqueue_messages(database, stores["S1"], 2, prefix="s1")
    now = utcnow()
    async with database.unit_of_work() as session:
        claims = await repository.claim_heads(
            session, now=now, lease_until=now + timedelta(seconds=0.5), limit=10, skip_locked=False
        )
    assert [c.message.idempotency_key for c in claims] == [keys[0]]

    worker = make_worker(database, client)
    assert await worker.run_once() == 0
    await asyncio.sleep(0.5)
    await drain(worker, database)

    assert fake.first_arrival_order("S1") == await ids_of(database, keys)
    async with database.unit_of_work() as session:
        assert not await repository.finish(session, claims[0], status="delivered"), "a stale lease records nothing"


async def test_without_a_back_office_messages_wait_and_health_degrades_when_they_are_old(database: Database) -> None:
    stores = await create_stores(database, "S1")
    await enqueue_messages(database, stores["S1"], 3, prefix="s1")
    client = NullBackOfficeClient()
    assert await make_worker(database, client).run_once() == 0

    async with database.sessionmaker() as session:
        fresh = await service.health(session, backoffice=await client.health())
        later = await service.health(session, backoffice=await client.health(), now=utcnow() + timedelta(minutes=16))
    assert fresh.status == "ok"
    assert fresh.pending == 3
    assert later.status == "degraded"
    assert "no back office configured" in later.message
    assert REGISTRY.get_sample_value("posomni_outbox_pending_messages") == 3


async def test_deliveries_are_counted_in_the_metrics(
    database: Database, fake: FakeBackOffice, client: ConexxusClient
) -> None:
    stores = await create_stores(database, "S1")
    await enqueue_messages(database, stores["S1"], 4, prefix="s1")
    before = REGISTRY.get_sample_value("posomni_outbox_delivered_total", {"topic": "sale.completed"}) or 0.0

    await drain(make_worker(database, client), database)

    after = REGISTRY.get_sample_value("posomni_outbox_delivered_total", {"topic": "sale.completed"})
    assert after == before + 4
    async with database.sessionmaker() as session:
        report = await service.health(session)
    assert report.status == "ok"
    assert REGISTRY.get_sample_value("posomni_outbox_pending_messages") == 0
    assert REGISTRY.get_sample_value("posomni_outbox_oldest_pending_age_seconds") == 0


async def _fail_twice(database: Database, worker: OutboxWorker, key: str) -> OutboxMessage:
    for _ in range(2):
        async with database.unit_of_work() as session:  # due now, whatever the backoff said
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.idempotency_key == key).values(next_attempt_at=utcnow())
            )
        await worker.run_once()
    return (await messages(database))[key]


async def test_outbox_max_attempts_sets_how_many_failures_park_a_message(
    database: Database, fake: FakeBackOffice
) -> None:
    stores = await create_stores(database, "S1", "S2")
    configured_key, default_key = "s1:0", "s2:0"
    fake.poison(configured_key, status=500)
    fake.poison(default_key, status=500)
    client = make_client(fake, max_tries=1, failure_threshold=100)
    try:
        await enqueue_messages(database, stores["S1"], 1, prefix="s1")
        configured = await _fail_twice(
            database, outbox_worker(database, client, make_settings(OUTBOX_MAX_ATTEMPTS="2")), configured_key
        )
        # The default (10) keeps trying after two failures.
        await enqueue_messages(database, stores["S2"], 1, prefix="s2")
        default = await _fail_twice(database, outbox_worker(database, client, make_settings()), default_key)
    finally:
        await client.close()
    assert (configured.status, configured.attempts) == ("dead", 2)
    assert configured.last_error is not None
    assert configured.last_error.startswith("failed: HTTP 500")
    assert (default.status, default.attempts) == ("pending", 2)
