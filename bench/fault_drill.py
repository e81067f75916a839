"""Fault drill: faults while registers are selling, then the books are checked. Run on demand (not in CI):

    .venv/bin/python bench/fault_drill.py                       # ~3 minutes, 8 registers
    .venv/bin/python bench/fault_drill.py --registers 12 --phase-seconds 15

While registers sell (cash and card, each retrying with the same Idempotency-Key as a register does after a
lost answer), in turn:

1. the app is killed (SIGKILL to its process group) and started again;
2. PostgreSQL is restarted;
3. Redis is stopped, and started again a while later;
4. the back office stops answering (connection refused), and comes back.

Then the load stops, sales left half-way are resolved (`posomni sagas recover --all`), the worker drains the
outbox, and the invariants are checked and printed:

- every captured card or cash payment belongs to a completed sale (or a voided one, or a completed return), and
  every charge the card processor captured is such a payment, for the same amount; no sale is left completing;
- stock equals the movement ledger (`inventory.ledger_mismatches`), and nothing stays reserved;
- the audit chain verifies (`audit.verify_all`);
- the outbox drains after the back office returns (`outbox.status`), every message delivered.

Everything is the drill's own, on loopback, removed afterwards: a PostgreSQL instance in a temporary directory
(initdb, on a free port — restarting the shared server would break every other client on this machine; pass
--system-postgres to restart the cluster `pg_ctlcluster` manages instead), a redis-server (never the shared one),
the fake back office and the fake Stripe of tests/fakes (both keep their state across app restarts, as the real
ones do), `posomni serve` and `posomni worker`. Exit code 1 when an invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx
from bench.stack import (
    ADULT_DOB,
    LOOPBACK,
    STORE_ID,
    AppServer,
    Catalog,
    RedisServer,
    Station,
    app_env,
    bearer,
    cash_for,
    child_environment,
    free_port,
    new_encryption_key,
    posomni_command,
    prepare_store,
    provision,
    run_main,
    settings_of,
    stopping,
)
from sqlalchemy import func, select
from tests.fakes.backoffice_server import API_KEY as BACKOFFICE_KEY
from tests.fakes.backoffice_server import FakeBackOffice
from tests.fakes.stripe_server import TEST_API_KEY as STRIPE_KEY
from tests.fakes.stripe_server import FakeStripe

from posomni import bootstrap, migrate
from posomni.audit import service as audit
from posomni.database import Database
from posomni.inventory import service as inventory
from posomni.inventory.models import StockLevel
from posomni.outbox import service as outbox
from posomni.payments.models import Payment
from posomni.sales.models import Sale
from posomni.seed.demo import seed

CAPTURED = ("captured", "partially_refunded", "refunded")
# Answers after which a register tries the same request again (the server or one of its services was down).
RETRYABLE = {0, 500, 502, 503, 504}


# --- PostgreSQL -------------------------------------------------------------------------------------------


def _pg_bin() -> Path:
    found = shutil.which("pg_config")
    if found:
        return Path(subprocess.run([found, "--bindir"], capture_output=True, text=True, check=True).stdout.strip())
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not versions:
        raise RuntimeError("PostgreSQL's programs (initdb, pg_ctl) are not installed")
    return versions[-1]


class LocalPostgres:
    """A PostgreSQL instance of the drill's own: initdb in a temporary directory, trust auth, loopback only.
    PostgreSQL refuses to run as root, so under root its programs run as the `postgres` user."""

    def __init__(self, directory: Path) -> None:
        self.bin = _pg_bin()
        self.root = directory
        self.data = directory / "data"
        self.port = free_port()
        self.log = directory / "postgres.log"
        self.as_owner: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run([*self.as_owner, *args], check=True, timeout=timeout, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)  # fmt: skip

    def start(self) -> None:
        # PostgreSQL's own user must reach its directory inside the drill's (private) temporary one.
        self.root.parent.chmod(0o755)
        self.root.chmod(0o755)
        self.data.mkdir()
        if self.as_owner:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.data, "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._pg_ctl("start")

    def _pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses={LOOPBACK} -c fsync=on"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-m", "fast", action)  # fmt: skip

    def restart(self) -> None:
        self._pg_ctl("restart")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)


class SystemPostgres:
    """The shared cluster (`--system-postgres`): restarting it interrupts every other client on the machine."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.version = _pg_bin().parent.name

    def start(self) -> None:
        return None

    def restart(self) -> None:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", self.version, "main", "restart"], check=True,
                       timeout=120)  # fmt: skip

    def stop(self) -> None:
        return None


