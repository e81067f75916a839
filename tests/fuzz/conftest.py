"""The API fuzzer's target: a live `posomni serve` on a PostgreSQL database of its own (the demo store, an open
shift, a completed and an open sale, a customer) and the shared Redis under a namespace of its own, with users
that only the fuzzer signs in as.

The fuzzer is free to call every operation with anything, so it must not lock itself out: its own users, its
register and its logins are kept out of the generated path parameters, and `POST /auth/logout` gets a token of
its own each time (signing out the fuzzer's session would turn every later answer into a 401).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from bench.stack import AppServer, app_env, bearer, sign_in, stopping

from posomni.database import Database
from posomni.security.crypto import generate_key
from tests.conftest import RUN_ID, _admin_execute, _db_url, connect_redis, drop_namespace, redis_env
from tests.support import PASSWORDS, seed_demo

FUZZ_PASSWORD = "fuzzer-only-pass-2026"  # a throwaway account of a throwaway database
# Tokens of the user that `POST /auth/logout` signs out: minted before the fuzzing, because a few dozen failed
# sign-ins from 127.0.0.1 (the fuzzer's own) throttle every later sign-in from that address.
LOGOUT_TOKENS = 40


@dataclass
class Target:
    url: str
    tokens: dict[str, str]
    # Path parameters the fuzzer must not touch: its own users and register.
    protected: dict[str, set[int]]
    logout_tokens: list[str]
    log_path: Path

    def take_logout_tokens(self, count: int = LOGOUT_TOKENS // 2) -> list[str]:
        taken, self.logout_tokens = self.logout_tokens[:count], self.logout_tokens[count:]
        return taken

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


async def _create_user(http: httpx.AsyncClient, admin: dict[str, str], username: str, role: str) -> int:
    body = {"username": username, "full_name": f"Fuzz {role}", "role": role, "password": FUZZ_PASSWORD}
    created = await http.post("/users", json=body | ({"store_id": 1} if role == "cashier" else {}), headers=admin)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def _some_data(http: httpx.AsyncClient) -> None:
    """An open shift with a completed sale, an open sale and a customer, so ids 1, 2 … name real things."""
    cashier = bearer(await sign_in(http, "cashier", PASSWORDS["cashier"], 1))
    shift = await http.post("/shifts", json={"register_id": 1, "opening_float_cents": 10000}, headers=cashier)
    assert shift.status_code == 201, shift.text
    customer = await http.post("/customers", json={"name": "Pat Fuzz", "phone": "7275550100"}, headers=cashier)
    assert customer.status_code == 201, customer.text
    for complete in (True, False):
        sale = (await http.post("/sales", json={}, headers=cashier)).json()
        added = await http.post(f"/sales/{sale['id']}/items", json={"code": "081234000608"}, headers=cashier)
        assert added.status_code == 201, added.text
        if complete:
            done = await http.post(
                f"/sales/{sale['id']}/complete", json={"tenders": [{"kind": "cash", "tendered_cents": 2000}]},
                headers={**cashier, "Idempotency-Key": uuid.uuid4().hex},
            )  # fmt: skip
            assert done.status_code == 200, done.text


@pytest.fixture(scope="session")
async def fuzz_target(pg_template: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    client = await connect_redis()
    name = f"posomni_t_{RUN_ID}_fuzz"
    await _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    url = _db_url(name)
    tmp = Path(tmp_path_factory.mktemp("fuzz"))
    namespace = f"posomni-fuzz-{uuid.uuid4().hex[:8]}"
    try:
        database = Database(url, pool_size=2)
        try:
            await seed_demo(database)
        finally:
            await database.dispose()
        env = app_env(url, tmp, redis_port=None, encryption_key=generate_key()) | redis_env(client, namespace)
        # Configured, so the webhook answers for its signature (400) instead of "not set up" (503).
        env["STRIPE_WEBHOOK_SECRET"] = "whsec_" + "f" * 32
        server = AppServer(env, tmp, name="fuzz-app")
        with stopping(server):
            server.start()
            await server.wait_ready()
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                admin = bearer(await sign_in(http, "admin", PASSWORDS["admin"]))
                await _some_data(http)
                register = await http.post("/stores/1/registers", json={"code": "FUZZ", "name": "Fuzz"}, headers=admin)
                assert register.status_code == 201, register.text
                register_id = int(register.json()["id"])
                users = {role: await _create_user(http, admin, f"fuzz-{role}", role) for role in ("admin", "cashier")}
                leaver = await _create_user(http, admin, "fuzz-leaver", "cashier")
                tokens = {
                    "admin": await sign_in(http, "fuzz-admin", FUZZ_PASSWORD),
                    "cashier": await sign_in(http, "fuzz-cashier", FUZZ_PASSWORD, register_id),
                }
                cashier = bearer(tokens["cashier"])
                shift = await http.post(
                    "/shifts", json={"register_id": register_id, "opening_float_cents": 5000}, headers=cashier
                )
                assert shift.status_code == 201, shift.text
                logouts = [await sign_in(http, "fuzz-leaver", FUZZ_PASSWORD) for _ in range(LOGOUT_TOKENS)]
            protected = {"user_id": {*users.values(), leaver}, "register_id": {register_id}}
            yield Target(server.url, tokens, protected, logouts, server.log_path)
    finally:
        await drop_namespace(client, namespace)
        await client.aclose()
        await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
