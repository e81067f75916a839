"""`GET /monitoring/metrics`: the named series after real sales, and who may scrape them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select

from posomni.app import create_app
from posomni.config import Settings
from posomni.database import Database
from posomni.outbox.models import OutboxMessage
from tests.conftest import make_settings
from tests.integration.monitoring.conftest import METRICS_TOKEN, SCRAPE, scrape, value
from tests.integration.sales.conftest import CHIPS, COKE, Register

OUTSIDER = ("203.0.113.7", 40000)  # TEST-NET-3: never a loopback or private address


async def test_a_scrape_after_sales_has_every_named_series(register: Register) -> None:
    http = register.http
    before = await scrape(http)

    cash = await register.new_sale()
    await register.scan(cash["id"], COKE)
    assert (await register.complete(cash["id"], [{"kind": "cash", "tendered_cents": 1000}])).status_code == 200
    card = await register.new_sale()
    await register.scan(card["id"], CHIPS)
    paid = await register.complete(card["id"], [{"kind": "card", "amount_cents": 513, "payment_method": "pm_sim_visa"}])
    assert paid.status_code == 200, paid.text
    declined = await register.new_sale()
    await register.scan(declined["id"], CHIPS)
    refused = await register.complete(
        declined["id"], [{"kind": "card", "amount_cents": 513, "payment_method": "pm_sim_insufficient_funds"}]
    )
    assert refused.status_code == 402
    id_check = {"method": "manual", "document_type": "passport", "photo_compared": True, "expires": "2040-01-01"}
    adult = await http.post("/compliance/id-checks", headers=register.cashier, json={**id_check, "dob": "1980-02-03"})
    assert adult.status_code == 201, adult.text
    today = datetime.now(UTC).date()
    minor_dob = today.replace(year=today.year - 17, day=1).isoformat()
    minor = await http.post("/compliance/id-checks", headers=register.cashier, json={**id_check, "dob": minor_dob})
    assert minor.status_code == 422

    after = await scrape(http)

    def grew(family: str, sample: str | None = None, **labels: str) -> float:
        return value(after, family, sample, **labels) - value(before, family, sample, **labels)

    # HTTP, by route template: the sale ids never appear as labels.
    complete = {"handler": "/sales/{sale_id}/complete", "method": "POST"}
    assert grew("posomni_http_requests", "posomni_http_requests_total", status="200", **complete) == 2
    assert grew("posomni_http_requests", "posomni_http_requests_total", status="402", **complete) == 1
    assert grew("posomni_http_request_duration_seconds", "posomni_http_request_duration_seconds_count", **complete) == 3
    handlers = {s.labels.get("handler", "") for s in after["posomni_http_requests"].samples}
    assert not [h for h in handlers if any(str(sale["id"]) in h.split("/") for sale in (cash, card, declined))]
    # Database statements, sales, payments, age checks.
    assert grew("posomni_db_query_duration_seconds", "posomni_db_query_duration_seconds_count", operation="select") > 0
    assert grew("posomni_db_query_duration_seconds", "posomni_db_query_duration_seconds_count", operation="insert") > 0
    assert grew("posomni_sales_completed", "posomni_sales_completed_total") == 2
    assert grew("posomni_sales_failed", "posomni_sales_failed_total", reason="card_declined") == 1
    payments = "posomni_payments_total"
    assert grew("posomni_payments", payments, operation="authorize", result="authorized") == 1
    assert grew("posomni_payments", payments, operation="capture", result="captured") == 1
    assert grew("posomni_payments", payments, operation="authorize", result="declined") == 1
    checks = "posomni_age_checks_total"
    assert grew("posomni_age_checks", checks, method="manual", result="passed", reason="none") == 1
    assert grew("posomni_age_checks", checks, method="manual", result="refused", reason="underage") == 1
    # The outbox depth is read from the database at scrape time: the two completed sales wait for delivery.
    async with register.database.sessionmaker() as session:
        pending = await session.scalar(select(func.count()).where(OutboxMessage.status == "pending"))
    assert pending is not None
    assert pending >= 2
    assert value(after, "posomni_outbox_pending_messages") == pending
    # Families that exist before their first event (outbox, back office) and the cache's collector.
    for family in (
        "posomni_outbox_delivery_failures",
        "posomni_outbox_dead_messages",
        "posomni_backoffice_circuit_state",
        "posomni_redis_fallback_active",
        "posomni_redis_breaker_state",
        "posomni_redis_hits",
        "posomni_http_slow_requests",
        "posomni_db_slow_queries",
    ):
        assert family in after, family


async def test_the_scrape_needs_the_token_outside_the_allowed_networks(register: Register) -> None:
    transport = httpx.ASGITransport(app=register.app, client=OUTSIDER)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as outsider:
        missing = await outsider.get("/monitoring/metrics")
        wrong = await outsider.get("/monitoring/metrics", headers={"Authorization": "Bearer not-the-token"})
        staff = await outsider.get("/monitoring/metrics", headers=register.manager)  # a session is not enough
        right = await outsider.get("/monitoring/metrics", headers=SCRAPE)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "metrics_token_required"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "metrics_token_invalid"
    assert staff.status_code == 401
    assert right.status_code == 200
    assert "posomni_http_requests_total" in right.text
    assert METRICS_TOKEN not in right.text
    # Loopback is an allowed network outside production: a local Prometheus needs no token.
    local = await register.http.get("/monitoring/metrics")
    assert local.status_code == 200
    # Even from an allowed network a wrong token is refused: it is a misconfigured or hostile scraper.
    assert (await register.http.get("/monitoring/metrics", headers={"Authorization": "Bearer nope"})).status_code == 401


async def test_with_only_allowed_networks_other_addresses_get_403(database: Database, tmp_path: Path) -> None:
    settings = make_settings(
        DATABASE_URL=database.url,
        POSOMNI_DATA_DIR=str(tmp_path),
        METRICS_ALLOWED_NETWORKS="10.20.0.0/16, 2001:db8::/32",
    )
    app = create_app(settings, database=database)
    async with app.router.lifespan_context(app):
        for client, expected in (
            (("10.20.3.4", 1), 200),
            (("2001:db8::7", 1), 200),
            (("::ffff:10.20.9.9", 1), 200),
            (OUTSIDER, 403),
            (("127.0.0.1", 1), 403),
        ):
            transport = httpx.ASGITransport(app=app, client=client)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                response = await http.get("/monitoring/metrics")
            assert response.status_code == expected, client
            if expected == 403:
                assert response.json()["error"]["code"] == "metrics_network_refused"


async def test_every_app_of_a_process_records_its_requests(settings: Settings, database: Database) -> None:
    # prometheus-fastapi-instrumentator's default metrics go silent on the second app of a process; ours do not.
    for _ in range(3):
        app = create_app(settings, database=database)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
        ):
            before = await scrape(http)
            assert (await http.get("/health")).status_code in (200, 503)
            after = await scrape(http)
        labels = {"handler": "/health", "method": "GET"}
        counted = value(after, "posomni_http_requests", "posomni_http_requests_total", **labels) - value(
            before, "posomni_http_requests", "posomni_http_requests_total", **labels
        )
        assert counted == 1
