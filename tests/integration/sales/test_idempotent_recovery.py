"""A register whose completion died with the app retries with the same Idempotency-Key: once the saga recovery
has resolved the sale, the retry gets the answer (completed) or runs again (compensated) instead of being told
that the key is still in use."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from posomni.auth.principal import Actor
from posomni.idempotency import service as idempotency
from posomni.idempotency.models import IdempotencyKey
from posomni.sales import saga as saga_module
from posomni.sales.saga import Checkout, StepObserver, TenderIn, completion_scope
from posomni.sales.schemas import CompleteIn
from posomni.users.models import User
from tests.integration.sales.conftest import CARD_AND_CASH, CHIPS, CrashAfter, Register, SimulatedCrash


async def _cashier_id(register: Register) -> int:
    async with register.database.sessionmaker() as session:
        user_id = await session.scalar(select(User.id).where(User.username == "cashier"))
    assert user_id is not None
    return user_id


async def _keys(register: Register, scope: str) -> list[IdempotencyKey]:
    async with register.database.sessionmaker() as session:
        return list(await session.scalars(select(IdempotencyKey).where(IdempotencyKey.scope == scope)))


async def _die_mid_completion(register: Register, step: str, key: str) -> tuple[int, str]:
    """A completion request claims its key, and its process dies after `step`: the key stays claimed."""
    sale = await register.new_sale()
    await register.scan(sale["id"], CHIPS, 2)
    user_id = await _cashier_id(register)
    scope = completion_scope(user_id, sale["id"])
    body = CompleteIn.model_validate({"tenders": CARD_AND_CASH}).model_dump(mode="json")
    assert await idempotency.begin(register.database, scope, key, idempotency.body_hash(body)) is None
    actor = Actor(user_id=user_id, role="cashier", store_id=1, register_id=1, name="cashier")
    gateway = register.app.state.card_gateway
    crashing = Checkout(register.database, register.app.state.crypto, gateway, observer=CrashAfter(step))
    with pytest.raises(SimulatedCrash):
        await crashing.complete(sale["id"], actor, [TenderIn(**t) for t in CARD_AND_CASH])
    return sale["id"], scope


async def test_a_retry_before_the_recovery_is_told_the_key_is_in_use(register: Register) -> None:
    sale_id, _ = await _die_mid_completion(register, "captured", "register-7-sale-1")
    retry = await register.complete(sale_id, CARD_AND_CASH, key="register-7-sale-1")
    assert retry.status_code == 409
    assert retry.json()["error"]["code"] == "idempotency_key_in_use"


async def test_a_retry_after_recovery_completed_the_sale_gets_the_completed_sale(register: Register) -> None:
    gateway = register.app.state.card_gateway
    before = await register.stock(CHIPS)
    sale_id, scope = await _die_mid_completion(register, "captured", "register-7-sale-2")

    recovered = await Checkout(register.database, register.app.state.crypto, gateway).recover(include_live=True)
    assert recovered == [(sale_id, "completed")]
    [key] = await _keys(register, scope)
    assert (key.status, key.response_status) == ("completed", 200)

    retry = await register.complete(sale_id, CARD_AND_CASH, key="register-7-sale-2")
    assert retry.status_code == 200, retry.text
    answer: dict[str, Any] = retry.json()
    assert answer["id"] == sale_id
    assert answer["status"] == "completed"
    assert sorted(p["tender"] for p in answer["payments"]) == ["card", "cash"]
    current = (await register.http.get(f"/sales/{sale_id}", headers=register.cashier)).json()
    assert answer == current
    # Charged once, stock taken once.
    assert gateway.calls["capture"] == 1
    assert gateway.calls["authorize"] == 1
    assert await register.stock(CHIPS) == before - 2


async def test_a_retry_after_recovery_compensated_the_sale_runs_the_completion_again(register: Register) -> None:
    gateway = register.app.state.card_gateway
    before = await register.stock(CHIPS)
    sale_id, scope = await _die_mid_completion(register, "authorized", "register-7-sale-3")

    recovered = await Checkout(register.database, register.app.state.crypto, gateway).recover(include_live=True)
    assert recovered == [(sale_id, "compensated")]
    assert await _keys(register, scope) == []  # the key is free again

    retry = await register.complete(sale_id, CARD_AND_CASH, key="register-7-sale-3")
    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "completed"
    payments = retry.json()["payments"]
    assert sorted(p["status"] for p in payments if p["tender"] == "card") == ["captured", "voided"]
    # The interrupted attempt's authorisation was voided; the retry's was captured, once.
    assert gateway.calls["capture"] == 1
    assert await register.stock(CHIPS) == before - 2
    # And a second retry with the key gets the stored answer, without running anything.
    again = await register.complete(sale_id, CARD_AND_CASH, key="register-7-sale-3")
    assert again.status_code == 200
    assert again.json() == retry.json()
    assert gateway.calls["capture"] == 1


async def test_the_answer_is_stored_with_the_completion(register: Register, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies right after the completion committed, before the request could store its answer:
    the answer was written in the same transaction, so the retry gets it without any recovery."""

    async def die_after_completed(self: StepObserver, sale_id: int, step: str) -> None:
        if step == "completed":
            raise SimulatedCrash(step)

    monkeypatch.setattr(saga_module.StepObserver, "after", die_after_completed)
    sale = await register.new_sale()
    await register.scan(sale["id"], CHIPS)
    tenders = [{"kind": "cash", "tendered_cents": 1000}]
    with pytest.raises(SimulatedCrash):
        await register.complete(sale["id"], tenders, key="register-7-sale-4")
    monkeypatch.undo()

    [key] = await _keys(register, completion_scope(await _cashier_id(register), sale["id"]))
    assert (key.status, key.response_status) == ("completed", 200)
    retry = await register.complete(sale["id"], tenders, key="register-7-sale-4")
    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "completed"
    assert retry.json() == (await register.http.get(f"/sales/{sale['id']}", headers=register.cashier)).json()