async def create_database(admin_url: str, name: str) -> str:
    connection = await asyncpg.connect(admin_url, timeout=10)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = admin_url.replace("postgresql://", "postgresql+asyncpg://", 1).rsplit("/", 1)[0] + f"/{name}"
    database = Database(url, pool_size=2)
    try:
        await migrate.upgrade(database.engine)
        async with database.unit_of_work() as session:
            await seed(session, demo=True, bcrypt_cost=4)
    finally:
        await database.dispose()
    return url


async def drop_database(admin_url: str, name: str) -> None:
    with contextlib.suppress(OSError, asyncpg.PostgresError):
        connection = await asyncpg.connect(admin_url, timeout=10)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


# --- the registers ----------------------------------------------------------------------------------------


@dataclass
class Tally:
    sales: int = 0
    card_sales: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    abandoned: int = 0
    unresolved_keys: list[str] = field(default_factory=list)


class Register:
    """A register that keeps going through outages: a call that found the server (or its database, Redis …)
    down is tried again; completing a sale is retried with the same Idempotency-Key until it has an answer."""

    def __init__(self, url: str, station: Station, catalog: Catalog, tally: Tally, seed: int) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=20, headers=bearer(station.token))
        self.catalog = catalog
        self.tally = tally
        self.rng = random.Random(seed)

    async def send(self, method: str, path: str, *, give_up_after: float = 30, **kwargs: Any) -> httpx.Response | None:
        deadline = time.monotonic() + give_up_after
        while True:
            try:
                response = await self.http.request(method, path, **kwargs)
                status = response.status_code
            except httpx.HTTPError as exc:
                response, status = None, 0
                self.tally.retries[type(exc).__name__] += 1
            if status not in RETRYABLE and not (status == 409 and _code(response) == "idempotency_key_in_use"):
                return response
            if status:
                self.tally.retries[f"{status} {_code(response)}"] += 1
            if time.monotonic() > deadline:
                return response
            await asyncio.sleep(0.3)

    async def sale(self) -> None:
        opened = await self.send("POST", "/sales", json={})
        if opened is None or opened.status_code != 201:
            self.tally.abandoned += 1
            return
        sale = opened.json()
        for code in self.catalog.pick(self.rng, self.rng.randint(2, 4)):
            scanned = await self.send("POST", f"/sales/{sale['id']}/items", json={"code": code})
            if scanned is None or scanned.status_code != 201:
                self.tally.abandoned += 1
                return
            sale = scanned.json()
        if sale["needs_id_check"]:
            checked = await self.send(
                "POST", "/compliance/id-checks",
                json={"method": "manual", "dob": ADULT_DOB, "expires": "2031-01-31", "document_type": "passport",
                      "photo_compared": True, "sale_id": sale["id"]},
            )  # fmt: skip
            if checked is None or checked.status_code != 201:
                self.tally.abandoned += 1
                return
        card = self.rng.random() < 0.5
        tenders = (
            [{"kind": "card", "amount_cents": sale["total_cents"], "payment_method": "pm_card_visa"}]
            if card
            else [{"kind": "cash", "tendered_cents": cash_for(sale["total_cents"])}]
        )
        key = f"drill-{uuid.uuid4().hex}"
        done = await self.send(
            "POST", f"/sales/{sale['id']}/complete", json={"tenders": tenders}, headers={"Idempotency-Key": key},
            give_up_after=90,
        )  # fmt: skip
        if done is not None and done.status_code == 200 and done.json()["status"] == "completed":
            self.tally.sales += 1
            self.tally.card_sales += card
        elif (
            done is None
            or done.status_code in RETRYABLE
            or _code(done) in ("sale_completing", "idempotency_key_in_use")
        ):
            # No answer in time: the sale is left to the recovery, which must resolve it either way.
            self.tally.unresolved_keys.append(key)
        else:
            self.tally.refusals[_code(done) or str(done.status_code)] += 1

    async def close(self) -> None:
        await self.http.aclose()


def _code(response: httpx.Response | None) -> str:
    if response is None:
        return ""
    try:
        return str(response.json().get("error", {}).get("code", ""))
    except ValueError:
        return ""


# --- the drill --------------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


