"""The live stack the load benchmarks and drills run against, all on loopback and all removed afterwards.

- `scratch_database()`: a PostgreSQL database of the run's own (created, migrated, demo store seeded, dropped with
  `WITH (FORCE)` on the way out, also after Ctrl-C);
- `RedisServer`: a redis-server of the run's own on a free port (never the shared one on 6379, which other test
  runs use), persistence off;
- `AppServer`: `posomni serve --workers N` (or `posomni worker`) as a child in its own process group, so a
  SIGKILL takes its uvicorn workers with it;
- `prepare_store()` / `provision()`: all-day sale hours, plenty of stock, and N registers with signed-in
  cashiers created through the API (`POST /stores/{id}/registers`, `POST /users`);
- `Timings`: latency samples per call type, summarised as p50/p95/p99 and written as JSON and CSV.

Used by `bench/checkout.py`, `bench/loadtest/run.py`, `bench/multiprocess.py`, `bench/fault_drill.py` and
`tests/integration/multiprocess/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TextIO

import asyncpg
import httpx
from sqlalchemy import select
from sqlalchemy.engine import make_url

from posomni import bootstrap, migrate
from posomni.auth.principal import Actor
from posomni.catalog.models import Barcode, Product
from posomni.config import RawEnvironment, Settings, check, from_mapping
from posomni.database import Database
from posomni.inventory import service as inventory
from posomni.inventory.models import StockLevel
from posomni.security.crypto import generate_key
from posomni.seed.demo import DEMO_LOGINS, seed

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PG_ADMIN_URL = os.environ.get("POSOMNI_TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
LOOPBACK = "127.0.0.1"
PASSWORDS = {login.username: login.password for login in DEMO_LOGINS}
PINS = {login.username: login.pin for login in DEMO_LOGINS if login.pin}
STORE_ID = 1
# Passwords of the cashiers the benchmarks create (bcrypt cost 4: sign-in is not what is measured).
BENCH_PASSWORD = "bench-cashier-pass-2026"  # noqa: S105 (a throwaway account in a scratch database)
ADULT_DOB = "1980-05-17"
ALL_DAY = {"default": [{"opens": "00:00", "closes": "24:00"}]}


def run_main(main: Callable[[], Coroutine[Any, Any, int]]) -> NoReturn:
    """Runs a script's `main()` and exits with its code. Ctrl-C and SIGTERM cancel it, so its `finally` blocks
    stop the servers and drop the database before the exit (130 or 143)."""

    async def guarded() -> int:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await main()

    try:
        sys.exit(asyncio.run(guarded()))
    except KeyboardInterrupt:
        sys.exit(130)
    except asyncio.CancelledError:
        sys.exit(143)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


# --- figures --------------------------------------------------------------------------------------------


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile of seconds, in milliseconds."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


@dataclass
class Timings:
    """Latency samples (seconds) and error codes per call type."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, call: str, seconds: float) -> None:
        self.samples.setdefault(call, []).append(seconds)

    def error(self, call: str, code: str) -> None:
        per_call = self.errors.setdefault(call, {})
        per_call[code] = per_call.get(code, 0) + 1

    @property
    def error_count(self) -> int:
        return sum(sum(codes.values()) for codes in self.errors.values())

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for call in sorted(set(self.samples) | set(self.errors)):
            samples = self.samples.get(call, [])
            rows.append(
                {
                    "call": call,
                    "count": len(samples),
                    "errors": sum(self.errors.get(call, {}).values()),
                    "p50_ms": round(percentile(samples, 50), 2),
                    "p95_ms": round(percentile(samples, 95), 2),
                    "p99_ms": round(percentile(samples, 99), 2),
                    "max_ms": round(max(samples) * 1000, 2) if samples else float("nan"),
                }
            )
        return rows

    def print_table(self, out: TextIO = sys.stdout) -> None:
        heading = ("count", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms")
        print(f"{'call':28} " + " ".join(f"{h:>8}" for h in heading), file=out)
        for row in self.rows():
            print(
                f"{row['call']:28} {row['count']:8d} {row['errors']:8d} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} "
                f"{row['p99_ms']:8.1f} {row['max_ms']:8.1f}",
                file=out,
            )
        for call, codes in sorted(self.errors.items()):
            print(f"  errors of {call}: {dict(sorted(codes.items()))}", file=out)


def write_results(name: str, summary: dict[str, Any], rows: list[dict[str, Any]]) -> tuple[Path, Path]:
    """`bench/results/<name>-<time>.json` (everything) and `.csv` (the per-call rows)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = RESULTS / f"{name}-{stamp}.json"
    csv_path = RESULTS / f"{name}-{stamp}.csv"
    json_path.write_text(json.dumps({**summary, "calls": rows}, indent=2, default=str) + "\n", encoding="utf-8")
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["call"])
        writer.writeheader()
        writer.writerows(rows)
    return json_path, csv_path


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()], "python": sys.version}


# --- PostgreSQL ---------------------------------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def database_url(name: str) -> str:
    url = make_url(PG_ADMIN_URL.replace("postgresql://", "postgresql+asyncpg://", 1)).set(database=name)
    return url.render_as_string(hide_password=False)


async def _admin(*statements: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL), timeout=10)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def scratch_database(tag: str) -> AsyncIterator[str]:
    """A migrated PostgreSQL database with the demo store, dropped on the way out; yields its async URL."""
    name = f"posomni_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    try:
        database = Database(url, pool_size=2)
        try:
            await migrate.upgrade(database.engine)
            async with database.unit_of_work() as session:
                await seed(session, demo=True, bcrypt_cost=4)
        finally:
            await database.dispose()
        yield url
    finally:
        # Shielded, so Ctrl-C during the run still drops the database.
        await asyncio.shield(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- Redis --------------------------------------------------------------------------------------------------


class RedisServer:
    """A redis-server of our own on a free loopback port, persistence off."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/services.sh installs it)")
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--logfile", str(self.directory / f"redis-{self.port}.log")],
            cwd=self.directory, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the app ------------------------------------------------------------------------------------------------


