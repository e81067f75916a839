"""`GET /monitoring/performance`: percentiles per route template, slow requests and slow statements."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request
from sqlalchemy import Connection, text

from tests.integration.monitoring.conftest import scrape, value
from tests.integration.sales.conftest import CHIPS, Register

SLEEP_SECONDS = 0.25  # above the default SLOW_QUERY_MS (200)
SECRET_NAME = "Jane Doe"
# A number literal no random request id, timestamp or duration in the report can contain by chance (a bare
# "4111" was found inside one of them now and then).
SECRET_NUMBER = "411100417"


def _add_sleep_function(connection: Connection) -> None:
    # SQLite has no sleep(); a Python function registered on this connection stands in for pg_sleep.
    connection.connection.dbapi_connection.create_function("test_sleep", 1, time.sleep)  # type: ignore[union-attr]


async def slow_query_probe(request: Request) -> dict[str, Any]:
    database = request.app.state.database
    sleep = "pg_sleep" if database.kind == "postgresql" else "test_sleep"
    async with database.engine.connect() as connection:
        if database.kind == "sqlite":
            await connection.run_sync(_add_sleep_function)
        # Literals on purpose: a name and a number must never reach the report.
        await connection.execute(
            text(f"SELECT {sleep}({SLEEP_SECONDS}) AS slept, '{SECRET_NAME}' AS who, {SECRET_NUMBER} AS l4")
        )
    return {"slept": sleep}


async def test_the_report_is_for_managers_and_uses_route_templates(register: Register) -> None:
    sale = await register.new_sale()
    for _ in range(3):
        await register.scan(sale["id"], CHIPS)
    assert (await register.http.get("/monitoring/performance")).status_code == 401
    cashier = await register.http.get("/monitoring/performance", headers=register.cashier)
    assert cashier.status_code == 403
    assert cashier.json()["error"]["code"] == "permission_denied"

    response = await register.http.get("/monitoring/performance", headers=register.manager)

    assert response.status_code == 200, response.text
    report = response.json()
    routes = {(r["method"], r["route"]): r for r in report["routes"]}
    scans = routes[("POST", "/sales/{sale_id}/items")]
    assert scans["count"] == 3
    assert 0 < scans["p50_ms"] <= scans["p95_ms"] <= scans["p99_ms"] <= scans["max_ms"]
    assert not [route for _, route in routes if str(sale["id"]) in route.split("/")]
    assert report["slowest_requests"]
    durations = [r["duration_ms"] for r in report["slowest_requests"]]
    assert durations == sorted(durations, reverse=True)
    # SLOW_REQUEST_MS=1 in these tests: every request is in the slow-request log, with its request id.
    assert report["slow_request_threshold_ms"] == 1
    assert {r["route"] for r in report["slow_requests"]} >= {"/sales/{sale_id}/items", "/sales"}
    assert all(r["request_id"] for r in report["slow_requests"])


async def test_a_slow_query_is_shown_normalised_with_its_request(register: Register) -> None:
    register.app.add_api_route("/probe/slow-query", slow_query_probe, methods=["GET"])
    before = await scrape(register.http)
    request_id = "probe-slow-query-0001"

    probe = await register.http.get("/probe/slow-query", headers={"X-Request-ID": request_id})

    assert probe.status_code == 200
    sleep = probe.json()["slept"]
    response = await register.http.get("/monitoring/performance", headers=register.manager)
    assert SECRET_NAME not in response.text
    assert SECRET_NUMBER not in response.text
    report = response.json()
    assert report["slow_query_threshold_ms"] == 200
    mine = [q for q in report["slow_queries"] if q["request_id"] == request_id]
    assert len(mine) == 1
    assert mine[0]["sql"] == f"SELECT {sleep}(?) AS slept, ? AS who, ? AS l4"
    assert mine[0]["route"] == "/probe/slow-query"
    assert mine[0]["duration_ms"] >= SLEEP_SECONDS * 1000
    group = next(g for g in report["slow_query_groups"] if g["sql"] == mine[0]["sql"])
    assert group["count"] == 1
    after = await scrape(register.http)
    assert value(after, "posomni_db_slow_queries", "posomni_db_slow_queries_total") > value(
        before, "posomni_db_slow_queries", "posomni_db_slow_queries_total"
    )
    slow_bucket = {"operation": "select", "le": "0.25"}
    total = "posomni_db_query_duration_seconds_count"
    at_most_quarter = "posomni_db_query_duration_seconds_bucket"
    grown = value(after, "posomni_db_query_duration_seconds", total, operation="select") - value(
        before, "posomni_db_query_duration_seconds", total, operation="select"
    )
    grown_fast = value(after, "posomni_db_query_duration_seconds", at_most_quarter, **slow_bucket) - value(
        before, "posomni_db_query_duration_seconds", at_most_quarter, **slow_bucket
    )
    assert grown - grown_fast >= 1  # the sleeping statement landed above the 0.25 s bucket
