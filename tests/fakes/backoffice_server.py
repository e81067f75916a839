"""A fake back office speaking the REST layout of `posomni.backoffice.conexxus` over real HTTP, so tests drive
it with the real client (httpx, retries, circuit breaker).

It keeps one document per idempotency key (repeats are dropped but counted), records the order in which each
store's documents arrive, notices two requests of one store in flight at once, and injects the faults a
back office has: down (503) or gone (connection refused), flapping, slow, 429 with Retry-After, a poison
message answered with a fixed status, and a response lost after the document was stored.

    with running_fake_backoffice() as fake:
        client = ConexxusClient(fake.base_url, API_KEY, ...)
        fake.flap()
        ...
        assert fake.delivery_count(key) == 1
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from .http_server import BackgroundServer

API_KEY = "bo_test_key_0123456789"
CHAIN = "(chain)"


@dataclass
class Document:
    key: str
    store: str
    sequence: int
    type: str
    body: dict[str, Any]
    request_id: str | None
    # How many times it reached us, the first included.
    deliveries: int = 1


@dataclass
class Faults:
    """What goes wrong; written by the test thread and read by the server thread, always under the lock."""

    down_until: float = 0.0
    down_status: int = 503
    flapping: bool = False
    flap_next_fails: bool = True
    delay_seconds: float = 0.0
    rate_limited: int = 0
    retry_after: str = "1"
    # Idempotency key → (status answered for it, how many times more; None: forever).
    poisoned: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    lose_responses: int = 0


class _LostResponse(Response):
    """Starts a response and never finishes it: uvicorn drops the connection, as a proxy or a network cut
    would after the back office has already stored the document."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"64")]})


