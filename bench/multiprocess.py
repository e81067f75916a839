"""Several app processes on one PostgreSQL database and one Redis: the guarantees that must hold across them.

    .venv/bin/python bench/multiprocess.py                      # two `posomni serve` processes, 30 s of load
    .venv/bin/python bench/multiprocess.py --processes 3 --registers 20 --seconds 60

Two (or more) separate `posomni serve` processes on their own ports, as behind a load balancer, and:

1. **no oversell**: a product with `--units` left, bought at once by many registers split over the processes →
   stock ≥ 0, sales = units sold, the others refused with `insufficient_stock`, the ledger holds;
2. **no double charge**: card sales completed with one Idempotency-Key sent to every process at once (a
   register retrying through another process after a timeout): one completed sale, one captured payment;
3. **idempotency across processes**: the same key on process A, then B → B answers A's stored response; the same
   key with another body on B → `idempotency_key_reused`;
4. **revocation across processes**: signed out on A → the token is refused on B at once; an admin's
   "revoke sessions" on B → refused on A;
5. a mixed load: registers whose calls go round-robin over the processes; then the stock ledger, every sale's
   payments and the audit chain are checked.

`tests/integration/multiprocess/` runs the same scenarios as a test. This script prints the figures and writes
them into bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from bench.sales import Cashier, SaleFailed
from bench.stack import (
    ADULT_DOB,
    BENCH_PASSWORD,
    PASSWORDS,
    STORE_ID,
    AppServer,
    Catalog,
    RedisServer,
    Station,
    Timings,
    app_env,
    bearer,
    machine,
    new_encryption_key,
    prepare_store,
    provision,
    run_main,
    scratch_database,
    settings_of,
    sign_in,
    stopping,
    write_results,
)
from sqlalchemy import func, select

from posomni import bootstrap
from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.catalog.models import Barcode, Product
from posomni.database import Database
from posomni.inventory import service as inventory
from posomni.inventory.models import StockLevel
from posomni.payments.models import Payment
from posomni.sales.models import Sale

SCARCE_SKU = "VOD-GREY-750"
CAPTURED = ("captured", "partially_refunded", "refunded")


@dataclass
class Outcome:
    name: str
    ok: bool
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def check(self, condition: bool, problem: str) -> None:
        if not condition:
            self.ok = False
            self.problems.append(problem)


class RoundRobin(httpx.AsyncClient):
    """A client whose every request goes to the next process, as a load balancer without stickiness would."""

    def __init__(self, urls: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._urls = itertools.cycle(urls)

    async def request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        return await super().request(method, f"{next(self._urls)}{url}", **kwargs)


async def scarce_product(env: dict[str, str], units: int | None = None) -> tuple[int, str]:
    """The product the registers fight over: (its id, the code a scanner sends); with `units`, leave that many
    on the shelf."""
    database = Database(env["DATABASE_URL"], pool_size=1)
    crypto = bootstrap.encryption(settings_of(env))
    try:
        async with database.unit_of_work() as session:
            product = await session.scalar(select(Product).where(Product.sku == SCARCE_SKU))
            assert product is not None
            level = await session.get(StockLevel, (STORE_ID, product.id))
            assert level is not None
            if units is not None and units != level.on_hand:
                await inventory.adjust(
                    session, crypto, Actor.system("bench"), STORE_ID, product_id=product.id,
                    quantity=units - level.on_hand, reason="adjust", note="bench: the last units",
                )  # fmt: skip
            gtin = await session.scalar(select(Barcode.gtin).where(Barcode.product_id == product.id))
            assert gtin is not None
            return product.id, gtin[2:] if gtin.startswith("00") else gtin
    finally:
        await database.dispose()


def without(catalog: Catalog, code: str) -> Catalog:
    return Catalog(
        [c for c in catalog.plain if c != code], [c for c in catalog.restricted if c != code], catalog.product_ids
    )


async def _buy_one(url: str, station: Station, code: str) -> str:
    """One register buys one unit of `code` (with the ID check) through the process at `url`."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        headers = bearer(station.token)
        sale = await http.post("/sales", json={}, headers=headers)
        if sale.status_code != 201:
            return f"open:{sale.status_code}"
        sale_id = sale.json()["id"]
        scanned = await http.post(f"/sales/{sale_id}/items", json={"code": code}, headers=headers)
        if scanned.status_code != 201:
            return f"scan:{scanned.json().get('error', {}).get('code', scanned.status_code)}"
        checked = await http.post(
            "/compliance/id-checks", headers=headers,
            json={"method": "manual", "dob": ADULT_DOB, "expires": "2031-01-31", "document_type": "passport",
                  "photo_compared": True, "sale_id": sale_id},
        )  # fmt: skip
        if checked.status_code != 201:
            return f"id:{checked.status_code}"
        total = scanned.json()["total_cents"]
        done = await http.post(
            f"/sales/{sale_id}/complete", json={"tenders": [{"kind": "cash", "tendered_cents": total}]},
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip
        if done.status_code == 200:
            return "sold"
        code_ = str(done.json().get("error", {}).get("code", done.status_code))
        # A refused sale is reopened; cancel it so the register is free for the next customer.
        await http.post(f"/sales/{sale_id}/cancel", headers=headers)
        return code_


async def no_oversell(urls: list[str], stations: list[Station], env: dict[str, str], units: int) -> Outcome:
    product_id, code = await scarce_product(env, units)
    outcome = Outcome("no oversell", True)
    started = time.monotonic()
    results = await asyncio.gather(*(_buy_one(urls[n % len(urls)], s, code) for n, s in enumerate(stations)))
    counts = Counter(results)
    database = Database(env["DATABASE_URL"], pool_size=1)
    try:
        async with database.sessionmaker() as session:
            level = await session.get(StockLevel, (STORE_ID, product_id))
            assert level is not None
            mismatches = await inventory.ledger_mismatches(session, STORE_ID)
    finally:
        await database.dispose()
    outcome.figures = {
        "buyers": len(stations), "units": units, "outcomes": dict(counts), "on_hand_after": level.on_hand,
        "reserved_after": level.reserved, "seconds": round(time.monotonic() - started, 2),
    }  # fmt: skip
    sold = counts.get("sold", 0)
    outcome.check(level.on_hand >= 0, f"negative stock: {level.on_hand}")
    outcome.check(sold == units - level.on_hand, f"{sold} sales but {units - level.on_hand} units left the shelf")
    outcome.check(sold == min(units, len(stations)), f"{sold} sales of {units} units to {len(stations)} buyers")
    outcome.check(level.reserved == 0, f"{level.reserved} units still reserved")
    outcome.check(set(counts) <= {"sold", "insufficient_stock"}, f"unexpected outcomes: {dict(counts)}")
    outcome.check(not mismatches, f"stock differs from the ledger: {mismatches}")
    return outcome


async def _complete_everywhere(urls: list[str], station: Station, sale_id: int, body: dict[str, Any], key: str) -> list[
    httpx.Response
]:  # fmt: skip
    """The same completion sent to every process at once; each retries while the key is busy elsewhere."""

    async def one(url: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            for _ in range(100):
                response = await http.post(
                    f"/sales/{sale_id}/complete", json=body, headers={**bearer(station.token), "Idempotency-Key": key}
                )
                if response.status_code != 409 or response.json()["error"]["code"] != "idempotency_key_in_use":
                    return response
                await asyncio.sleep(0.05)
            return response

    return list(await asyncio.gather(*(one(url) for url in urls)))


async def no_double_charge(
    urls: list[str], stations: list[Station], catalog: Catalog, env: dict[str, str], sales: int
) -> Outcome:
    outcome = Outcome("no double charge", True)
    rng = random.Random(5)
    sale_ids: list[int] = []
    answers: list[list[httpx.Response]] = []

    async def one(station: Station) -> None:
        async with httpx.AsyncClient(base_url=urls[0], timeout=60) as http:
            cashier = Cashier(http, station, catalog, Timings(), rng)
            sale = (await cashier.call("open", "POST", "/sales", expect=201, json={})).json()
            for code in catalog.pick(rng, 3, restricted_share=0):
                sale = (await cashier.call("scan", "POST", f"/sales/{sale['id']}/items", expect=201,
                                           json={"code": code})).json()  # fmt: skip
        body = {"tenders": [{"kind": "card", "amount_cents": sale["total_cents"], "payment_method": "pm_sim_visa"}]}
        sale_ids.append(sale["id"])
        answers.append(await _complete_everywhere(urls, station, sale["id"], body, f"charge-{uuid.uuid4().hex}"))

    for start in range(0, sales, len(stations)):
        await asyncio.gather(*(one(s) for s in stations[: min(len(stations), sales - start)]))
    statuses = Counter(r.status_code for group in answers for r in group)
    same = all(all(r.json() == group[0].json() for r in group) for group in answers)
    database = Database(env["DATABASE_URL"], pool_size=1)
    try:
        async with database.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Payment.sale_id, Payment.status, func.count(), func.sum(Payment.captured_cents))
                    .where(Payment.sale_id.in_(sale_ids))
                    .group_by(Payment.sale_id, Payment.status)
                )
            ).all()
            totals = dict((await session.execute(select(Sale.id, Sale.total_cents).where(Sale.id.in_(sale_ids)))).all())
            completed = await session.scalar(
                select(func.count()).select_from(Sale).where(Sale.id.in_(sale_ids), Sale.status == "completed")
            )
    finally:
        await database.dispose()
    captured = {sale_id: (n, cents) for sale_id, status, n, cents in rows if status == "captured"}
    others = [(sale_id, status, n) for sale_id, status, n, _ in rows if status != "captured"]
    outcome.figures = {
        "sales": len(sale_ids), "requests_per_sale": len(urls), "answers": dict(statuses),
        "completed": completed, "payments_not_captured": others,
    }  # fmt: skip
    outcome.check(statuses == {200: len(sale_ids) * len(urls)}, f"answers: {dict(statuses)}")
    outcome.check(same, "the processes answered one key differently")
    outcome.check(completed == len(sale_ids), f"{completed} of {len(sale_ids)} sales completed")
    for sale_id in sale_ids:
        n, cents = captured.get(sale_id, (0, 0))
        outcome.check(n == 1, f"sale {sale_id}: {n} captured payments")
        outcome.check(cents == totals[sale_id], f"sale {sale_id}: captured {cents}, total {totals[sale_id]}")
    outcome.check(not others, f"payments other than the captured one: {others}")
    return outcome


