"""The process running a checkout is killed (SIGKILL) after each step of the saga; `posomni sagas recover`, another
process, then resolves the sale: completed when the card was captured, compensated otherwise. Nothing is lost and
nothing is charged twice. The card goes through the real Stripe SDK to the fake Stripe server (real HTTP), whose
state outlives the killed process as Stripe's does."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from posomni.config import check, from_mapping
from posomni.database import Database
from posomni.payments.models import Payment
from posomni.sales.models import Sale
from tests.conftest import base_env
from tests.fakes.stripe_server import TEST_API_KEY, FakeStripe, running_fake_stripe
from tests.integration.sales.conftest import CHIPS, SAGA_STEPS, open_register

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    with running_fake_stripe() as server:
        yield server


async def _run(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )


async def _kill_after(env: dict[str, str], sale_id: int, step: str) -> None:
    process = await _run(env, sys.executable, "-m", "tests.integration.sales.checkout_process", str(sale_id), step)
    assert process.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(60):
        while (line := (await process.stdout.readline()).decode()) and line.strip() != f"saved {step}":
            seen.append(line)
    assert line.strip() == f"saved {step}", "".join(seen)
    process.send_signal(signal.SIGKILL)
    assert await process.wait() == -signal.SIGKILL


async def _state(database: Database, sale_id: int) -> tuple[Sale, list[Payment]]:
    async with database.sessionmaker() as session:
        sale = await session.get(Sale, sale_id)
        assert sale is not None
        payments = list(await session.scalars(select(Payment).where(Payment.sale_id == sale_id)))
        return sale, payments


@pytest.mark.parametrize(("step", "outcome"), SAGA_STEPS)
async def test_a_checkout_process_killed_after_each_step_is_recovered_by_another(
    db_url: str, tmp_path: Path, fake: FakeStripe, step: str, outcome: str
) -> None:
    fake.reset()
    env = base_env(
        DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path), CARD_PROCESSOR="stripe",
        STRIPE_SECRET_KEY=TEST_API_KEY, STRIPE_API_BASE=fake.base_url,
    )  # fmt: skip
    settings, problems = check(from_mapping(env))
    assert settings is not None, problems
    database = Database(db_url)
    try:
        async with open_register(settings, database) as register:
            sale: dict[str, Any] = await register.new_sale()
            await register.scan(sale["id"], CHIPS, 2)  # $10.25: $5.00 by card, $10.00 cash
            before = await register.stock(CHIPS)

            await _kill_after(env, sale["id"], step)
            killed, _ = await _state(database, sale["id"])
            assert killed.status == "completing"

            # Another process recovers: the command an operator runs (and the app runs at start-up).
            (tmp_path / "empty.env").write_text("")
            posomni = str(Path(sys.executable).with_name("posomni"))
            recovery = await _run(env, posomni, "sagas", "recover", "--all", "--env-file", str(tmp_path / "empty.env"))
            output = (await recovery.communicate())[0].decode()
            assert recovery.returncode == 0, output

            after, payments = await _state(database, sale["id"])
            card = [p for p in payments if p.tender == "card"]
            intents = fake.payment_intents()
            if outcome == "completed":
                assert after.status == "completed"
                assert [p.status for p in card] == ["captured"]
                assert [(i["status"], i["amount_received"]) for i in intents] == [("succeeded", 500)]
                assert await register.stock(CHIPS) == before - 2
            else:
                assert after.status == "open"
                assert after.failure_code == "checkout_interrupted"
                assert all(p.status in ("voided", "failed") for p in card)
                # Whatever the processor holds for it is released, never captured.
                assert all(i["status"] == "canceled" for i in intents)
                assert await register.stock(CHIPS) == before
                # The sale can then be completed normally.
                done = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 2000}])
                assert done.status_code == 200, done.text
                assert await register.stock(CHIPS) == before - 2
            # Never charged twice, whatever happened.
            assert len(fake.requests("POST", "/v1/payment_intents/*/capture")) <= 1
    finally:
        await database.dispose()
