"""Compensation at every step and a crash at every step: nothing lost, nothing charged twice."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from posomni.auth.principal import Actor
from posomni.outbox import service as outbox_service
from posomni.payments.gateway import CardResult, ProcessorUnavailable
from posomni.payments.models import Payment
from posomni.payments.simulated import SimulatedCardProcessor
from posomni.sales.saga import Checkout, TenderIn
from tests.integration.sales.conftest import CARD_AND_CASH, CHIPS, SAGA_STEPS, CrashAfter, Register, SimulatedCrash


class CaptureFails(SimulatedCardProcessor):
    async def capture(self, reference: str, amount_cents: int, **kwargs: Any) -> CardResult:
        self._count("capture")
        raise ProcessorUnavailable()


async def _payments(register: Register, sale_id: int) -> list[Payment]:
    async with register.database.sessionmaker() as session:
        return list(await session.scalars(select(Payment).where(Payment.sale_id == sale_id).order_by(Payment.id)))


async def _sale(register: Register, sale_id: int) -> dict[str, Any]:
    return dict((await register.http.get(f"/sales/{sale_id}", headers=register.cashier)).json())


async def test_capture_failure_voids_authorisations_and_releases_stock(register: Register) -> None:
    register.app.state.card_gateway = CaptureFails()
    sale = await register.new_sale()
    await register.scan(sale["id"], CHIPS, 2)
    before = await register.stock(CHIPS)
    response = await register.complete(sale["id"], CARD_AND_CASH)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "processor_unavailable"
    assert await register.stock(CHIPS) == before
    after = await _sale(register, sale["id"])
    assert after["status"] == "open"
    assert after["failure_code"] == "processor_unavailable"
    assert [p.status for p in await _payments(register, sale["id"])] == ["voided"]


async def test_finalisation_failure_refunds_the_capture(register: Register, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(outbox_service, "enqueue", broken)
    sale = await register.new_sale()
    await register.scan(sale["id"], CHIPS, 2)
    before = await register.stock(CHIPS)
    response = await register.complete(sale["id"], CARD_AND_CASH)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "checkout_failed"
    payments = await _payments(register, sale["id"])
    assert [p.status for p in payments] == ["refunded"]
    assert register.app.state.card_gateway.calls["refund"] == 1
    assert await register.stock(CHIPS) == before
    assert (await _sale(register, sale["id"]))["status"] == "open"


async def test_insufficient_stock_refuses_before_any_card_is_touched(register: Register) -> None:
    sale = await register.new_sale()
    await register.scan(sale["id"], CHIPS, 61)  # the demo store has 60
    tenders = [
        {"kind": "card", "amount_cents": 500, "payment_method": "pm_sim_visa"},
        {"kind": "cash", "tendered_cents": 100000},
    ]
    response = await register.complete(sale["id"], tenders)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_stock"
    assert register.app.state.card_gateway.calls.get("authorize", 0) == 0
    assert await _payments(register, sale["id"]) == []


@pytest.mark.parametrize(("step", "outcome"), SAGA_STEPS)
async def test_crash_at_each_step_is_recovered(register: Register, step: str, outcome: str) -> None:
    gateway = register.app.state.card_gateway
    sale = await register.new_sale()
    await register.scan(sale["id"], CHIPS, 2)
    before = await register.stock(CHIPS)
    actor = Actor(user_id=None, role="cashier", store_id=1, register_id=1, name="test")
    crashing = Checkout(register.database, register.app.state.crypto, gateway, observer=CrashAfter(step))
    with pytest.raises(SimulatedCrash):
        await crashing.complete(sale["id"], actor, [TenderIn(**t) for t in CARD_AND_CASH])
    assert (await _sale(register, sale["id"]))["status"] == "completing"

    # A new process starts and recovers (its own Checkout, same database, the processor that kept its state).
    recovered = await Checkout(register.database, register.app.state.crypto, gateway).recover(include_live=True)
    assert recovered == [(sale["id"], outcome)]
    after = await _sale(register, sale["id"])
    payments = await _payments(register, sale["id"])
    card = [p for p in payments if p.tender == "card"]
    if outcome == "completed":
        assert after["status"] == "completed"
        assert [p.status for p in card] == ["captured"]
        assert await register.stock(CHIPS) == before - 2
    else:
        assert after["status"] == "open"
        assert after["failure_code"] == "checkout_interrupted"
        assert all(p.status in ("voided", "failed") for p in card)
        assert await register.stock(CHIPS) == before
    # Never charged twice, whatever happened.
    assert gateway.calls.get("capture", 0) <= 1
    # And the sale can be completed normally afterwards when it was compensated.
    if outcome == "compensated":
        done = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 2000}])
        assert done.status_code == 200, done.text
        assert await register.stock(CHIPS) == before - 2


async def test_crash_between_the_processor_call_and_saving_its_answer(register: Register) -> None:
    """The authorisation happened at the processor but the payment row never got its reference."""
    gateway = register.app.state.card_gateway

    real_authorize = gateway.authorize

    async def authorize_then_die(request: Any) -> CardResult:
        await real_authorize(request)
        raise SimulatedCrash("after authorize")

    gateway.authorize = authorize_then_die  # type: ignore[method-assign]
    sale = await register.new_sale()
    await register.scan(sale["id"], CHIPS, 1)
    actor = Actor(user_id=None, role="cashier", store_id=1, register_id=1, name="test")
    with pytest.raises(SimulatedCrash):
        await Checkout(register.database, register.app.state.crypto, gateway).complete(
            sale["id"], actor, [TenderIn(kind="card", amount_cents=513, payment_method="pm_sim_visa")]
        )
    gateway.authorize = real_authorize  # type: ignore[method-assign]
    payments = await _payments(register, sale["id"])
    assert payments[0].status == "pending"
    assert payments[0].provider_reference is None
    await Checkout(register.database, register.app.state.crypto, gateway).recover(include_live=True)
    payments = await _payments(register, sale["id"])
    # Replayed with the same idempotency key: the same authorisation was found and voided; one authorisation.
    assert payments[0].status == "voided"
    assert payments[0].provider_reference is not None
    intents = {i.result.reference: i.result.status.value for i in gateway._intents.values()}
    assert list(intents.values()) == ["voided"]