async def invariants(env: dict[str, str], stripe: FakeStripe, backoffice: FakeBackOffice) -> list[Check]:
    database = Database(env["DATABASE_URL"], pool_size=2)
    checks: list[Check] = []
    try:
        async with database.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(
                        Payment.id,
                        Payment.kind,
                        Payment.tender,
                        Payment.status,
                        Payment.captured_cents,
                        Payment.provider_reference,
                        Sale.id,
                        Sale.kind,
                        Sale.status,
                    )
                    .join(Sale, Sale.id == Payment.sale_id)
                    .where(Payment.status.in_(CAPTURED))
                )
            ).all()
            orphans = [
                f"payment {r[0]} ({r[2]}, {r[3]}) of {r[7]} {r[6]} which is {r[8]}"
                for r in rows
                if not (r[8] == "completed" or (r[7] == "sale" and r[8] == "voided"))
            ]
            checks.append(Check("every captured payment belongs to a completed sale, return or void", not orphans,
                                f"{len(rows)} captured payments; {orphans[:5] or 'none orphaned'}"))  # fmt: skip
            ours = {r[5]: r[4] for r in rows if r[2] == "card" and r[1] == "payment" and r[5]}
            captured = {
                i["id"]: i.get("amount_received", 0) for i in stripe.payment_intents() if i["status"] == "succeeded"
            }
            hanging = [i["id"] for i in stripe.payment_intents() if i["status"] == "requires_capture"]
            unknown = {k: v for k, v in captured.items() if ours.get(k) != v}
            checks.append(
                Check("every charge the processor captured is a captured payment of ours, same amount", not unknown,
                      f"{len(captured)} captured charges; mismatched: {list(unknown)[:5] or 'none'}")
            )  # fmt: skip
            checks.append(Check("no card authorisation left hanging at the processor", not hanging,
                                f"{len(hanging)} intents still requires_capture {hanging[:5]}"))  # fmt: skip
            completing = await session.scalar(select(func.count()).select_from(Sale).where(Sale.status == "completing"))
            checks.append(Check("no sale left completing", completing == 0, f"{completing} completing"))
            mismatches = await inventory.ledger_mismatches(session, STORE_ID)
            reserved = await session.scalar(select(func.coalesce(func.sum(StockLevel.reserved), 0)))
            checks.append(Check("stock equals the movement ledger", not mismatches, f"{mismatches[:5] or 'holds'}"))
            checks.append(Check("nothing left reserved", reserved == 0, f"{reserved} units reserved"))
            reports = await audit.verify_all(session, bootstrap.encryption(settings_of(env)))
            broken = [f"{r.chain}: {r.problem}" for r in reports if not r.ok]
            entries = sum(r.entries_checked for r in reports)
            checks.append(Check("the audit chain verifies", not broken, f"{entries} entries in {len(reports)} chains; "
                                f"{broken or 'intact'}"))  # fmt: skip
            status = await outbox.status(session)
            checks.append(Check("the outbox drained after the back office returned",
                                status.pending == 0 and status.dead == 0,
                                f"pending {status.pending}, dead {status.dead}, delivered {status.delivered}; "
                                f"the back office holds {len(backoffice.keys())} documents"))  # fmt: skip
    finally:
        await database.dispose()
    return checks


async def wait_for_outbox(env: dict[str, str], seconds: float) -> float:
    database = Database(env["DATABASE_URL"], pool_size=1)
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            async with database.sessionmaker() as session:
                status = await outbox.status(session)
            if status.pending == 0:
                break
            await asyncio.sleep(1)
    finally:
        await database.dispose()
    return time.monotonic() - started


@contextlib.contextmanager
def fakes() -> Iterator[tuple[FakeStripe, FakeBackOffice]]:
    stripe = FakeStripe()
    backoffice = FakeBackOffice()
    with stripe.serve(), backoffice.server:
        yield stripe, backoffice


def step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


