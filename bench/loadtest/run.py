"""`make loadtest`: Locust, headless and bounded, against a live server of the run's own on loopback.

    .venv/bin/python bench/loadtest/run.py                      # 50 registers, 90 s, 2 app workers
    .venv/bin/python bench/loadtest/run.py --users 20 --seconds 60 --think 0.5

Starts a redis-server on a free port, a scratch PostgreSQL database (migrated, demo store, stock for the load),
`posomni serve --workers N`; creates one register and cashier per simulated user through the API with a shift
open; runs `locust --headless` with bench/loadtest/locustfile.py (statistics reset once every user is spawned);
then removes everything. Writes Locust's CSV (`bench/results/loadtest-<time>_stats.csv` …) and a summary
(`loadtest-<time>-summary.json`), checks that the stock still equals its movement ledger, and prints the
verdict. Goal: zero errors and p95 < 100 ms (all calls together) at 50 registers. Exit code 1 when it is
missed with --strict.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.stack import (
    RESULTS,
    AppServer,
    RedisServer,
    app_env,
    machine,
    new_encryption_key,
    percentile,
    prepare_store,
    provision,
    run_main,
    scratch_database,
    stopping,
)

from posomni.database import Database
from posomni.inventory import service as inventory

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
GOAL_MS = 100.0


def locust_command() -> list[str]:
    script = Path(sys.executable).with_name("locust")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "locust"]


def read_stats(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def exact_rows(samples: dict[str, list[float]]) -> list[dict[str, Any]]:
    """p50/p95/p99 from every response time (Locust's CSV rounds its percentiles to buckets)."""
    rows = []
    every: list[float] = []
    for name in sorted(samples):
        values = [v / 1000 for v in samples[name]]
        every += values
        rows.append(_row(name, values))
    rows.append(_row("all calls", every))
    return rows


def _row(name: str, values: list[float]) -> dict[str, Any]:
    return {"name": name, "count": len(values), **{f"p{p}_ms": round(percentile(values, p), 1) for p in (50, 95, 99)}}


async def main(args: argparse.Namespace) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    prefix = RESULTS / f"loadtest-{time.strftime('%Y%m%d-%H%M%S')}"
    with tempfile.TemporaryDirectory(prefix="posomni-loadtest-") as directory:
        tmp = Path(directory)
        redis = RedisServer(tmp)
        async with scratch_database("loadtest") as url:
            env = app_env(url, tmp, redis_port=redis.port, encryption_key=new_encryption_key())
            catalog = await prepare_store(env)
            server = AppServer(env, tmp, workers=args.workers)
            with stopping(server, redis):
                redis.start()
                server.start()
                print(f"server: {args.workers} worker(s) on {server.url}, up in {await server.wait_ready():.1f} s")
                stations = await provision(server.url, args.users)
                config = tmp / "loadtest.json"
                samples_path = tmp / "samples.json"
                config.write_text(json.dumps({
                    "stations": [{"register_id": s.register_id, "token": s.token} for s in stations],
                    "plain": catalog.plain, "restricted": catalog.restricted, "think": args.think,
                    "samples": str(samples_path),
                }), encoding="utf-8")  # fmt: skip
                # The statistics restart once every register is running: -t covers the ramp-up and the measure.
                ramp = args.users / args.spawn_rate
                command = [
                    *locust_command(), "-f", str(LOCUSTFILE), "--headless", "--host", server.url,
                    "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{round(args.seconds + ramp)}s",
                    "--reset-stats", "--csv", str(prefix), "--only-summary", "--stop-timeout", "15",
                    "--loglevel", "WARNING",
                ]  # fmt: skip
                print(f"locust: {args.users} registers, {args.seconds:.0f} s after ramp-up, think {args.think} s")
                # Locust's own run; it stops itself after -t (plus the spawn time and the stop timeout).
                locust = await asyncio.create_subprocess_exec(
                    *command, env={**_without_ours(), "POSOMNI_LOADTEST_CONFIG": str(config)}
                )
                try:
                    exit_code = await asyncio.wait_for(locust.wait(), timeout=args.seconds + ramp + 120)
                finally:
                    if locust.returncode is None:  # interrupted or overdue: Locust writes its CSV as it stops
                        locust.terminate()
                        await locust.wait()
                samples: dict[str, list[float]] = (
                    json.loads(samples_path.read_text(encoding="utf-8")) if samples_path.exists() else {}
                )
                database = Database(url, pool_size=1)
                try:
                    async with database.sessionmaker() as session:
                        mismatches = await inventory.ledger_mismatches(session, 1)
                finally:
                    await database.dispose()
    stats = read_stats(prefix.with_name(prefix.name + "_stats.csv"))
    aggregated = next(row for row in stats if row["Name"] == "Aggregated")
    failures = int(aggregated["Failure Count"])
    rows = exact_rows(samples)
    overall = rows[-1]
    requests = overall["count"] + failures
    seconds = args.seconds
    print(f"\n{'call':32} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for row in rows:
        print(f"{row['name']:32} {row['count']:7d} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} {row['p99_ms']:8.1f}")
    sales = next((r["count"] for r in rows if r["name"] == "POST /sales/{id}/complete"), 0)
    met = failures == 0 and overall["p95_ms"] < GOAL_MS
    print(f"\n{requests} requests ({requests / seconds:.1f}/s), {failures} failures, {sales} sales "
          f"({sales / seconds:.2f}/s); stock vs ledger: {mismatches or 'holds'}")  # fmt: skip
    print(f"goal (zero errors, p95 < {GOAL_MS:.0f} ms at {args.users} registers): {'met' if met else 'NOT met'}")
    summary = {
        "benchmark": "loadtest", "users": args.users, "seconds": seconds, "think_seconds": args.think,
        "workers": args.workers, "requests": requests, "failures": failures, "sales": sales,
        "requests_per_second": round(requests / seconds, 2), "sales_per_second": round(sales / seconds, 2),
        "locust_exit_code": exit_code, "ledger_holds": not mismatches, "goal_met": met,
        "machine": machine(), "calls": rows,
        "failures_by_call": {r["Name"]: int(r["Failure Count"]) for r in stats if int(r["Failure Count"])},
    }  # fmt: skip
    summary_path = prefix.with_name(prefix.name + "-summary.json")
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"written: {prefix.name}_stats.csv, _failures.csv, _stats_history.csv, {summary_path.name} in {RESULTS}")
    return 1 if args.strict and not met else 0


def _without_ours() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("POSOMNI_LOADTEST")}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50, help="simulated registers")
    parser.add_argument("--seconds", type=float, default=90, help="measured seconds after the ramp-up")
    parser.add_argument("--spawn-rate", type=float, default=10, help="registers started per second")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between a register's calls (s)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the goal is missed")
    arguments = parser.parse_args()
    run_main(lambda: main(arguments))
