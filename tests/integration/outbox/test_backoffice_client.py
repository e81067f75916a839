"""The Conexxus REST client against the fake back office over real HTTP: headers, retries, Retry-After, 4xx
not retried, the circuit breaker failing fast, and a response lost after the document was stored."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from prometheus_client import REGISTRY

from posomni.backoffice.client import NullBackOfficeClient, build_backoffice_client
from posomni.backoffice.conexxus import ConexxusClient, parse_retry_after
from posomni.backoffice.schemas import OutboundMessage, Outcome
from posomni.kit.time import utcnow
from tests.conftest import make_settings
from tests.fakes.backoffice_server import FakeBackOffice

from .conftest import make_client


def message(n: int = 1, *, store: str | None = "S1", request_id: str | None = "req-000000001") -> OutboundMessage:
    return OutboundMessage(
        id=n,
        store_id=1 if store else None,
        store_code=store,
        topic="sale.completed",
        aggregate_id=f"sale-{n}",
        idempotency_key=f"sale.completed:{n}",
        request_id=request_id,
        payload={"total_cents": 1999},
        created_at=utcnow(),
    )


async def test_a_document_carries_its_key_request_id_and_api_key(client: ConexxusClient, fake: FakeBackOffice) -> None:
    result = await client.deliver(message(7))
    chain = await client.deliver(message(8, store=None, request_id=None))

    assert result.outcome is Outcome.DELIVERED
    assert chain.delivered
    document = fake.documents["sale.completed:7"]
    assert (document.store, document.sequence, document.type) == ("S1", 7, "sale.completed")
    assert document.request_id == "req-000000001"
    assert document.body["data"] == {"total_cents": 1999}
    assert fake.documents["sale.completed:8"].store == "(chain)"
    assert fake.documents["sale.completed:8"].request_id == "outbox-8"


async def test_a_4xx_is_never_retried(client: ConexxusClient, fake: FakeBackOffice) -> None:
    fake.poison("sale.completed:1", status=422)

    result = await client.deliver(message())

    assert result.outcome is Outcome.REJECTED
    assert result.status_code == 422
    assert fake.request_count() == 1


async def test_a_5xx_is_retried_with_backoff_until_it_succeeds(client: ConexxusClient, fake: FakeBackOffice) -> None:
    fake.poison("sale.completed:1", status=500, times=2)

    result = await client.deliver(message())

    assert result.delivered
    assert fake.request_count() == 3


async def test_a_persistent_5xx_is_failed_after_the_last_try(client: ConexxusClient, fake: FakeBackOffice) -> None:
    fake.poison("sale.completed:1", status=500)

    result = await client.deliver(message())

    assert result.outcome is Outcome.FAILED
    assert fake.request_count() == 3


async def test_429_waits_as_long_as_retry_after_says(client: ConexxusClient, fake: FakeBackOffice) -> None:
    fake.rate_limit(1, retry_after="1")
    started = time.monotonic()

    result = await client.deliver(message())

    assert result.delivered
    assert time.monotonic() - started >= 1.0
    assert fake.request_count() == 2


async def test_a_long_retry_after_is_handed_back_instead_of_slept(client: ConexxusClient, fake: FakeBackOffice) -> None:
    fake.rate_limit(1, retry_after="30")
    started = time.monotonic()

    result = await client.deliver(message())

    assert result.outcome is Outcome.UNAVAILABLE
    assert result.retry_after == 30.0
    assert time.monotonic() - started < 1.0
    assert fake.request_count() == 1


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after("Sun, 01 Jun 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sun, 01 Jun 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None


async def test_a_wrong_api_key_is_a_configuration_problem_not_a_rejection(fake: FakeBackOffice) -> None:
    client = ConexxusClient(fake.base_url, "not-the-key", backoff_base=0.001, backoff_max=0.001)
    try:
        result = await client.deliver(message())
    finally:
        await client.close()

    assert result.outcome is Outcome.MISCONFIGURED
    assert fake.request_count() == 1


async def test_no_answer_in_time_is_unavailable(fake: FakeBackOffice) -> None:
    fake.slow(0.4)
    client = make_client(fake, read_timeout=0.1, max_tries=2)
    try:
        result = await client.deliver(message())
    finally:
        await client.close()

    assert result.outcome is Outcome.UNAVAILABLE
    assert "no answer in time" in (result.error or "")


async def test_flapping_back_office_is_absorbed_by_the_retries(client: ConexxusClient, fake: FakeBackOffice) -> None:
    fake.flap()

    results = [await client.deliver(message(n)) for n in range(1, 11)]

    assert all(r.delivered for r in results)
    assert len(fake.keys()) == 10


async def test_a_response_lost_after_processing_is_resent_and_dropped_by_key(
    client: ConexxusClient, fake: FakeBackOffice
) -> None:
    fake.lose_next_responses(1)

    result = await client.deliver(message())

    assert result.delivered
    assert result.duplicate
    assert fake.delivery_count("sale.completed:1") == 2
    assert len(fake.keys()) == 1


async def test_the_breaker_opens_after_repeated_failures_and_then_fails_fast(fake: FakeBackOffice) -> None:
    fake.go_down()
    client = make_client(fake, failure_threshold=3, recovery_seconds=0.5, max_tries=2)
    try:
        for n in range(3):
            assert (await client.deliver(message(n))).outcome is Outcome.UNAVAILABLE
        health = await client.health()
        assert health["circuit"] == "opened"
        assert REGISTRY.get_sample_value("posomni_backoffice_circuit_state") == 2
        requests_before = fake.request_count()

        started = time.perf_counter()
        result = await client.deliver(message(99))
        elapsed = time.perf_counter() - started

        assert result.outcome is Outcome.CIRCUIT_OPEN
        assert result.retry_after is not None
        assert 0 < result.retry_after <= 0.5
        assert elapsed < 0.05
        assert fake.request_count() == requests_before, "an open circuit must not call the back office"

        fake.come_back()
        await asyncio.sleep(0.5)  # the breaker's recovery time: the next call is let through as a probe
        assert (await client.deliver(message(100))).delivered
        assert (await client.health())["circuit"] == "closed"
        assert REGISTRY.get_sample_value("posomni_backoffice_circuit_state") == 0
    finally:
        await client.close()


async def test_without_a_back_office_url_the_null_client_delivers_nothing() -> None:
    client = build_backoffice_client(make_settings())
    assert isinstance(client, NullBackOfficeClient)
    assert client.configured is False
    result = await client.deliver(message())
    assert result.outcome is Outcome.DISABLED
    assert (await client.health())["configured"] is False
    await client.close()


async def test_with_a_back_office_url_the_conexxus_client_is_built(fake: FakeBackOffice) -> None:
    settings = make_settings(CONEXXUS_API_URL=fake.base_url, CONEXXUS_API_KEY="bo_test_key_0123456789")
    client = build_backoffice_client(settings)
    try:
        assert isinstance(client, ConexxusClient)
        assert (await client.deliver(message())).delivered
    finally:
        await client.close()


async def test_conexxus_timeout_seconds_bounds_each_request(fake: FakeBackOffice) -> None:
    fake.slow(1.0)
    impatient = build_backoffice_client(
        make_settings(CONEXXUS_API_URL=fake.base_url, CONEXXUS_API_KEY="bo_test_key_0123456789",
                      CONEXXUS_TIMEOUT_SECONDS="0.5")
    )  # fmt: skip
    patient = build_backoffice_client(
        make_settings(CONEXXUS_API_URL=fake.base_url, CONEXXUS_API_KEY="bo_test_key_0123456789",
                      CONEXXUS_TIMEOUT_SECONDS="3")
    )  # fmt: skip
    try:
        cut_short = await impatient.deliver(message(1))
        answered = await patient.deliver(message(2))
    finally:
        await impatient.close()
        await patient.close()

    assert cut_short.outcome is Outcome.UNAVAILABLE
    assert "no answer in time" in (cut_short.error or "")
    assert answered.outcome is Outcome.DELIVERED
    assert fake.delivery_count("sale.completed:2") == 1