def app_env(
    url: str,
    tmp: Path,
    *,
    redis_port: int | None,
    encryption_key: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables every process of one run shares (one JWT secret and one encryption key)."""
    env = {
        "POS_ENV": "test", "DATABASE_URL": url, "AUDIT_LOG_ENCRYPTION_KEY": encryption_key,
        "JWT_SECRET": "bench-secret-" + "x" * 40, "ALLOWED_ORIGINS": "http://127.0.0.1:8000",
        # All simulated registers come from 127.0.0.1: the per-client limit would throttle the whole store.
        "PASSWORD_HASH_COST": "4", "POSOMNI_DATA_DIR": str(tmp), "RATE_LIMIT_PER_CLIENT": "10000000/minute",
        "CARD_PROCESSOR": "simulated", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json",
    }  # fmt: skip
    if redis_port is not None:
        env |= {"REDIS_HOST": LOOPBACK, "REDIS_PORT": str(redis_port), "REDIS_NAMESPACE": "posomni-bench"}
    return env | dict(extra or {})


def new_encryption_key() -> str:
    return generate_key()


def settings_of(env: Mapping[str, str]) -> Settings:
    settings, problems = check(from_mapping(env))
    if settings is None:
        raise RuntimeError(f"invalid settings: {problems}")
    return settings


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    # The run's variables only: none of the caller's POS-Omni variables (a developer's REDIS_HOST …) leaks in.
    ours = {name.upper() for name in RawEnvironment.model_fields}
    inherited = {k: v for k, v in os.environ.items() if k.upper() not in ours}
    return {**inherited, **env, "POSOMNI_ENV_FILE": str(Path(env["POSOMNI_DATA_DIR"]) / "none.env")}


def posomni_command() -> list[str]:
    script = Path(sys.executable).with_name("posomni")
    if script.is_file():
        return [str(script)]
    found = shutil.which("posomni")
    if found is None:
        raise RuntimeError("the posomni command is not installed (pip install -e .)")
    return [found]


class AppServer:
    """`posomni serve` (or any `posomni` command) in its own process group, logging to a file in `tmp`."""

    def __init__(
        self, env: Mapping[str, str], tmp: Path, *, workers: int = 1, port: int | None = None, name: str = "app",
        command: list[str] | None = None,
    ) -> None:  # fmt: skip
        self.env = dict(env)
        self.tmp = tmp
        self.workers = workers
        self.port = port or free_port()
        self.name = name
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = tmp / f"{name}.log"
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        args = self.command or [
            "serve", "--host", LOOPBACK, "--port", str(self.port), "--workers", str(self.workers),
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {self.starts + 1}: {' '.join(args)}\n".encode())
            self.process = subprocess.Popen(
                [*posomni_command(), *args], env=child_environment(self.env), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.starts += 1

    async def wait_ready(self, seconds: float = 90) -> float:
        """Seconds until /health answers (200 or 503); raises when the process dies or time runs out."""
        started = time.monotonic()
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    if (await http.get(f"{self.url}/health", timeout=2)).status_code in (200, 503):
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited; see {self.log_path}:\n{self.tail()}")
                if time.monotonic() - started > seconds:
                    raise RuntimeError(f"{self.name} did not answer within {seconds} s; see {self.log_path}")
                await asyncio.sleep(0.1)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def signal_group(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL to the whole group (the supervisor and its uvicorn workers), as a power cut would."""
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        self.process = None

    def stop(self, grace: float = 15) -> None:
        process = self.process
        if process is None:
            return
        self.signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
        # Uvicorn's workers may outlive their supervisor for a moment: the group is killed either way.
        self.kill()

    def __enter__(self) -> AppServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def stopping(*servers: AppServer | RedisServer) -> Iterator[None]:
    """Stops every server on the way out, whatever happened (Ctrl-C included)."""
    try:
        yield
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                server.stop()


# --- the store ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    """Scannable codes as a scanner sends them, split by whether the product needs an ID check."""

    plain: list[str]
    restricted: list[str]
    product_ids: dict[str, int]

    def pick(self, rng: random.Random, count: int, restricted_share: float = 0.6) -> list[str]:
        return [rng.choice(self.restricted if rng.random() < restricted_share else self.plain) for _ in range(count)]


async def prepare_store(env: Mapping[str, str], *, stock: int = 100_000) -> Catalog:
    """Before the app starts: every base product stocked to `stock` units (through the inventory service, so
    the movement ledger adds up) and the scannable codes of the catalog."""
    settings = settings_of(env)
    database = Database(env["DATABASE_URL"], pool_size=2)
    crypto = bootstrap.encryption(settings)
    try:
        async with database.unit_of_work() as session:
            levels = list(await session.scalars(select(StockLevel).where(StockLevel.store_id == STORE_ID)))
            for level in (level for level in levels if level.on_hand != stock):
                await inventory.adjust(
                    session, crypto, Actor.system("bench"), STORE_ID, product_id=level.product_id,
                    quantity=stock - level.on_hand, reason="adjust", note="bench: stock for the load",
                )  # fmt: skip
            rows = (await session.execute(select(Product.id, Product.age_restricted, Barcode.gtin).join(Barcode))).all()
    finally:
        await database.dispose()
    plain: list[str] = []
    restricted: list[str] = []
    ids: dict[str, int] = {}
    for product_id, age_restricted, gtin in rows:
        code = gtin[2:] if gtin.startswith("00") else gtin  # as a scanner sends a UPC-A
        (restricted if age_restricted else plain).append(code)
        ids[code] = product_id
    return Catalog(sorted(plain), sorted(restricted), ids)


async def sign_in(http: httpx.AsyncClient, username: str, password: str, register_id: int | None = None) -> str:
    body: dict[str, Any] = {"username": username, "password": password}
    if register_id is not None:
        body["register_id"] = register_id
    response = await http.post("/auth/login", json=body)
    if response.status_code != 200:
        raise RuntimeError(f"sign-in of {username} failed: {response.status_code} {response.text}")
    # API clients use the bearer token; the cookies would authenticate by accident.
    http.cookies.clear()
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Station:
    """A register with its cashier signed in there and a shift open."""

    register_id: int
    username: str
    token: str
    shift_id: int


async def provision(base_url: str, registers: int, *, cashiers: int | None = None) -> list[Station]:
    """Through the API, as an admin would: all-day sale hours (the run must not depend on the clock: Florida
    stops alcohol sales at midnight), `registers` new registers and cashiers (one per register unless
    `cashiers` is given: then they are shared), each signed in at its register with a shift open."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        admin = bearer(await sign_in(http, "admin", PASSWORDS["admin"]))
        current = await http.get(f"/stores/{STORE_ID}/settings", headers=admin)
        current.raise_for_status()
        policies = {**current.json()["settings"], "sale_hours": ALL_DAY}
        changed = await http.put(f"/stores/{STORE_ID}/settings", json=policies, headers=admin)
        if changed.status_code != 200:
            raise RuntimeError(f"store settings refused: {changed.text}")
        tag = uuid.uuid4().hex[:4]
        register_ids = []
        for n in range(registers):
            created = await http.post(
                f"/stores/{STORE_ID}/registers", json={"code": f"B{tag}{n:03d}", "name": f"Bench register {n + 1}"},
                headers=admin,
            )  # fmt: skip
            if created.status_code != 201:
                raise RuntimeError(f"register refused: {created.text}")
            register_ids.append(int(created.json()["id"]))
        usernames = [f"bench{tag}c{n:03d}" for n in range(cashiers or registers)]
        for username in usernames:
            created = await http.post(
                "/users",
                json={"username": username, "full_name": f"Bench {username}", "role": "cashier",
                      "store_id": STORE_ID, "password": BENCH_PASSWORD, "birth_date": "1990-01-01"},
                headers=admin,
            )  # fmt: skip
            if created.status_code != 201:
                raise RuntimeError(f"user refused: {created.text}")

        async def open_station(n: int, register_id: int) -> Station:
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as own:
                username = usernames[n % len(usernames)]
                token = await sign_in(own, username, BENCH_PASSWORD, register_id)
                shift = await own.post(
                    "/shifts", json={"register_id": register_id, "opening_float_cents": 20_000}, headers=bearer(token)
                )
                if shift.status_code != 201:
                    raise RuntimeError(f"shift refused: {shift.text}")
                return Station(register_id, username, token, int(shift.json()["id"]))

        stations = []
        for start in range(0, len(register_ids), 10):
            batch = register_ids[start : start + 10]
            stations += await asyncio.gather(*(open_station(start + i, r) for i, r in enumerate(batch)))
        return stations


def cash_for(total_cents: int) -> int:
    """What a customer hands over: the next $5 bill up."""
    return (total_cents // 500 + 1) * 500
