"""One request id, from the client's X-Request-ID to every log line, the audit entry and the back-office message."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from structlog.testing import capture_logs

from posomni.audit.models import AuditEntry
from posomni.logging import get_logger
from posomni.outbox.models import OutboxMessage
from tests.integration.sales.conftest import COKE, Register

log = get_logger("tests.monitoring.probe")


def _blocking_work() -> None:
    log.info("probe_thread")


async def log_probe(request: Request) -> dict[str, Any]:
    log.info("probe_route")
    await run_in_threadpool(_blocking_work)  # a sync helper in a worker thread still sees the request's context
    return {}


def _bound() -> list[structlog.types.Processor]:
    return [structlog.contextvars.merge_contextvars]


async def test_the_request_id_is_in_every_log_line_the_audit_entry_and_the_outbox(register: Register) -> None:
    request_id = "till-7:sale-complete-0001"

    with capture_logs(processors=_bound()) as lines:
        other = await register.new_sale()
        await register.scan(other["id"], COKE)
        headers = {**register.cashier, "X-Request-ID": request_id}
        response = await register.http.post(
            f"/sales/{other['id']}/complete",
            json={"tenders": [{"kind": "cash", "tendered_cents": 500}]},
            headers=headers,
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == request_id
    mine = [line for line in lines if line.get("request_id") == request_id]
    # SLOW_REQUEST_MS=1 here, so the request wrote at least its slow-request line, from the bound context.
    assert any(line["event"] == "slow_request" and line["route"] == "/sales/{sale_id}/complete" for line in mine)
    assert all(line.get("request_id") for line in lines), [line for line in lines if not line.get("request_id")]
    async with register.database.sessionmaker() as session:
        audit_ids = set(
            await session.scalars(
                select(AuditEntry.request_id).where(
                    AuditEntry.action == "sale.completed", AuditEntry.target_id == str(other["id"])
                )
            )
        )
        outbox_ids = set(
            await session.scalars(
                select(OutboxMessage.request_id).where(OutboxMessage.aggregate_id == str(other["id"]))
            )
        )
    assert audit_ids == {request_id}
    assert outbox_ids == {request_id}  # sent to the back office as X-Request-ID by the Conexxus client
    # Nothing stays bound once the request is over (the test's own task ran the app).
    assert "request_id" not in structlog.contextvars.get_contextvars()


async def test_lines_from_the_route_and_its_worker_threads_carry_the_id(register: Register) -> None:
    register.app.add_api_route("/probe/log", log_probe, methods=["GET"])

    with capture_logs(processors=_bound()) as lines:
        response = await register.http.get("/probe/log", headers={"X-Request-ID": "probe-log-0001"})
        malformed = await register.http.get("/probe/log", headers={"X-Request-ID": "bad id"})

    assert response.status_code == 200
    by_event: dict[str, list[str | None]] = {}
    for line in lines:
        by_event.setdefault(line["event"], []).append(line.get("request_id"))
    generated = malformed.headers["x-request-id"]
    assert generated != "bad id"
    assert by_event["probe_route"] == ["probe-log-0001", generated]
    assert by_event["probe_thread"] == ["probe-log-0001", generated]