async def drill(args: argparse.Namespace, tmp: Path, postgres: LocalPostgres | SystemPostgres) -> int:
    name = f"posomni_drill_{os.getpid()}"
    url = await create_database(postgres.admin_url, name)
    redis = RedisServer(tmp)
    try:
        with fakes() as (stripe, backoffice):
            env = app_env(url, tmp, redis_port=redis.port, encryption_key=new_encryption_key(), extra={
                "CARD_PROCESSOR": "stripe", "STRIPE_SECRET_KEY": STRIPE_KEY, "STRIPE_API_BASE": stripe.base_url,
                "CONEXXUS_API_URL": backoffice.base_url, "CONEXXUS_API_KEY": BACKOFFICE_KEY,
            })  # fmt: skip
            catalog = await prepare_store(env)
            app = AppServer(env, tmp, workers=args.workers, name="app")
            worker = AppServer(env, tmp, name="worker", command=["worker"])
            with stopping(app, worker, redis):
                redis.start()
                app.start()
                await app.wait_ready()
                worker.start()
                stations = await provision(app.url, args.registers)
                tally = Tally()
                stop = asyncio.Event()
                registers = [Register(app.url, s, catalog, tally, n) for n, s in enumerate(stations)]

                async def sell(register: Register) -> None:
                    while not stop.is_set():
                        await register.sale()

                load = [asyncio.create_task(sell(r)) for r in registers]
                phase = args.phase_seconds
                step(f"load: {args.registers} registers selling (cash and card) on {app.url}")
                await asyncio.sleep(phase)
                step("fault 1: SIGKILL to the app mid-load")
                app.kill()
                await asyncio.sleep(2)
                app.start()
                step(f"app restarted, answering after {await app.wait_ready():.1f} s")
                await asyncio.sleep(phase)
                step("fault 2: PostgreSQL restart")
                started = time.monotonic()
                await asyncio.to_thread(postgres.restart)
                step(f"PostgreSQL back after {time.monotonic() - started:.1f} s")
                await asyncio.sleep(phase)
                step("fault 3: Redis stopped")
                redis.stop()
                await asyncio.sleep(phase)
                redis.start()
                step("Redis started again")
                await asyncio.sleep(phase / 2)
                step("fault 4: the back office stops answering (connection refused)")
                backoffice.refuse_connections()
                await asyncio.sleep(phase)
                backoffice.accept_connections()
                step("the back office is back")
                await asyncio.sleep(phase / 2)
                stop.set()
                await asyncio.gather(*load)
                for register in registers:
                    await register.close()
                step(f"load stopped: {tally.sales} sales completed ({tally.card_sales} by card), {tally.abandoned} "
                     f"abandoned mid-way, {len(tally.unresolved_keys)} left to recovery, refusals "
                     f"{dict(tally.refusals)}; retries {dict(tally.retries)}")  # fmt: skip
                # Every process stops before the recovery takes over the sales still marked as someone's.
                app.stop()
                worker.stop()
                recovered = await asyncio.to_thread(
                    subprocess.run, [*posomni_command(), "sagas", "recover", "--all"], env=child_environment(env),
                    capture_output=True, text=True, timeout=120, check=False,
                )  # fmt: skip
                said = recovered.stdout.strip().replace("\n", "; ") or recovered.stderr.strip()[-300:]
                step(f"posomni sagas recover --all (exit {recovered.returncode}): {said}")
                worker.start()
                drained = await wait_for_outbox(env, args.drain_seconds)
                step(f"outbox drained in {drained:.1f} s with the worker running")
                checks = await invariants(env, stripe, backoffice)
    finally:
        await drop_database(postgres.admin_url, name)
    print()
    for check in checks:
        print(f"{'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    failed = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(failed)} of {len(checks)} invariants hold")
    return 1 if failed else 0


async def main(args: argparse.Namespace) -> int:
    directory = Path(tempfile.mkdtemp(prefix="posomni-drill-"))
    postgres: LocalPostgres | SystemPostgres
    if args.system_postgres:
        postgres = SystemPostgres(
            os.environ.get("POSOMNI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        )
    else:
        postgres = LocalPostgres(directory / "pg")
        (directory / "pg").mkdir()
    code = 1
    try:
        await asyncio.to_thread(postgres.start)
        code = await drill(args, directory, postgres)
    finally:
        await asyncio.to_thread(postgres.stop)
        if args.keep_logs:
            print(f"logs kept in {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registers", type=int, default=8)
    parser.add_argument("--phase-seconds", type=float, default=10, help="load between two faults (s)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the app")
    parser.add_argument("--drain-seconds", type=float, default=150, help="how long the outbox may take to drain")
    parser.add_argument(
        "--system-postgres", action="store_true",
        help="restart the shared cluster (pg_ctlcluster) instead of a PostgreSQL of the drill's own",
    )  # fmt: skip
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs (the temporary directory)")
    arguments = parser.parse_args()
    run_main(lambda: main(arguments))
