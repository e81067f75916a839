"""Real sales at the register, through the API, with the worker delivering to the fake back office: sales made
while the back office is gone and while it is slow are all delivered once, in order, and the checkout never
waits for it; closing the shift sends its Z report."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from posomni.config import Settings
from posomni.database import Database
from posomni.outbox.models import OutboxMessage
from tests.fakes.backoffice_server import FakeBackOffice
from tests.integration.sales.conftest import COKE, LIMES, Register, open_register

from .conftest import drain, make_client, make_worker, pending_count, wait_until

# The back office takes this long per document in the slow phase: a checkout that waited for it could not be
# faster than this.
SLOW_SECONDS = 1.0


async def sell(register: Register, sku: str) -> tuple[int, float]:
    """One sale by scanning, paid in cash; returns the sale id and the seconds the checkout took."""
    sale = await register.new_sale()
    scanned = await register.scan(sale["id"], sku)
    started = time.perf_counter()
    done = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": scanned["total_cents"]}])
    elapsed = time.perf_counter() - started
    assert done.status_code == 200, done.text
    return sale["id"], elapsed


async def outbox_rows(database: Database) -> list[OutboxMessage]:
    async with database.sessionmaker() as session:
        return list((await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def test_sales_while_the_back_office_is_gone_or_slow_arrive_once_in_order_and_never_slow_the_checkout(
    settings: Settings, database: Database, fake: FakeBackOffice
) -> None:
    client = make_client(fake, read_timeout=SLOW_SECONDS * 5)
    worker = make_worker(database, client, lease_seconds=SLOW_SECONDS * 10)
    stop = asyncio.Event()
    try:
        async with open_register(settings, database) as register:
            running = asyncio.create_task(worker.run_forever(stop))
            try:
                # Gone: nothing is listening on the back office's port.
                fake.refuse_connections()
                sold = [await sell(register, COKE if n % 2 else LIMES) for n in range(12)]
                assert fake.keys() == set()
                assert await pending_count(database) == 12
                # Back, but taking a second per document while the register goes on selling.
                fake.slow(SLOW_SECONDS)
                fake.accept_connections()
                await wait_until(lambda: fake.request_count() >= 1, within=10)
                slow_phase = [await sell(register, COKE) for _ in range(6)]
                sold += slow_phase
            finally:
                stop.set()
                await running
            fake.slow(0)
            # Closing the shift queues its Z report with the close.
            closed = await register.http.post(
                f"/shifts/{register.shift_id}/close", json={"counted_cash_cents": 0}, headers=register.manager
            )
            assert closed.status_code == 200, closed.text
            z_report = closed.json()

        await drain(worker, database, within=60)
    finally:
        await client.close()

    # The register never waited for the back office.
    assert max(seconds for _, seconds in slow_phase) < SLOW_SECONDS, slow_phase
    rows = await outbox_rows(database)
    sale_keys = [f"sale:{sale_id}:completed" for sale_id, _ in sold]
    by_key = {row.idempotency_key: row for row in rows}
    assert set(sale_keys) <= set(by_key)
    assert all(by_key[key].status == "delivered" for key in by_key)
    # Every message once, by key, in the store's order.
    assert fake.keys() == set(by_key)
    assert all(fake.delivery_count(key) == 1 for key in by_key)
    store_code = next(iter(fake.stores()))
    assert fake.stores() == {store_code}
    assert fake.first_arrival_order(store_code) == [row.id for row in rows]
    # The sale documents carry their lines with the GTIN and the cash tender.
    document = fake.documents[sale_keys[0]].body
    assert document["type"] == "sale.completed"
    assert document["data"]["lines"][0]["gtin"]
    assert [t["tender"] for t in document["data"]["tenders"]] == ["cash"]
    # The Z report is the last document of the store, as the register printed it.
    z = fake.documents[f"shift:{register.shift_id}:closed"].body
    assert z["type"] == "shift.closed"
    assert z["sequence"] == rows[-1].id
    assert z["data"]["sales_count"] == len(sold) == z_report["sales_count"]
    assert z["data"]["net_sales_cents"] == z_report["net_sales_cents"]
    assert z["data"]["audit_chain_head"] == z_report["audit_chain_head"]
