"""A checkout in a process of its own, for the crash tests: `python -m tests.integration.sales.checkout_process
SALE_ID STEP` completes the sale with a card and cash, configured from the environment like the app, prints
`saved STEP` once that step of the saga is saved, and then waits to be killed. It never goes past STEP."""

from __future__ import annotations

import asyncio
import sys

from posomni import bootstrap
from posomni.auth.principal import Actor
from posomni.config import load_settings
from posomni.database import Database
from posomni.sales.saga import Checkout, StepObserver, TenderIn

CARD_AND_CASH = [
    TenderIn(kind="card", amount_cents=500, payment_method="pm_card_visa"),
    TenderIn(kind="cash", tendered_cents=1000),
]


class StopAt(StepObserver):
    def __init__(self, step: str) -> None:
        self.step = step

    async def after(self, sale_id: int, step: str) -> None:
        if step == self.step:
            print(f"saved {step}", flush=True)
            await asyncio.sleep(3600)  # the test kills the process here


async def main(sale_id: int, step: str) -> None:
    settings = load_settings(env_file=None)  # the environment only, as the test sets it
    database = Database(settings.database_url.get_secret_value(), pool_size=2)
    gateway = bootstrap.card_gateway(settings)
    checkout = Checkout(database, bootstrap.encryption(settings), gateway, observer=StopAt(step))
    actor = Actor(user_id=None, role="cashier", store_id=1, register_id=1, name="crash-test")
    await checkout.complete(sale_id, actor, CARD_AND_CASH)
    print("completed", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