async def idempotency_across(urls: list[str], station: Station, catalog: Catalog) -> Outcome:
    outcome = Outcome("idempotency across processes", True)
    a, b = urls[0], urls[1 % len(urls)]
    async with httpx.AsyncClient(base_url=a, timeout=60) as http:
        cashier = Cashier(http, station, catalog, Timings(), random.Random(9))
        sale = (await cashier.call("open", "POST", "/sales", expect=201, json={})).json()
        for code in catalog.pick(random.Random(3), 2, restricted_share=0):
            sale = (await cashier.call("scan", "POST", f"/sales/{sale['id']}/items", expect=201,
                                       json={"code": code})).json()  # fmt: skip
    key = f"idem-{uuid.uuid4().hex}"
    body = {"tenders": [{"kind": "cash", "tendered_cents": sale["total_cents"] + 1000}]}
    headers = {**bearer(station.token), "Idempotency-Key": key}
    async with httpx.AsyncClient(timeout=60) as http:
        first = await http.post(f"{a}/sales/{sale['id']}/complete", json=body, headers=headers)
        again = await http.post(f"{b}/sales/{sale['id']}/complete", json=body, headers=headers)
        other = {"tenders": [{"kind": "cash", "tendered_cents": sale["total_cents"] + 2000}]}
        reused = await http.post(f"{b}/sales/{sale['id']}/complete", json=other, headers=headers)
    outcome.figures = {"first": first.status_code, "replay_on_other_process": again.status_code,
                       "other_body": f"{reused.status_code} {reused.json().get('error', {}).get('code')}"}  # fmt: skip
    outcome.check(first.status_code == 200, f"first answer {first.status_code}: {first.text[:200]}")
    outcome.check(again.status_code == first.status_code and again.json() == first.json(), "replay differs")
    outcome.check(
        reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused",
        f"another body with the key: {reused.status_code} {reused.text[:200]}",
    )
    return outcome


