"""Catalog benchmark: a 100,000-product catalog in a scratch database, then barcode lookups, search, the CSV
import and the app's start time. Run on demand (not in CI):

    .venv/bin/python bench/catalog_lookup.py                 # PostgreSQL and SQLite, 100,000 products
    .venv/bin/python bench/catalog_lookup.py --backend sqlite --products 20000

PostgreSQL: a scratch database is created on the server named by POSOMNI_TEST_POSTGRES_URL (default: postgres on
127.0.0.1:5432) and dropped afterwards. Redis (POSOMNI_TEST_REDIS_URL, default 127.0.0.1:6379) is used for the
warm-cache figures when it answers, under a namespace of the run's own. Goal: barcode lookup p95 < 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from prometheus_client.registry import CollectorRegistry
from sqlalchemy.engine import make_url

from posomni import migrate
from posomni.auth.principal import Actor
from posomni.cache.service import CacheService
from posomni.catalog import service as catalog
from posomni.catalog.barcodes import BarcodeFormat, make_code
from posomni.catalog.import_writer import import_catalog
from posomni.config import check, from_mapping
from posomni.database import Database
from posomni.security.crypto import EncryptionService, StaticKeyProvider, generate_key
from posomni.seed.demo import DEMO_LOGINS, seed

PG_ADMIN_URL = os.environ.get("POSOMNI_TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("POSOMNI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CASHIER = next(login for login in DEMO_LOGINS if login.username == "cashier")
CATEGORIES = ("spirits", "wine", "beer", "seltzer", "mixers", "snacks")
SIZES = ("50 mL", "375 mL", "750 mL", "1 L", "1.75 L", "12 oz can", "16 oz can", "12 oz bottle")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

    return f"p50 {at(50):6.2f} ms  p95 {at(95):6.2f} ms  p99 {at(99):6.2f} ms  (n={len(ordered)})"


def catalog_csv(products: int, seed_value: int = 7) -> tuple[str, list[str], list[str]]:
    """(CSV text, every barcode, some words of names for searching)."""
    rng = random.Random(seed_value)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choices(letters, k=rng.randint(4, 9))).capitalize() for _ in range(4000)]
    brands = words[:600]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sku", "name", "brand", "size", "category", "price", "cost", "barcode", "base_sku",
                     "units_per_pack", "tax_class", "deposit_class", "stock", "reorder_point"])  # fmt: skip
    barcodes: list[str] = []
    base: tuple[str, str, str, str] | None = None
    for i in range(products):
        code = make_code(f"7{i:010d}", BarcodeFormat.UPC_A)
        barcodes.append(code)
        price = rng.randint(99, 9999)
        if i % 5 == 4 and base is not None:
            # Every fifth product is a 6-pack of the single before it.
            sku, name, brand, category = base
            writer.writerow([f"{sku}-6", name, brand, "6-pack", category, f"{price * 5 / 100:.2f}",
                             f"{price * 3 / 100:.2f}", code, sku, 6, "standard", "", "", ""])  # fmt: skip
            continue
        brand = rng.choice(brands)
        name = f"{brand} {rng.choice(words)} {rng.choice(words)}"
        category = rng.choice(CATEGORIES)
        sku = f"P{i:07d}"
        base = (sku, name, brand, category)
        writer.writerow([sku, name, brand, rng.choice(SIZES), category, f"{price / 100:.2f}",
                         f"{price * 0.6 / 100:.2f}", code, "", 1, "standard", "", rng.randint(0, 120), 6])  # fmt: skip
    return out.getvalue(), barcodes, words


async def timed(samples: list[float], call: Callable[[], Awaitable[Any]]) -> None:
    start = time.perf_counter()
    await call()
    samples.append(time.perf_counter() - start)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def redis_available() -> bool:
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=1)
    try:
        return bool(await client.ping())
    except (OSError, aioredis.RedisError):
        return False
    finally:
        await client.aclose()


def settings_env(url: str, tmp: Path, redis_namespace: str | None) -> dict[str, str]:
    env = {
        "POS_ENV": "test", "DATABASE_URL": url, "AUDIT_LOG_ENCRYPTION_KEY": generate_key(),
        "JWT_SECRET": "bench-secret-" + "x" * 40, "ALLOWED_ORIGINS": "http://127.0.0.1:8000",
        "PASSWORD_HASH_COST": "4", "POSOMNI_DATA_DIR": str(tmp), "RATE_LIMIT_PER_CLIENT": "1000000/minute",
        "LOG_LEVEL": "warning",
    }  # fmt: skip
    if redis_namespace is not None:
        where = aioredis.Redis.from_url(REDIS_URL).connection_pool.connection_kwargs
        env |= {"REDIS_HOST": str(where.get("host", "127.0.0.1")), "REDIS_PORT": str(where.get("port", 6379)),
                "REDIS_NAMESPACE": redis_namespace}  # fmt: skip
    return env


def spawn(env: dict[str, str], port: int, tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "posomni.app:create_app_from_env", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env={**os.environ, **env, "POSOMNI_ENV_FILE": str(tmp / "none.env")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def start_server(env: dict[str, str], tmp: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """A uvicorn process on a free loopback port; returns it, its URL and the seconds until /health answered."""
    port = free_port()
    started = time.perf_counter()
    process = spawn(env, port, tmp)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        while True:
            try:
                if (await http.get(f"{url}/health", timeout=1)).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.02)
            if time.perf_counter() - started > 60:
                process.kill()
                raise RuntimeError("the app did not start within 60 s")
    return process, url, time.perf_counter() - started


async def bench_backend(kind: str, url: str, args: argparse.Namespace, tmp: Path) -> None:
    print(f"\n=== {kind}: {args.products:,} products ===")
    database = Database(url, pool_size=10)
    await migrate.upgrade(database.engine)
    async with database.unit_of_work() as session:
        await seed(session, demo=True, bcrypt_cost=4)
    process, _, empty_start = await start_server(settings_env(url, tmp, None), tmp)
    process.terminate()
    process.wait(timeout=10)
    print(f"app start with the 70-product demo catalog: {empty_start:.2f} s")
    text, barcodes, words = catalog_csv(args.products)
    crypto = EncryptionService(StaticKeyProvider.from_settings(generate_key(), None))
    memory = CacheService(None, registry=CollectorRegistry())
    started = time.perf_counter()
    async with database.unit_of_work() as session:
        report = await import_catalog(session, memory, crypto, Actor.system("bench"), text, store_id=None)
    if not report.imported or report.errors:
        raise SystemExit(f"import failed: {report.errors[:5]}")
    print(f"import of {report.rows:,} rows: {time.perf_counter() - started:.1f} s ({report.created:,} created)")

    rng = random.Random(11)
    codes = rng.sample(barcodes, min(args.lookups, len(barcodes)))
    use_redis = await redis_available()
    namespace = f"posomni-bench-{uuid.uuid4().hex[:8]}"
    caches = [("memory", memory)]
    if use_redis:
        env = settings_env(url, tmp, namespace)
        settings, problems = check(from_mapping(env))
        assert settings is not None, problems
        caches.append(
            ("redis", CacheService.from_settings(settings, namespace=namespace, registry=CollectorRegistry()))
        )
    for name, cache in caches:
        cold: list[float] = []
        warm: list[float] = []
        for code in codes:

            async def one(code: str = code, cache: CacheService = cache) -> None:
                async with database.unit_of_work() as session:
                    await catalog.lookup(session, cache, code)

            # First scan of a code (from the database), then the same code again (the cashier scanning a
            # second bottle): from the cache.
            await timed(cold, one)
            await timed(warm, one)
        print(f"lookup via service, {name:6} cache, cold: {percentiles(cold)}")
        print(f"lookup via service, {name:6} cache, warm: {percentiles(warm)}")
    search_terms = [words[5].lower()[:4], words[100].lower(), f"{words[7].lower()} 750", "zzzzqq", "can"]
    for term in search_terms:
        samples = []
        for _ in range(args.searches):

            async def find(term: str = term) -> None:
                async with database.unit_of_work() as session:
                    await catalog.search(session, term, limit=20)

            await timed(samples, find)
        async with database.unit_of_work() as session:
            hits = len((await catalog.search(session, term, limit=20)).items)
        print(f"search {term!r:18} ({hits:2} shown): {percentiles(samples)}")
    await database.dispose()

    env = settings_env(url, tmp, namespace if use_redis else None)
    process, base_url, start_seconds = await start_server(env, tmp)
    try:
        print(f"app start with {args.products:,} products (until /health answers): {start_seconds:.2f} s")
        http_codes = [code for code in rng.sample(barcodes, min(2 * args.lookups, len(barcodes))) if code not in codes]
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            login = await http.post("/auth/login", json={"username": CASHIER.username, "password": CASHIER.password})
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            http.cookies.clear()
            baseline: list[float] = []
            for _ in range(len(http_codes[: args.lookups])):

                async def me() -> None:
                    assert (await http.get("/auth/me", headers=headers)).status_code == 200

                await timed(baseline, me)
            print(f"HTTP baseline GET /auth/me (auth, session, middleware): {percentiles(baseline)}")
            cold, warm = [], []
            for code in http_codes[: args.lookups]:

                async def scan(code: str = code) -> None:
                    response = await http.get(f"/catalog/lookup/{code}", headers=headers)
                    assert response.status_code == 200, response.text

                await timed(cold, scan)
                await timed(warm, scan)
            cache_name = "Redis" if use_redis else "memory"
            print(f"lookup via HTTP API ({cache_name}), cold: {percentiles(cold)}")
            print(f"lookup via HTTP API ({cache_name}), warm: {percentiles(warm)}")
    finally:
        process.terminate()
        process.wait(timeout=10)
    for name, cache in caches:
        if name == "redis" and cache.client is not None:
            keys = [key async for key in cache.client.scan_iter(f"{namespace}:*")]
            for start in range(0, len(keys), 1000):
                await cache.client.delete(*keys[start : start + 1000])
        await cache.close()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="posomni-bench-") as directory:
        tmp = Path(directory)
        if args.backend in ("postgresql", "both"):
            name = f"posomni_bench_{os.getpid()}"
            admin = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
            connection = await asyncpg.connect(admin)
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await connection.execute(f'CREATE DATABASE "{name}"')
            url = make_url(admin.replace("postgresql://", "postgresql+asyncpg://", 1)).set(database=name)
            try:
                await bench_backend("PostgreSQL", url.render_as_string(hide_password=False), args, tmp)
            finally:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await connection.close()
        if args.backend in ("sqlite", "both"):
            await bench_backend("SQLite", f"sqlite+aiosqlite:///{tmp / 'bench.db'}", args, tmp)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "both"), default="both")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2000, help="distinct barcodes scanned per pass")
    parser.add_argument("--searches", type=int, default=50, help="repetitions per search term")
    asyncio.run(main(parser.parse_args()))
