"""The request id of a card sale reaches Stripe: the fake Stripe (real HTTP, driven by the real SDK) sees it on
the PaymentIntent, so a payment in Stripe's dashboard leads back to the request, its log lines and audit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from posomni.audit.models import AuditEntry
from tests.fakes.stripe_server import FakeStripe, running_fake_stripe
from tests.integration.sales.conftest import CHIPS, Register, open_stripe_register

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    with running_fake_stripe() as server:
        yield server


@pytest.fixture
async def stripe_register(db_url: str, tmp_path: Path, fake: FakeStripe) -> AsyncIterator[Register]:
    async with open_stripe_register(db_url, tmp_path, fake) as register:
        yield register


async def test_the_request_id_of_a_card_sale_is_on_its_payment_intent(
    stripe_register: Register, fake: FakeStripe
) -> None:
    request_id = "till-3:card-sale-0042"
    sale = await stripe_register.new_sale()
    await stripe_register.scan(sale["id"], CHIPS)
    headers = {**stripe_register.cashier, "X-Request-ID": request_id}

    done = await stripe_register.http.post(
        f"/sales/{sale['id']}/complete",
        json={"tenders": [{"kind": "card", "amount_cents": 513, "payment_method": "pm_card_visa"}]},
        headers=headers,
    )

    assert done.status_code == 200, done.text
    assert done.headers["x-request-id"] == request_id
    [intent] = fake.payment_intents()
    assert intent["status"] == "succeeded"
    assert intent["metadata"]["request_id"] == request_id
    assert intent["metadata"]["sale_id"] == str(sale["id"])
    async with stripe_register.database.sessionmaker() as session:
        audited = set(
            await session.scalars(
                select(AuditEntry.request_id).where(
                    AuditEntry.action == "sale.completed", AuditEntry.target_id == str(sale["id"])
                )
            )
        )
    assert audited == {request_id}