async def revocation_across(urls: list[str], register_id: int, username: str) -> Outcome:
    outcome = Outcome("revocation across processes", True)
    a, b = urls[0], urls[1 % len(urls)]
    async with httpx.AsyncClient(timeout=30) as http:
        http_a = httpx.AsyncClient(base_url=a, timeout=30)
        try:
            token = await sign_in(http_a, username, BENCH_PASSWORD, register_id)
            admin = await sign_in(http_a, "admin", PASSWORDS["admin"])
        finally:
            await http_a.aclose()
        before = await http.get(f"{b}/auth/me", headers=bearer(token))
        started = time.monotonic()
        out = await http.post(f"{a}/auth/logout", headers=bearer(token))
        after = await http.get(f"{b}/auth/me", headers=bearer(token))
        seconds = time.monotonic() - started
        # The other way round: an admin revokes every session of the user on B; a token from A stops on A.
        http_a = httpx.AsyncClient(base_url=a, timeout=30)
        try:
            second = await sign_in(http_a, username, BENCH_PASSWORD, register_id)
        finally:
            await http_a.aclose()
        user_id = (await http.get(f"{a}/auth/me", headers=bearer(second))).json()["id"]
        revoked = await http.post(f"{b}/users/{user_id}/revoke-sessions", headers=bearer(admin))
        refused = await http.get(f"{a}/auth/me", headers=bearer(second))
    outcome.figures = {"me_on_B_before": before.status_code, "logout_on_A": out.status_code,
                       "me_on_B_after": after.status_code, "logout_to_refusal_seconds": round(seconds, 3),
                       "revoke_on_B": revoked.status_code, "me_on_A_after_revoke": refused.status_code}  # fmt: skip
    outcome.check(before.status_code == 200, f"token refused on B before logout: {before.status_code}")
    outcome.check(out.status_code == 204, f"logout on A: {out.status_code}")
    outcome.check(after.status_code == 401, f"token after logout on B: {after.status_code}")
    outcome.check(revoked.status_code == 200, f"revoke-sessions on B: {revoked.status_code} {revoked.text[:200]}")
    outcome.check(refused.status_code == 401, f"token after revoke on A: {refused.status_code}")
    return outcome