class FakeBackOffice:
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.faults = Faults()
        self.documents: dict[str, Document] = {}
        # Per store, the sequence of every request that stored or repeated a document, in arrival order.
        self.arrivals: dict[str, list[int]] = {}
        self.requests = 0
        self.overlaps = 0
        self._in_flight: dict[str, int] = {}
        # Per store: the pricebook's JSON body, and every GET of it as (If-None-Match sent, status answered).
        self.pricebooks: dict[str, bytes] = {}
        self.pricebook_gets: list[tuple[str, str | None, int]] = []
        self.pricebook_etags = True
        self.server = BackgroundServer(self._build_app())

    def reset(self, *, settle_seconds: float = 5.0) -> None:
        """Forget every document and fault, so one running server can serve many tests; first waits for
        requests still being handled, so none lands in the next test's records."""
        self.accept_connections()
        deadline = time.monotonic() + settle_seconds
        while True:
            with self.lock:
                if not any(self._in_flight.values()) or time.monotonic() > deadline:
                    self.faults = Faults()
                    self.documents.clear()
                    self.arrivals.clear()
                    self._in_flight.clear()
                    self.requests = self.overlaps = 0
                    self.pricebooks.clear()
                    self.pricebook_gets.clear()
                    self.pricebook_etags = True
                    return
            time.sleep(0.01)

    # --- faults (thread-safe) ---------------------------------------------------------------------------

    def go_down(self, seconds: float = 3600.0, status: int = 503) -> None:
        with self.lock:
            self.faults.down_until, self.faults.down_status = time.monotonic() + seconds, status

    def come_back(self) -> None:
        with self.lock:
            self.faults.down_until = 0.0

    def refuse_connections(self) -> None:
        """Stop listening: clients get "connection refused", as when the back office host is gone."""
        self.server.stop()

    def accept_connections(self) -> None:
        self.server.start()

    def flap(self, enabled: bool = True) -> None:
        """Every other request fails with 503, starting with the next one."""
        with self.lock:
            self.faults.flapping, self.faults.flap_next_fails = enabled, True

    def slow(self, seconds: float) -> None:
        with self.lock:
            self.faults.delay_seconds = seconds

    def rate_limit(self, times: int, retry_after: str = "1") -> None:
        with self.lock:
            self.faults.rate_limited, self.faults.retry_after = times, retry_after

    def poison(self, key: str, status: int = 400, times: int | None = None) -> None:
        with self.lock:
            self.faults.poisoned[key] = (status, times)

    def cure(self, key: str) -> None:
        with self.lock:
            self.faults.poisoned.pop(key, None)

    def lose_next_responses(self, times: int = 1) -> None:
        """The next `times` documents are stored, then their connection is dropped before the answer."""
        with self.lock:
            self.faults.lose_responses = times

    def set_pricebook(self, store: str, document: dict[str, Any], *, etags: bool = True) -> None:
        """What `GET /v1/stores/{store}/pricebook` answers from now on; `etags=False` makes it ignore
        If-None-Match and send no ETag, as some back offices do."""
        with self.lock:
            self.pricebooks[store] = json.dumps(document).encode()
            self.pricebook_etags = etags

    # --- observations (thread-safe) --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def request_count(self) -> int:
        with self.lock:
            return self.requests

    def delivery_count(self, key: str) -> int:
        with self.lock:
            document = self.documents.get(key)
            return document.deliveries if document else 0

    def keys(self) -> set[str]:
        with self.lock:
            return set(self.documents)

    def first_arrival_order(self, store: str) -> list[int]:
        """The sequences of a store's documents in the order they were first stored."""
        with self.lock:
            seen: set[int] = set()
            order = []
            for sequence in self.arrivals.get(store, []):
                if sequence not in seen:
                    seen.add(sequence)
                    order.append(sequence)
            return order

    def stores(self) -> set[str]:
        with self.lock:
            return set(self.arrivals)

    # --- server ----------------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/stores/{store}/documents")
        async def store_document(store: str, request: Request) -> Response:
            return await self._receive(store, request)

        @app.post("/v1/documents")
        async def chain_document(request: Request) -> Response:
            return await self._receive(CHAIN, request)

        @app.get("/v1/stores/{store}/pricebook")
        async def pricebook(store: str, request: Request) -> Response:
            return self._pricebook(store, request)

        @app.get("/v1/health")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        return app

    def _pricebook(self, store: str, request: Request) -> Response:
        sent = request.headers.get("if-none-match")
        with self.lock:
            self.requests += 1
            if request.headers.get("x-api-key") != self.api_key:
                return JSONResponse({"error": "bad api key"}, status_code=401)
            failure = self._fault("")
            body = self.pricebooks.get(store)
            response: Response
            if failure is not None:
                response = failure
            elif body is None:
                response = JSONResponse({"error": f"no pricebook for {store}"}, status_code=404)
            elif not self.pricebook_etags:
                response = Response(body, media_type="application/json")
            else:
                etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
                if sent == etag:
                    response = Response(status_code=304, headers={"ETag": etag})
                else:
                    response = Response(body, media_type="application/json", headers={"ETag": etag})
            self.pricebook_gets.append((store, sent, response.status_code))
            return response

    def _fault(self, key: str) -> Response | None:
        """Decide, under the lock, whether this request fails before it is processed."""
        faults = self.faults
        if time.monotonic() < faults.down_until:
            return JSONResponse({"error": "down for maintenance"}, status_code=faults.down_status)
        if faults.flapping:
            fails, faults.flap_next_fails = faults.flap_next_fails, not faults.flap_next_fails
            if fails:
                return JSONResponse({"error": "flapping"}, status_code=503)
        if faults.rate_limited > 0:
            faults.rate_limited -= 1
            return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": faults.retry_after})
        if key in faults.poisoned:
            status, times = faults.poisoned[key]
            if times is not None:
                if times <= 1:
                    del faults.poisoned[key]
                else:
                    faults.poisoned[key] = (status, times - 1)
            return JSONResponse({"error": f"cannot take document {key}"}, status_code=status)
        return None

    async def _receive(self, store: str, request: Request) -> Response:
        key = request.headers.get("idempotency-key", "")
        with self.lock:
            self.requests += 1
            if request.headers.get("x-api-key") != self.api_key:
                return JSONResponse({"error": "bad api key"}, status_code=401)
            if not key:
                return JSONResponse({"error": "Idempotency-Key is required"}, status_code=400)
            failure = self._fault(key)
            delay = self.faults.delay_seconds
        if failure is not None:
            return failure
        body = await request.json()
        with self.lock:
            self._in_flight[store] = self._in_flight.get(store, 0) + 1
            if self._in_flight[store] > 1:
                self.overlaps += 1
        try:
            if delay:
                await asyncio.sleep(delay)
            with self.lock:
                return self._store(store, key, body, request.headers.get("x-request-id"))
        finally:
            with self.lock:
                self._in_flight[store] = max(self._in_flight.get(store, 0) - 1, 0)

    def _store(self, store: str, key: str, body: dict[str, Any], request_id: str | None) -> Response:
        sequence = int(body["sequence"])
        self.arrivals.setdefault(store, []).append(sequence)
        existing = self.documents.get(key)
        if existing is not None:
            existing.deliveries += 1
            response: Response = JSONResponse(
                {"status": "duplicate"}, status_code=200, headers={"Idempotent-Replayed": "true"}
            )
        else:
            self.documents[key] = Document(key, store, sequence, body["type"], body, request_id)
            response = JSONResponse({"status": "accepted"}, status_code=201)
        if self.faults.lose_responses > 0:
            self.faults.lose_responses -= 1
            return _LostResponse()
        return response


@contextmanager
def running_fake_backoffice(api_key: str = API_KEY) -> Iterator[FakeBackOffice]:
    """A fake on a free loopback port, stopped on exit (call `reset()` to reuse it between tests)."""
    fake = FakeBackOffice(api_key)
    with fake.server:
        yield fake
