"""Locust load test: simulated registers doing a liquor store's sales through the API.

Each simulated user is one register with its cashier signed in and a shift open. One task is one whole sale at a
cashier's pace: open the sale, 3–5 scans (about 60 % age-restricted), a manual ID check with an adult's date of
birth when the sale needs one, then cash (60 %) or the simulated card (40 %) with an Idempotency-Key, the text
receipt — and now and then (1 sale in 20) a return of one unit of an earlier sale to its tender.

`make loadtest` (bench/loadtest/run.py) starts the server, a scratch database and Redis, creates the registers
and writes the JSON file named by POSOMNI_LOADTEST_CONFIG that this file reads:

    {"stations": [{"register_id": 3, "token": "…"}, …], "plain": ["…"], "restricted": ["…"],
     "think": 1.0, "samples": "path for the exact latency samples"}

Without that file each user signs in as the demo cashier at a register it creates (admin) — for a try against a
development server (`locust -f bench/loadtest/locustfile.py --host http://127.0.0.1:8000`); the store must then be
within its sale hours and have stock.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

from locust import FastHttpUser, events, task
from locust.env import Environment

CONFIG_PATH = os.environ.get("POSOMNI_LOADTEST_CONFIG")
CONFIG: dict[str, Any] = json.loads(Path(CONFIG_PATH).read_text(encoding="utf-8")) if CONFIG_PATH else {}
THINK = float(CONFIG.get("think", os.environ.get("POSOMNI_LOADTEST_THINK", "1.0")))
CARD_SHARE = 0.4
RETURN_SHARE = 0.05
RESTRICTED_SHARE = 0.6
ADULT = {"method": "manual", "dob": "1980-05-17", "expires": "2031-01-31", "document_type": "driver_license",
         "photo_compared": True}  # fmt: skip
# Demo catalog codes for the fallback (src/posomni/seed/products.csv): spirits and beer, mixers and snacks.
DEMO_RESTRICTED = ["081234000011", "081234000066", "081234000295", "081234000332", "081234000219"]
DEMO_PLAIN = ["081234000608", "081234000615", "081234000622"]

_next_station = itertools.count()
# Exact response times per request name (ms), since the last reset; Locust's own percentiles are bucketed.
_samples: dict[str, list[float]] = {}


def _record(name: str, response_time: float, exception: BaseException | None, **_: Any) -> None:
    if exception is None:
        _samples.setdefault(name, []).append(response_time)


def _reset() -> None:
    _samples.clear()


def _write_samples(environment: Environment, **_: Any) -> None:
    target = CONFIG.get("samples")
    if target:
        Path(target).write_text(json.dumps(_samples), encoding="utf-8")


events.request.add_listener(_record)  # type: ignore[no-untyped-call]  (Locust is untyped)
events.reset_stats.add_listener(_reset)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_write_samples)  # type: ignore[no-untyped-call]


class Register(FastHttpUser):
    # The pauses are inside the sale (between scans); a new customer steps up a little after the last one left.
    def wait_time(self) -> float:
        return random.uniform(0.5, 2.0) * THINK

    def on_start(self) -> None:
        self.rng = random.Random()
        self.receipts: list[dict[str, Any]] = []
        stations = CONFIG.get("stations")
        self.restricted: list[str] = CONFIG.get("restricted") or DEMO_RESTRICTED
        self.plain: list[str] = CONFIG.get("plain") or DEMO_PLAIN
        if stations:
            station = stations[next(_next_station) % len(stations)]
            self.headers = {"Authorization": f"Bearer {station['token']}"}
        else:
            self.headers = self._sign_in_at_a_new_register()

    def _sign_in_at_a_new_register(self) -> dict[str, str]:
        admin = self._login({"username": "admin", "password": "demo-admin-pass-2026"})
        code = f"L{uuid.uuid4().hex[:8]}"
        register = self.client.post(
            "/stores/1/registers", json={"code": code, "name": f"Locust {code}"}, headers=admin,
            name="[setup] POST /stores/{id}/registers",
        ).json()  # fmt: skip
        cashier = self._login({"username": "cashier", "password": "demo-cashier-pass-2026",
                               "register_id": register["id"]})  # fmt: skip
        self.client.post(
            "/shifts", json={"register_id": register["id"], "opening_float_cents": 20000}, headers=cashier,
            name="[setup] POST /shifts",
        )  # fmt: skip
        return cashier

    def _login(self, body: dict[str, Any]) -> dict[str, str]:
        response = self.client.post("/auth/login", json=body, name="[setup] POST /auth/login")
        self.client.cookiejar.clear()  # the bearer token only, as an API client
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def pause(self) -> None:
        # Exponential pauses: an uneven rhythm, so registers do not march in step.
        # At most 4 s: an idle connection must not meet uvicorn closing it (its keep-alive is 5 s).
        time.sleep(min(self.rng.expovariate(1 / THINK), 5 * THINK, 4.0) if THINK > 0 else 0)

    def call(self, method: str, path: str, name: str, expect: int, **kwargs: Any) -> dict[str, Any] | None:
        with self.client.request(
            method, path, name=name, headers={**self.headers, **kwargs.pop("headers", {})}, catch_response=True,
            **kwargs,
        ) as response:  # fmt: skip
            if response.status_code != expect:
                try:
                    code = response.json()["error"]["code"]
                except (ValueError, KeyError, TypeError):
                    code = ""
                response.failure(f"{response.status_code} {code}".strip())
                return None
            return response.json() if "json" in response.headers.get("content-type", "") else {}

    @task
    def sale(self) -> None:
        sale = self.call("POST", "/sales", "POST /sales", 201, json={})
        if sale is None:
            return
        sale_id = sale["id"]
        for _ in range(self.rng.randint(3, 5)):
            self.pause()
            codes = self.restricted if self.rng.random() < RESTRICTED_SHARE else self.plain
            scanned = self.call(
                "POST", f"/sales/{sale_id}/items", "POST /sales/{id}/items", 201, json={"code": self.rng.choice(codes)}
            )
            if scanned is None:
                return
            sale = scanned
        if sale["needs_id_check"]:
            self.pause()
            if self.call("POST", "/compliance/id-checks", "POST /compliance/id-checks", 201,
                         json={**ADULT, "sale_id": sale_id}) is None:  # fmt: skip
                return
        self.pause()
        total = int(sale["total_cents"])
        if self.rng.random() < CARD_SHARE:
            tenders = [{"kind": "card", "amount_cents": total, "payment_method": "pm_sim_visa"}]
        else:
            tenders = [{"kind": "cash", "tendered_cents": (total // 500 + 1) * 500}]
        done = self.call(
            "POST", f"/sales/{sale_id}/complete", "POST /sales/{id}/complete", 200, json={"tenders": tenders},
            headers={"Idempotency-Key": f"locust-{uuid.uuid4().hex}"},
        )  # fmt: skip
        if done is None:
            return
        self.call("GET", f"/sales/{sale_id}/receipt?format=text", "GET /sales/{id}/receipt", 200)
        self.receipts.append(done)
        if len(self.receipts) > 1 and self.rng.random() < RETURN_SHARE:
            self.pause()
            self.give_back(self.receipts.pop(0))

    def give_back(self, sale: dict[str, Any]) -> None:
        """The customer of an earlier sale brings one unit back, with the receipt."""
        line = sale["lines"][0]
        self.call(
            "POST", "/returns", "POST /returns", 201,
            json={"receipt_number": sale["receipt_number"], "reason": "customer changed their mind",
                  "lines": [{"original_line_id": line["id"], "quantity": 1, "restock": True}]},
            headers={"Idempotency-Key": f"locust-return-{uuid.uuid4().hex}"},
        )  # fmt: skip
