"""Compliance reports: totals that match the events, refusals and overrides with reasons, the unverified
sales that must be zero, CSV that parses back, and the command line."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update
from typer.testing import CliRunner

from posomni.cli import app as cli
from posomni.config import Settings
from posomni.database import Database
from posomni.sales.models import Sale, SaleLine
from tests.integration.compliance.support import Clock, events, make_sale, manual
from tests.support import PINS, sign_in

DAY1, DAY2 = date(2026, 6, 15), date(2026, 6, 16)
RANGE = {"from": DAY1.isoformat(), "to": DAY2.isoformat()}
ADULT = {"dob": date(1980, 1, 1), "expires": date(2030, 1, 1)}


async def scenario(http: httpx.AsyncClient, clock: Clock, database: Database) -> dict[str, int]:
    """Checks by two clerks over two days, an override, and completed sales with and without a covering check."""
    cashier = await sign_in(http, "cashier")
    manager = await sign_in(http, "manager")
    sales = {name: await make_sale(database, lines=lines) for name, lines in SALES.items()}
    clock.set_local(DAY1)
    assert (await manual(http, cashier, **ADULT, sale_id=sales["checked"])).status_code == 201
    expired = await manual(http, cashier, dob=date(1970, 1, 1), expires=date(2026, 1, 1), sale_id=sales["overridden"])
    refused = expired.json()["error"]["details"]["event_id"]
    body = {"manager_username": "manager", "manager_pin": PINS["manager"], "reason": "=HYPERLINK(over 40)"}
    assert (await http.post(f"/compliance/id-checks/{refused}/override", headers=cashier, json=body)).status_code == 201
    assert (await manual(http, cashier, dob=date(2010, 1, 1), expires=date(2030, 1, 1))).status_code == 422
    assert (await manual(http, cashier, **ADULT, sale_id=sales["beer_at_18"], min_age=18)).status_code == 201
    clock.set_local(DAY2)
    assert (await manual(http, manager, **ADULT, sale_id=sales["checked_too_low"], min_age=18)).status_code == 201
    # A line added after the check raised the sale to 21: the check at 18 no longer covers it.
    async with database.unit_of_work() as session:
        await session.execute(update(Sale).values(status="completed"))
        await session.execute(update(Sale).where(Sale.id == sales["still_open"]).values(status="open"))
    async with database.unit_of_work() as session:
        await session.execute(update(SaleLine).where(SaleLine.sale_id == sales["checked_too_low"]).values(min_age=21))
    return sales


SALES: dict[str, list[tuple[bool, int | None]]] = {
    "checked": [(True, 21)],
    "overridden": [(True, 21), (False, None)],
    "unchecked": [(True, None)],
    "beer_at_18": [(True, 18)],
    "checked_too_low": [(True, 18)],
    "still_open": [(True, 21)],
    "no_alcohol": [(False, None)],
}
UNVERIFIED = {"unchecked", "checked_too_low"}


async def test_summary_totals_match_the_events(http: httpx.AsyncClient, clock: Clock, database: Database) -> None:
    sales = await scenario(http, clock, database)
    auditor = await sign_in(http, "auditor")
    response = await http.get("/compliance/reports/summary", headers=auditor, params=RANGE)
    assert response.status_code == 200, response.text
    report = response.json()
    async with database.sessionmaker() as session:
        logged = await events(session)
    results = Counter(e.result for e in logged)
    assert report["totals"] == {
        "checks": len(logged),
        "passed": results["passed"],
        "refused": results["refused"],
        "overridden": results["overridden"],
    }
    assert report["totals"] == {"checks": 6, "passed": 3, "refused": 2, "overridden": 1}
    assert [d["business_date"] for d in report["by_day"]] == [DAY1.isoformat(), DAY2.isoformat()]
    assert sum(d["checks"] for d in report["by_day"]) == len(logged)
    assert {c["clerk"]: c["checks"] for c in report["by_clerk"]} == {"cashier": 5, "manager": 1}
    assert report["by_method"] == {"manual": 5, "override": 1}
    assert sorted(r["reason"] for r in report["refusals"]) == ["expired", "underage"]
    [expired] = [r for r in report["refusals"] if r["reason"] == "expired"]
    [override] = report["overrides"]
    assert expired["overridden_by_event_id"] == override["event_id"]
    assert override["manager"] == "manager"
    assert override["override_reason"] == "=HYPERLINK(over 40)"
    assert report["unverified_sales"] == len(UNVERIFIED)
    assert {c["clerk"] for c in report["clerks_without_birth_date"]} == {"cashier"}
    unverified = await http.get("/compliance/reports/unverified-sales", headers=auditor, params=RANGE)
    assert {s["sale_id"] for s in unverified.json()["sales"]} == {sales[name] for name in UNVERIFIED}
    [too_low] = [s for s in unverified.json()["sales"] if s["sale_id"] == sales["checked_too_low"]]
    assert (too_low["required_min_age"], too_low["best_checked_min_age"]) == (21, 18)
    outside = await http.get(
        "/compliance/reports/summary", headers=auditor, params={"from": "2026-06-17", "to": "2026-06-30"}
    )
    assert outside.json()["totals"]["checks"] == 0
    assert outside.json()["unverified_sales"] == 0


async def test_reports_as_csv_parse_back(http: httpx.AsyncClient, clock: Clock, database: Database) -> None:
    sales = await scenario(http, clock, database)
    manager = await sign_in(http, "manager")
    as_json = (await http.get("/compliance/reports/summary", headers=manager, params=RANGE)).json()
    response = await http.get("/compliance/reports/summary", headers=manager, params={**RANGE, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    [total] = [r for r in rows if r["section"] == "total"]
    assert {k: int(total[k]) for k in ("checks", "passed", "refused", "overridden")} == as_json["totals"]
    assert len([r for r in rows if r["section"] == "day"]) == 2
    assert len([r for r in rows if r["section"] == "refusal"]) == 2
    [override] = [r for r in rows if r["section"] == "override"]
    # A reason typed at the register is never run as a spreadsheet formula.
    assert override["override_reason"] == "'=HYPERLINK(over 40)"
    assert {int(r["sale_id"]) for r in rows if r["section"] == "unverified_sale"} == {sales[n] for n in UNVERIFIED}
    unverified = await http.get(
        "/compliance/reports/unverified-sales", headers=manager, params={**RANGE, "format": "csv"}
    )
    parsed = list(csv.DictReader(io.StringIO(unverified.text)))
    assert {int(r["sale_id"]) for r in parsed} == {sales[n] for n in UNVERIFIED}
    listed = await http.get("/compliance/events", headers=manager, params={"format": "csv", "result": "refused"})
    assert [r["reason"] for r in csv.DictReader(io.StringIO(listed.text))] == ["underage", "expired"]


async def test_event_listing_filters_and_scoping(http: httpx.AsyncClient, clock: Clock, database: Database) -> None:
    sales = await scenario(http, clock, database)
    manager = await sign_in(http, "manager")
    by_sale = await http.get("/compliance/events", headers=manager, params={"sale_id": sales["overridden"]})
    assert [e["result"] for e in by_sale.json()] == ["overridden", "refused"]
    assert "dob" not in by_sale.text
    page = await http.get("/compliance/events", headers=manager, params={"limit": 2})
    older = await http.get("/compliance/events", headers=manager, params={"before_id": page.json()[-1]["id"]})
    assert len(page.json()) + len(older.json()) == 6
    assert (await http.get("/compliance/events", headers=manager, params={"store_id": 999})).status_code == 403
    cashier = await sign_in(http, "cashier")
    assert (await http.get("/compliance/events", headers=cashier)).status_code == 403
    bad = await http.get(
        "/compliance/reports/summary", headers=manager, params={"from": "2026-06-16", "to": "2026-06-15"}
    )
    assert bad.status_code == 422
    assert (
        await http.get("/compliance/reports/summary", headers=manager, params={"from": "x", "to": "y"})
    ).status_code == 422


async def test_compliance_report_command(
    http: httpx.AsyncClient, clock: Clock, database: Database, settings: Settings, db_url: str, tmp_path: Path
) -> None:
    sales = await scenario(http, clock, database)
    env = {
        "POS_ENV": "test", "DATABASE_URL": db_url, "ALLOWED_ORIGINS": "http://127.0.0.1:8000",
        "AUDIT_LOG_ENCRYPTION_KEY": settings.audit_log_encryption_key.get_secret_value(),
    }  # fmt: skip
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        arguments = ["compliance", "report", "--from", "2026-06-15", "--to", "2026-06-16", *args]
        return asyncio.to_thread(runner.invoke, cli, [*arguments, "--env-file", str(tmp_path / "none")], env=env)

    as_json = await invoke("--format", "json")
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert document["summary"]["totals"]["checks"] == 6
    assert {s["sale_id"] for s in document["unverified_sales"]["sales"]} == {sales[n] for n in UNVERIFIED}
    as_csv = await invoke("--format", "csv", "--store", "FL-001")
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert int(next(r for r in rows if r["section"] == "total")["checks"]) == 6
    table = await invoke()
    assert table.exit_code == 0, table.output
    assert "without a passing ID check" in table.output
    assert (await invoke("--fail-on-unverified")).exit_code == 2
    assert (await invoke("--store", "NOPE")).exit_code == 1