async def mixed_load(
    urls: list[str], stations: list[Station], catalog: Catalog, env: dict[str, str], seconds: float, think: float
) -> tuple[Outcome, Timings]:
    """Registers whose calls alternate between the processes, cash and card, then the books are checked."""
    outcome = Outcome("mixed load over the processes", True)
    timings = Timings()
    deadline = time.monotonic() + seconds
    completed: list[dict[str, Any]] = []

    async def register(n: int, station: Station) -> None:
        async with RoundRobin(urls, timeout=60) as http:
            cashier = Cashier(http, station, catalog, timings, random.Random(100 + n))
            # Staggered, as customers arrive (all at once, they would queue on the store's receipt counter).
            await asyncio.sleep(cashier.rng.uniform(0, max(5 * think, 0.5)))
            while time.monotonic() < deadline:
                try:
                    await cashier.sale(think=think, card=cashier.rng.random() < 0.4)
                except SaleFailed:
                    await asyncio.sleep(0.1)
            completed.extend(cashier.completed)

    started = time.monotonic()
    await asyncio.gather(*(register(n, s) for n, s in enumerate(stations)))
    wall = time.monotonic() - started
    problems = await books_problems(env, [int(s["id"]) for s in completed])
    outcome.figures = {"registers": len(stations), "processes": len(urls), "seconds": round(wall, 1),
                       "sales": len(completed), "sales_per_second": round(len(completed) / wall, 2),
                       "errors": timings.errors}  # fmt: skip
    outcome.check(timings.error_count == 0, f"errors: {timings.errors}")
    outcome.check(bool(completed), "no sale completed")
    for problem in problems:
        outcome.check(False, problem)
    return outcome, timings


