"""Checkout benchmark: N registers selling at once against a live server on PostgreSQL and Redis. Run on demand
(not in CI):

    .venv/bin/python bench/checkout.py                          # 20 and 50 registers, 60 s each, 2 workers
    .venv/bin/python bench/checkout.py --registers 20 --seconds 30 --think 0

Each register is a cashier signed in at a register of its own with a shift open, doing whole sales in a loop:
open a sale, 3–5 scans (about 60 % of them age-restricted, so most sales need a manual ID check), cash tender with
an Idempotency-Key, the text receipt. `--think` is the mean pause between two calls of one register (a cashier
scanning); `--think 0` runs the registers flat out (the server's capacity, not a store's day).

Everything is the run's own and removed afterwards: a scratch PostgreSQL database (POSOMNI_TEST_POSTGRES_URL,
default postgres on 127.0.0.1:5432), a redis-server on a free port, `posomni serve --workers N` on a free
loopback port. Prints a table per register count and writes JSON and CSV into bench/results/.
Goal: p95 of sale completion (`POST /sales/{id}/complete`) under 100 ms at 20 registers.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psutil
from bench.sales import Cashier, SaleFailed
from bench.stack import (
    AppServer,
    Catalog,
    RedisServer,
    Station,
    Timings,
    app_env,
    machine,
    new_encryption_key,
    prepare_store,
    provision,
    run_main,
    scratch_database,
    stopping,
    write_results,
)

COMPLETE = "POST /sales/{id}/complete"
GOAL_MS = 100.0


class CpuMeter:
    """CPU seconds used by a process tree between two readings (the server's share of the machine)."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.start = self.read()

    def read(self) -> float:
        total = 0.0
        try:
            for process in [self.root, *self.root.children(recursive=True)]:
                with_times = process.cpu_times()
                total += with_times.user + with_times.system
        except psutil.Error:
            pass
        return total

    def used(self) -> float:
        return self.read() - self.start


class DatabaseCpuMeter:
    """CPU seconds used by the PostgreSQL backends serving one database (on this machine) between two readings:
    the database's share of each sale, which the server's own CPU does not show."""

    def __init__(self, database: str) -> None:
        self.marker = f" {database} "
        self.start = self.read()

    def read(self) -> dict[int, float]:
        seconds: dict[int, float] = {}
        for process in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            times = process.info["cpu_times"]
            if process.info["name"] in ("postgres", "postmaster") and self.marker in f"{cmdline} " and times:
                seconds[process.pid] = times.user + times.system
        return seconds

    def used(self) -> float:
        # A backend that ended during the run is lost (the pool keeps its connections, so there are none).
        return sum(total - self.start.get(pid, 0.0) for pid, total in self.read().items())


async def run_registers(
    base_url: str, stations: list[Station], catalog: Catalog, *, seconds: float, think: float, seed: int
) -> tuple[Timings, int, float]:
    """Every station sells until the time is up; returns the timings, the sales completed and the wall time."""
    timings = Timings()
    deadline = time.monotonic() + seconds

    async def register(n: int, station: Station) -> int:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
            cashier = Cashier(http, station, catalog, timings, random.Random(seed * 1000 + n))
            # Customers do not all step up at the same instant: started together, every register would ask for
            # its next receipt number at once, and those requests queue on the store's counter row.
            await asyncio.sleep(cashier.rng.uniform(0, max(5 * think, 0.5)))
            while time.monotonic() < deadline:
                try:
                    await cashier.sale(think=think)
                except SaleFailed:
                    await asyncio.sleep(0.1)
            return len(cashier.completed)

    started = time.monotonic()
    counts = await asyncio.gather(*(register(n, s) for n, s in enumerate(stations)))
    return timings, sum(counts), time.monotonic() - started


async def main(args: argparse.Namespace) -> int:
    counts = sorted({int(n) for n in args.registers.split(",")})
    results: list[dict[str, Any]] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="posomni-checkout-") as directory:
        tmp = Path(directory)
        redis = None if args.no_redis else RedisServer(tmp)
        async with scratch_database("checkout") as url:
            env = app_env(url, tmp, redis_port=redis.port if redis else None, encryption_key=new_encryption_key())
            catalog = await prepare_store(env)
            server = AppServer(env, tmp, workers=args.workers)
            with stopping(*(s for s in (server, redis) if s is not None)):
                if redis is not None:
                    redis.start()
                server.start()
                print(f"server: {args.workers} worker(s), start {await server.wait_ready():.1f} s; "
                      f"Redis: {'own redis-server' if redis else 'none (in-memory)'}")  # fmt: skip
                stations = await provision(server.url, max(counts))
                # Warm up (connections, caches, the first compilation of every query) without measuring.
                await run_registers(server.url, stations[: max(counts)], catalog, seconds=args.warmup, think=0.05,
                                    seed=0)  # fmt: skip
                assert server.process is not None
                for n in counts:
                    cpu, database_cpu = CpuMeter(server.process.pid), DatabaseCpuMeter(url.rsplit("/", 1)[-1])
                    own_cpu = time.process_time()
                    timings, sales, wall = await run_registers(
                        server.url, stations[:n], catalog, seconds=args.seconds, think=args.think, seed=n
                    )
                    server_cpu, client_cpu = cpu.used(), time.process_time() - own_cpu
                    postgres_cpu = database_cpu.used()
                    p95 = next((r["p95_ms"] for r in timings.rows() if r["call"] == COMPLETE), float("nan"))
                    met = p95 < GOAL_MS and timings.error_count == 0
                    failed |= not met
                    print(f"\n=== {n} registers, {wall:.0f} s, think {args.think} s: {sales} sales, "
                          f"{sales / wall:.1f} sales/s, {timings.error_count} errors ===")  # fmt: skip
                    timings.print_table()
                    print(f"CPU: server {server_cpu / wall * 100:.0f} %, load generator {client_cpu / wall * 100:.0f} %"
                          f" of one core; goal p95 of {COMPLETE} < {GOAL_MS:.0f} ms: "
                          f"{'met' if met else 'NOT met'} ({p95:.1f} ms)")  # fmt: skip
                    if sales:
                        print(f"CPU per sale: server {server_cpu / sales * 1000:.1f} ms, "
                              f"PostgreSQL {postgres_cpu / sales * 1000:.1f} ms")  # fmt: skip
                    results.append({
                        "registers": n, "seconds": round(wall, 1), "think_seconds": args.think, "sales": sales,
                        "sales_per_second": round(sales / wall, 2), "errors": timings.errors,
                        "server_cpu_percent": round(server_cpu / wall * 100), "goal_met": met,
                        "postgres_cpu_percent": round(postgres_cpu / wall * 100),
                        "cpu_ms_per_sale": {"server": round(server_cpu / max(sales, 1) * 1000, 1),
                                            "postgresql": round(postgres_cpu / max(sales, 1) * 1000, 1)},
                        "client_cpu_percent": round(client_cpu / wall * 100), "calls": timings.rows(),
                    })  # fmt: skip
    rows = [{"registers": r["registers"], **row} for r in results for row in r["calls"]]
    summary = {"benchmark": "checkout", "workers": args.workers, "redis": not args.no_redis, "machine": machine(),
               "goal": f"p95 of {COMPLETE} < {GOAL_MS:.0f} ms", "runs": results}  # fmt: skip
    json_path, csv_path = write_results("checkout", summary, rows)
    print(f"\nwritten: {json_path.relative_to(Path.cwd()) if json_path.is_relative_to(Path.cwd()) else json_path}, "
          f"{csv_path.name}")  # fmt: skip
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registers", default="20,50", help="comma-separated register counts, run one after another")
    parser.add_argument("--seconds", type=float, default=60, help="measured seconds per register count")
    parser.add_argument("--warmup", type=float, default=5, help="unmeasured seconds before the first count")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between a register's calls (s)")
    parser.add_argument("--no-redis", action="store_true", help="run without Redis (in-memory cache)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the goal is missed")
    arguments = parser.parse_args()
    run_main(lambda: main(arguments))
