"""The screens' server side without a browser: page access, and the JSON helpers the pages use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from posomni.audit.models import AuditEntry
from posomni.database import Database
from posomni.outbox import service as outbox
from posomni.outbox.models import OutboxMessage
from posomni.stores.models import Register, Store
from tests.browser.support import CHIPS, COKE, VODKA
from tests.conftest import make_settings
from tests.support import running_app, seed_demo, sign_in

HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
async def app_http(db_url: str, tmp_path: Path, database: Database) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    await seed_demo(database)
    async with database.unit_of_work() as session:
        await session.execute(update(Register).where(Register.code == "R2").values(card_reader_id="tmr_test_r2"))
    simulated = make_settings(DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path), CARD_PROCESSOR="simulated")
    async with running_app(simulated, database) as pair:
        yield pair


async def test_a_browser_without_a_session_is_sent_to_sign_in_and_an_api_client_gets_401(
    app_http: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = app_http
    page = await http.get("/register", headers=HTML)
    assert page.status_code == 303
    assert page.headers["location"] == "/?next=%2Fregister"
    api = await http.get("/register")
    assert api.status_code == 401
    assert api.json()["error"]["code"] == "not_authenticated"


async def test_a_role_without_the_permission_gets_a_page_saying_so(app_http: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, http = app_http
    cashier = await sign_in(http, "cashier", register_id=1)
    page = await http.get("/office/users", headers={**cashier, **HTML})
    assert page.status_code == 403
    assert "You cannot open this page" in page.text
    assert (await http.get("/office/users", headers=cashier)).json()["error"]["code"] == "permission_denied"


async def test_the_sign_in_page_is_public_and_never_redirects_elsewhere(
    app_http: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = app_http
    page = await http.get("/", params={"next": "//evil.example/x"}, headers=HTML)
    assert page.status_code == 200
    assert 'data-next=""' in page.text
    assert "Register 1" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text
    assert " style=" not in page.text
    assert (await http.get("/", params={"next": "/office/stock"})).text.count('data-next="/office/stock"') == 1


async def _sale(http: httpx.AsyncClient, headers: dict[str, str], *codes: str) -> dict[str, object]:
    sale = (await http.post("/sales", json={}, headers=headers)).json()
    for code in codes:
        response = await http.post(f"/sales/{sale['id']}/items", json={"code": code}, headers=headers)
        assert response.status_code == 201, response.text
        sale = response.json()
    return dict(sale)


async def test_reports_of_the_back_office_count_what_was_sold(app_http: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, http = app_http
    cashier = await sign_in(http, "cashier", register_id=1)
    manager = await sign_in(http, "manager")
    shift = (await http.post("/shifts", json={"register_id": 1, "opening_float_cents": 10000}, headers=cashier)).json()
    sale = await _sale(http, cashier, COKE, CHIPS)
    done = await http.post(
        f"/sales/{sale['id']}/complete", json={"tenders": [{"kind": "cash", "tendered_cents": 5000}]}, headers=cashier
    )
    assert done.status_code == 200, done.text
    day = done.json()["business_date"]
    for by, keys in (("day", {day}), ("category", {"Mixers and soft drinks", "Snacks"})):
        report = await http.get("/web/api/reports/sales", params={"from": day, "to": day, "by": by}, headers=manager)
        assert report.status_code == 200, report.text
        assert {b["key"] for b in report.json()["buckets"]} == keys
    hourly = await http.get("/web/api/reports/sales", params={"from": day, "to": day, "by": "hour"}, headers=manager)
    by_hour = hourly.json()
    assert by_hour["total_sales"] == 1
    assert by_hour["total_net_cents"] == done.json()["total_cents"]
    shifts = await http.get("/web/api/shifts", params={"from": day, "to": day}, headers=manager)
    assert [s["id"] for s in shifts.json()] == [shift["id"]]
    backwards = await http.get("/web/api/reports/sales", params={"from": day, "to": date(2000, 1, 1)}, headers=manager)
    assert backwards.status_code == 422
    refused = await http.get("/web/api/reports/sales", params={"from": day, "to": day}, headers=cashier)
    assert refused.status_code == 403


async def test_the_id_status_follows_the_checks_of_the_sale(app_http: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, http = app_http
    cashier = await sign_in(http, "cashier", register_id=1)
    await http.post("/shifts", json={"register_id": 1, "opening_float_cents": 0}, headers=cashier)
    sale = await _sale(http, cashier, VODKA)
    before = (await http.get(f"/web/api/sales/{sale['id']}/id-status", headers=cashier)).json()
    assert before["required_min_age"] == 21
    assert before["covered"] is False
    check = {
        "method": "manual", "dob": "1980-05-05", "expires": "2099-01-01", "document_type": "passport",
        "photo_compared": True, "sale_id": sale["id"],
    }  # fmt: skip
    assert (await http.post("/compliance/id-checks", json=check, headers=cashier)).status_code == 201
    after = (await http.get(f"/web/api/sales/{sale['id']}/id-status", headers=cashier)).json()
    assert after["covered"] is True
    assert after["underage_refused"] is False


async def test_a_card_on_the_reader_is_followed_tapped_and_tendered(
    app_http: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = app_http
    cashier = await sign_in(http, "cashier", register_id=2)
    await http.post("/shifts", json={"register_id": 2, "opening_float_cents": 0}, headers=cashier)
    status = (await http.get("/web/api/registers/2/status", headers=cashier)).json()
    assert status["card_mode"] == "reader"
    assert status["test_reader"] is True
    sale = await _sale(http, cashier, CHIPS)
    total = sale["total_cents"]
    start = f"/sales/{sale['id']}/card-payments"
    # A first try is cancelled at the register: the reader stops and the payment is voided.
    first = (await http.post(start, json={"amount_cents": total}, headers=cashier)).json()
    assert first["status"] == "pending"
    cancelled = await http.post(f"{start}/{first['id']}/cancel", headers=cashier)
    assert cancelled.json()["status"] == "voided"
    second = (await http.post(start, json={"amount_cents": total}, headers=cashier)).json()
    assert (await http.get(f"{start}/{second['id']}", headers=cashier)).json()["status"] == "pending"
    tap = await http.post("/payments/dev/readers/tmr_test_r2/present", json={"card": "visa"}, headers=cashier)
    assert tap.status_code == 200, tap.text
    authorized = (await http.get(f"{start}/{second['id']}", headers=cashier)).json()
    assert authorized["status"] == "authorized"
    assert authorized["card_last4"] == "4242"
    done = await http.post(
        f"/sales/{sale['id']}/complete", json={"tenders": [{"kind": "card", "payment_id": second["id"]}]},
        headers=cashier,
    )  # fmt: skip
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    again = await http.post(start, json={"amount_cents": 100}, headers=cashier)
    assert again.status_code == 409  # the sale is completed: nothing more to pay


async def test_the_catalog_import_reports_row_errors_and_needs_catalog_rights(
    app_http: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = app_http
    manager = await sign_in(http, "manager")
    cashier = await sign_in(http, "cashier", register_id=1)
    text = "sku,name,category,price\nGIN-1,Harbour Gin,spirits,24.99\nBAD-1,Bad,nope,x\n"
    files = {"file": ("catalog.csv", text.encode(), "text/csv")}
    report = await http.post("/web/api/catalog/import", files=files, data={"dry_run": "true"}, headers=manager)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["imported"] is False
    assert {e["line"] for e in body["errors"]} == {3}
    refused = await http.post("/web/api/catalog/import", files=files, headers=cashier)
    assert refused.status_code == 403


async def test_a_manager_sees_a_dead_message_and_retries_it_and_the_retry_is_audited(
    app_http: tuple[FastAPI, httpx.AsyncClient], database: Database
) -> None:
    _, http = app_http
    async with database.unit_of_work() as session:
        parked = await outbox.enqueue(
            session,
            store_id=1,
            topic="price.changed",
            aggregate_id="7",
            payload={"price_cents": 1},
            idempotency_key="k-7",
        )
        await session.flush()
        parked.status, parked.attempts, parked.last_error = "dead", 10, "rejected: HTTP 422: unknown item"
        parked_id = parked.id
    manager = await sign_in(http, "manager")
    cashier = await sign_in(http, "cashier", register_id=1)

    status = (await http.get("/web/api/outbox", headers=manager)).json()
    assert status["dead"] == 1
    assert [(m["id"], m["last_error"]) for m in status["dead_messages"]] == [
        (parked_id, "rejected: HTTP 422: unknown item")
    ]
    assert (await http.post(f"/web/api/outbox/{parked_id}/retry", headers=cashier)).status_code == 403
    retried = await http.post(f"/web/api/outbox/{parked_id}/retry", headers=manager)
    assert retried.status_code == 204, retried.text
    again = await http.post(f"/web/api/outbox/{parked_id}/retry", headers=manager)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "outbox_message_not_dead"

    async with database.sessionmaker() as session:
        message = await session.get(OutboxMessage, parked_id)
        assert message is not None
        assert (message.status, message.attempts) == ("pending", 0)
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "outbox.retried"))).all()
    assert [(e.target_type, e.target_id, e.store_id, e.actor_role) for e in entries] == [
        ("outbox_message", str(parked_id), 1, "manager")
    ]
    details = (
        await http.get("/audit/entries", params={"action": "outbox.retried"}, headers=await sign_in(http, "admin"))
    ).json()
    assert details[0]["details"]["last_error"] == "rejected: HTTP 422: unknown item"
    assert details[0]["details"]["attempts"] == 10


async def test_a_store_manager_sees_and_retries_only_their_own_stores_outbox_messages(
    app_http: tuple[FastAPI, httpx.AsyncClient], database: Database
) -> None:
    _, http = app_http
    async with database.unit_of_work() as session:
        other = Store(code="S2", name="Other Liquors", timezone="America/New_York", state="FL",
                      state_tax_rate=Decimal("0.06"))  # fmt: skip
        session.add(other)
        await session.flush()
        parked: dict[str, int] = {}
        for label, store_id in (("own", 1), ("other", other.id), ("chain", None)):
            message = await outbox.enqueue(
                session, store_id=store_id, topic="price.changed", aggregate_id=label, payload={"price_cents": 1},
                idempotency_key=f"k-{label}",
            )  # fmt: skip
            await session.flush()
            message.status, message.attempts, message.last_error = "dead", 10, f"rejected: HTTP 422: {label}"
            parked[label] = message.id
        # One waiting and one delivered message of the other store: counted for the admin, never for the manager.
        for label, state in (("other-waiting", "pending"), ("other-sent", "delivered")):
            extra = await outbox.enqueue(
                session, store_id=other.id, topic="price.changed", aggregate_id=label, payload={}, idempotency_key=label
            )
            extra.status = state
    manager = await sign_in(http, "manager")  # bound to the demo store (id 1)
    admin = await sign_in(http, "admin")  # chain-wide

    everything = (await http.get("/web/api/outbox", headers=admin)).json()
    assert (everything["dead"], everything["pending"], everything["delivered"]) == (3, 1, 1)
    assert [m["id"] for m in everything["dead_messages"]] == [parked["own"], parked["other"], parked["chain"]]
    mine = (await http.get("/web/api/outbox", headers=manager)).json()
    assert (mine["dead"], mine["pending"], mine["delivered"]) == (1, 0, 0)
    assert [m["id"] for m in mine["dead_messages"]] == [parked["own"]]
    # The gauges keep describing the whole outbox: a store's view does not overwrite them.
    assert REGISTRY.get_sample_value("posomni_outbox_dead_messages") == 3
    assert REGISTRY.get_sample_value("posomni_outbox_pending_messages") == 1

    # Another store's message and a chain-wide one do not exist for the manager: 404, unchanged, not audited.
    for label in ("other", "chain"):
        refused = await http.post(f"/web/api/outbox/{parked[label]}/retry", headers=manager)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "outbox_message_not_found"
    unknown = await http.post("/web/api/outbox/999999/retry", headers=manager)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "outbox_message_not_found")
    async with database.sessionmaker() as session:
        for label in ("other", "chain"):
            message = await session.get(OutboxMessage, parked[label])
            assert message is not None
            assert (message.status, message.attempts) == ("dead", 10)
        assert not (await session.scalars(select(AuditEntry).where(AuditEntry.action == "outbox.retried"))).all()

    assert (await http.post(f"/web/api/outbox/{parked['own']}/retry", headers=manager)).status_code == 204
    assert (await http.post(f"/web/api/outbox/{parked['other']}/retry", headers=admin)).status_code == 204
    assert (await http.post(f"/web/api/outbox/{parked['chain']}/retry", headers=admin)).status_code == 204
    async with database.sessionmaker() as session:
        statuses = {label: (await session.get(OutboxMessage, id_)) for label, id_ in parked.items()}
        assert {label: m.status for label, m in statuses.items() if m is not None} == dict.fromkeys(parked, "pending")
        entries = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "outbox.retried").order_by(AuditEntry.id)
            )
        ).all()
    assert [(e.target_id, e.store_id, e.actor_role) for e in entries] == [
        (str(parked["own"]), 1, "manager"),
        (str(parked["other"]), other.id, "admin"),
        (str(parked["chain"]), None, "admin"),
    ]