async def books_problems(env: dict[str, str], sale_ids: list[int]) -> list[str]:
    """Each sale paid exactly once (its captured payments add up to its total), the ledger and the audit chain
    hold."""
    problems = []
    database = Database(env["DATABASE_URL"], pool_size=1)
    try:
        async with database.sessionmaker() as session:
            paid = dict(
                (
                    await session.execute(
                        select(Payment.sale_id, func.sum(Payment.captured_cents))
                        .where(Payment.sale_id.in_(sale_ids), Payment.kind == "payment", Payment.status.in_(CAPTURED))
                        .group_by(Payment.sale_id)
                    )
                ).all()
            )
            totals = dict((await session.execute(select(Sale.id, Sale.total_cents).where(Sale.id.in_(sale_ids)))).all())
            problems += [
                f"sale {s}: paid {paid.get(s)} for a total of {totals[s]}" for s in sale_ids if paid.get(s) != totals[s]
            ]
            problems += [f"ledger: {m}" for m in await inventory.ledger_mismatches(session, STORE_ID)]
            reports = await audit.verify_all(session, bootstrap.encryption(settings_of(env)))
            problems += [f"audit chain {r.chain}: {r.problem}" for r in reports if not r.ok]
    finally:
        await database.dispose()
    return problems


async def run_all(
    urls: list[str], stations: list[Station], catalog: Catalog, env: dict[str, str], *, units: int,
    charge_sales: int, seconds: float, think: float,
) -> tuple[list[Outcome], Timings]:  # fmt: skip
    """Every scenario in turn on already running processes; `stations` must be at least 3."""
    _, scarce = await scarce_product(env)
    everyday = without(catalog, scarce)
    outcomes = [await no_oversell(urls, stations, env, units)]
    outcomes.append(await no_double_charge(urls, stations, everyday, env, charge_sales))
    outcomes.append(await idempotency_across(urls, stations[0], everyday))
    outcomes.append(await revocation_across(urls, stations[-1].register_id, stations[-1].username))
    # The revoked cashier's register takes no part in the load.
    load, timings = await mixed_load(urls, stations[:-1], everyday, env, seconds, think)
    outcomes.append(load)
    return outcomes, timings


def print_outcomes(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        print(f"{'PASS' if outcome.ok else 'FAIL'}  {outcome.name}: {outcome.figures}")
        for problem in outcome.problems:
            print(f"      {problem}")


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="posomni-multiprocess-") as directory:
        tmp = Path(directory)
        redis = RedisServer(tmp)
        async with scratch_database("multi") as url:
            env = app_env(url, tmp, redis_port=redis.port, encryption_key=new_encryption_key())
            catalog = await prepare_store(env)
            servers = [AppServer(env, tmp, name=f"app{n}") for n in range(args.processes)]
            with stopping(*servers, redis):
                redis.start()
                for server in servers:
                    server.start()
                for server in servers:
                    await server.wait_ready()
                urls = [s.url for s in servers]
                print(f"{len(servers)} processes: {', '.join(urls)}; one database, one Redis")
                stations = await provision(urls[0], args.registers)
                outcomes, timings = await run_all(
                    urls, stations, catalog, env, units=args.units, charge_sales=args.charge_sales,
                    seconds=args.seconds, think=args.think,
                )  # fmt: skip
    print()
    print_outcomes(outcomes)
    print("\nlatency of the mixed load (round-robin over the processes):")
    timings.print_table()
    summary = {"benchmark": "multiprocess", "processes": args.processes, "machine": machine(),
               "outcomes": [o.__dict__ for o in outcomes]}  # fmt: skip
    json_path, _ = write_results("multiprocess", summary, timings.rows())
    print(f"written: {json_path}")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--registers", type=int, default=20, help="registers (buyers of the scarce product)")
    parser.add_argument("--units", type=int, default=7, help="units of the scarce product left")
    parser.add_argument("--charge-sales", type=int, default=20, help="card sales completed through every process")
    parser.add_argument("--seconds", type=float, default=30, help="seconds of mixed load")
    parser.add_argument("--think", type=float, default=0.5, help="mean pause between a register's calls (s)")
    arguments = parser.parse_args()
    run_main(lambda: main(arguments))
