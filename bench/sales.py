"""One register's cashier over HTTP, as the browser register does it: open a sale, scan, check an ID when the
sale needs one, complete with an Idempotency-Key, print the receipt — every call timed by its route."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from bench.stack import ADULT_DOB, Catalog, Station, Timings, bearer, cash_for


class SaleFailed(Exception):
    def __init__(self, call: str, response: httpx.Response | None, reason: str = "") -> None:
        self.call = call
        self.status = response.status_code if response is not None else 0
        code = ""
        if response is not None:
            try:
                code = response.json().get("error", {}).get("code", "")
            except ValueError:
                code = ""
        self.code = code or reason or f"http_{self.status}"
        super().__init__(f"{call}: {self.status} {self.code}")


@dataclass
class Cashier:
    http: httpx.AsyncClient
    station: Station
    catalog: Catalog
    timings: Timings
    rng: random.Random
    completed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.station.token)

    async def call(
        self, name: str, method: str, path: str, *, expect: int = 200, json: Any = None,
        params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
    ) -> httpx.Response:  # fmt: skip
        """One timed request; a status other than `expect` is recorded as an error and raised."""
        started = time.perf_counter()
        try:
            response = await self.http.request(
                method, path, json=json, params=params, headers={**self.headers, **(headers or {})}
            )
        except httpx.HTTPError as exc:
            self.timings.error(name, type(exc).__name__)
            raise SaleFailed(name, None, type(exc).__name__) from exc
        elapsed = time.perf_counter() - started
        if response.status_code != expect:
            failure = SaleFailed(name, response)
            self.timings.error(name, failure.code)
            raise failure
        self.timings.add(name, elapsed)
        return response

    async def sale(
        self, *, scans: int | None = None, card: bool = False, think: float = 0.0, restricted_share: float = 0.6
    ) -> dict[str, Any]:
        """A whole sale; `think` is the mean pause in seconds between two calls (a cashier's pace)."""
        started = time.perf_counter()
        sale = (await self.call("POST /sales", "POST", "/sales", expect=201, json={})).json()
        codes = self.catalog.pick(self.rng, scans or self.rng.randint(3, 5), restricted_share)
        for code in codes:
            await self.pause(think)
            sale = (
                await self.call(
                    "POST /sales/{id}/items", "POST", f"/sales/{sale['id']}/items", expect=201, json={"code": code}
                )
            ).json()
        if sale["needs_id_check"]:
            await self.pause(think)
            await self.call(
                "POST /compliance/id-checks", "POST", "/compliance/id-checks", expect=201,
                json={"method": "manual", "dob": ADULT_DOB, "expires": "2031-01-31", "document_type": "driver_license",
                      "photo_compared": True, "sale_id": sale["id"]},
            )  # fmt: skip
        await self.pause(think)
        total = int(sale["total_cents"])
        tenders = (
            [{"kind": "card", "amount_cents": total, "payment_method": "pm_sim_visa"}]
            if card
            else [{"kind": "cash", "tendered_cents": cash_for(total)}]
        )
        done = (
            await self.call(
                "POST /sales/{id}/complete",
                "POST",
                f"/sales/{sale['id']}/complete",
                json={"tenders": tenders},
                headers={"Idempotency-Key": f"bench-{uuid.uuid4().hex}"},
            )
        ).json()
        if done["status"] != "completed":
            self.timings.error("POST /sales/{id}/complete", f"status_{done['status']}")
            raise SaleFailed("POST /sales/{id}/complete", None, f"status_{done['status']}")
        await self.call("GET /sales/{id}/receipt", "GET", f"/sales/{sale['id']}/receipt", params={"format": "text"})
        self.timings.add("whole sale", time.perf_counter() - started)
        self.completed.append(done)
        return dict(done)

    async def pause(self, mean: float) -> None:
        if mean > 0:
            # Exponential pauses: a cashier's rhythm is uneven, and an even one would march registers in step.
            # At most 4 s: an idle connection must not meet uvicorn closing it (its keep-alive is 5 s).
            await asyncio.sleep(min(self.rng.expovariate(1 / mean), 5 * mean, 4.0))
