"""The back office over Conexxus-style REST/JSON.

Resource layout (one document per outbox message):

    POST {CONEXXUS_API_URL}/v1/stores/{store_code}/documents   a store's document (sale, stock, Z report …)
    POST {CONEXXUS_API_URL}/v1/documents                       a chain-wide document (no store)

    {"id": "<idempotency key>", "type": "sale.completed", "sequence": 1234, "store": "S001",
     "aggregate_id": "…", "occurred_at": "2025-06-01T18:04:05.123456+00:00", "data": {… amounts in cents …}}

    GET  {CONEXXUS_API_URL}/v1/stores/{store_code}/pricebook       the store's pricebook (items, departments)

The pricebook answer is JSON (`backoffice/naxml/parse.py` reads it) with an ETag; sending that ETag back as
If-None-Match gets 304 while the pricebook is unchanged. It is read up to `max_pricebook_bytes`, and its
request goes through the same retries and circuit breaker as a delivery.

`store_code` is the store's code, which the back office knows as its location id. `sequence` (the outbox
row id) increases per store: the receiver may use it to check the order it is given.

Headers on every request: `X-API-Key` (CONEXXUS_API_KEY); `Idempotency-Key`, the message's key, which stays
the same on every resend, so the receiver drops a document it already has and answers 2xx again (saying
`Idempotent-Replayed: true` when it wants to); `X-Request-ID`, the request that caused the change (or
`outbox-<id>` when there was none).

Answers and what this client does with them:

- 2xx: delivered.
- 429, 502, 503, 504, timeouts, refused or dropped connections: retried here with exponential backoff and full
  jitter, honouring Retry-After (seconds or an HTTP date); when Retry-After asks for longer than
  `max_retry_after_wait`, the client stops and hands the wait to the outbox, which does not hold a worker
  for it. Outcome UNAVAILABLE.
- other 5xx: retried the same way; outcome FAILED when they persist.
- 401, 403, 3xx: our key or URL is wrong; not retried; outcome MISCONFIGURED.
- any other 4xx: this message can never be accepted; never retried; outcome REJECTED.

A circuit breaker (purgatory) wraps each delivery, retries included: after `failure_threshold` failed
deliveries in a row it opens, and for `recovery_seconds` every delivery returns CIRCUIT_OPEN at once without a
request, so a dead back office costs no waiting. Then deliveries are let through again; the first failure
reopens it, a success closes it. A rejection does not count as a failure: the back office answered.
"""

from __future__ import annotations

import email.utils
import time
import uuid
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote

import httpx
from purgatory import AsyncCircuitBreakerFactory, ContextChanged, Event
from purgatory.domain.model import OpenedState
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from posomni import __version__
from posomni.backoffice.metrics import CIRCUIT_STATE_VALUE, backoffice_metrics
from posomni.backoffice.naxml.schemas import PricebookFetch
from posomni.backoffice.schemas import DeliveryResult, OutboundMessage, Outcome
from posomni.config import mask_url
from posomni.kit.time import utcnow
from posomni.logging import get_logger

log = get_logger(__name__)

CIRCUIT = "backoffice"
_UNAVAILABLE_STATUS = frozenset({429, 502, 503, 504})
_ERROR_BODY_CHARS = 300


class _Retryable(Exception):
    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(result.error)
        self.result = result


class _BreakerFailure(Exception):
    """Raised inside the breaker's block so that purgatory counts the delivery as failed."""

    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(result.error)
        self.result = result


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or utcnow())).total_seconds())


def _body_excerpt(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:_ERROR_BODY_CHARS]


class ConexxusClient:
    configured = True

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        max_tries: int = 3,
        backoff_base: float = 0.25,
        backoff_max: float = 2.0,
        max_retry_after_wait: float = 5.0,
        failure_threshold: int = 5,
        recovery_seconds: float = 30.0,
        max_pricebook_bytes: int = 64 * 1024 * 1024,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            headers={"X-API-Key": api_key, "User-Agent": f"posomni/{__version__}"},
            follow_redirects=False,
            transport=transport,
        )
        self._max_retry_after_wait = max_retry_after_wait
        self._max_pricebook_bytes = max_pricebook_bytes
        self._jitter = wait_random_exponential(multiplier=backoff_base, max=backoff_max)
        self._retrying = AsyncRetrying(
            stop=stop_after_attempt(max_tries),
            wait=self._wait,
            retry=retry_if_exception(self._worth_retrying),
            reraise=True,
        )
        self._breakers = AsyncCircuitBreakerFactory(default_threshold=failure_threshold, default_ttl=recovery_seconds)
        self._breakers.add_listener(self._on_breaker_event)
        self._metrics = backoffice_metrics()
        self._last_success_at: datetime | None = None
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        breaker = await self._breakers.get_breaker(CIRCUIT)
        try:
            async with breaker:
                result = await self._send(message)
        except OpenedState as opened:
            result = DeliveryResult(
                Outcome.CIRCUIT_OPEN,
                error="circuit open: the back office failed repeatedly; no request sent",
                retry_after=max(0.0, opened.opened_at + breaker.context.ttl - time.time()),
            )
        except _BreakerFailure as failure:
            result = failure.result
        self._remember(result)
        return result

    async def fetch_pricebook(self, store_code: str, *, etag: str | None = None) -> PricebookFetch:
        breaker = await self._breakers.get_breaker(CIRCUIT)
        try:
            async with breaker:
                retrying = self._retrying.copy()
                try:
                    fetched = cast(PricebookFetch, await retrying(self._get_pricebook, store_code, etag))
                except _Retryable as exhausted:
                    raise _BreakerFailure(exhausted.result) from None
                if fetched.outcome is Outcome.MISCONFIGURED:
                    raise _BreakerFailure(DeliveryResult(fetched.outcome, fetched.status_code, error=fetched.error))
        except OpenedState:
            return PricebookFetch(Outcome.CIRCUIT_OPEN, error="circuit open: the back office failed repeatedly")
        except _BreakerFailure as failure:
            result = failure.result
            return PricebookFetch(result.outcome, result.status_code, error=result.error)
        return fetched

    async def health(self) -> dict[str, Any]:
        context = (await self._breakers.get_breaker(CIRCUIT)).context
        state = context.state
        self._metrics.circuit_state.set(CIRCUIT_STATE_VALUE[state])
        retry_in = None
        if state == "opened" and context.opened_at is not None:
            retry_in = round(max(0.0, context.opened_at + context.ttl - time.time()), 3)
        return {
            "configured": True,
            "base_url": mask_url(self._base_url),
            "circuit": state,
            "consecutive_failures": context.failure_count or 0,
            "retry_in_seconds": retry_in,
            "last_success_at": self._last_success_at.isoformat() if self._last_success_at else None,
            "last_error": self._last_error,
            "last_error_at": self._last_error_at.isoformat() if self._last_error_at else None,
        }

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, message: OutboundMessage) -> DeliveryResult:
        # A copy per delivery: a tenacity controller keeps its per-call state on itself, and deliveries of
        # several stores run concurrently on the same client.
        retrying = self._retrying.copy()
        try:
            result = cast(DeliveryResult, await retrying(self._post, message))
        except _Retryable as exhausted:
            raise _BreakerFailure(exhausted.result) from None
        if result.outcome is Outcome.MISCONFIGURED:
            raise _BreakerFailure(result)
        return result

    async def _post(self, message: OutboundMessage) -> DeliveryResult:
        path = (
            "/v1/documents"
            if message.store_code is None
            else f"/v1/stores/{quote(message.store_code, safe='')}/documents"
        )
        body = {
            "id": message.idempotency_key,
            "type": message.topic,
            "sequence": message.id,
            "store": message.store_code,
            "aggregate_id": message.aggregate_id,
            "occurred_at": message.created_at.isoformat(),
            "data": dict(message.payload),
        }
        headers = {
            "Idempotency-Key": message.idempotency_key,
            "X-Request-ID": message.request_id or f"outbox-{message.id}",
        }
        try:
            response = await self._http.post(path, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise _Retryable(
                DeliveryResult(Outcome.UNAVAILABLE, error=f"no answer in time ({type(exc).__name__})")
            ) from None
        except httpx.HTTPError as exc:
            raise _Retryable(DeliveryResult(Outcome.UNAVAILABLE, error=f"{type(exc).__name__}: {exc}")) from None
        return self._interpret(response)

    async def _get_pricebook(self, store_code: str, etag: str | None) -> PricebookFetch:
        headers = {"Accept": "application/json", "X-Request-ID": f"pricebook-{uuid.uuid4().hex}"}
        if etag:
            headers["If-None-Match"] = etag
        path = f"/v1/stores/{quote(store_code, safe='')}/pricebook"
        try:
            async with self._http.stream("GET", path, headers=headers) as response:
                status = response.status_code
                if status == 304:
                    return PricebookFetch(Outcome.DELIVERED, status, not_modified=True, etag=etag)
                if status != 200:
                    await response.aread()
                    result = self._interpret(response)
                    error = result.error if not result.delivered else f"HTTP {status} without a pricebook"
                    outcome = result.outcome if not result.delivered else Outcome.FAILED
                    return PricebookFetch(outcome, status, error=error)
                body = bytearray()
                # Read in pieces and stop at the bound: a runaway answer never fills the memory.
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > self._max_pricebook_bytes:
                        error = f"the pricebook is larger than {self._max_pricebook_bytes:,} bytes"
                        return PricebookFetch(Outcome.REJECTED, status, error=error)
                return PricebookFetch(Outcome.DELIVERED, status, body=bytes(body), etag=response.headers.get("ETag"))
        except httpx.TimeoutException as exc:
            raise _Retryable(
                DeliveryResult(Outcome.UNAVAILABLE, error=f"no answer in time ({type(exc).__name__})")
            ) from None
        except httpx.HTTPError as exc:
            raise _Retryable(DeliveryResult(Outcome.UNAVAILABLE, error=f"{type(exc).__name__}: {exc}")) from None

    def _interpret(self, response: httpx.Response) -> DeliveryResult:
        status = response.status_code
        if 200 <= status < 300:
            replayed = response.headers.get("Idempotent-Replayed", "").lower() == "true"
            return DeliveryResult(Outcome.DELIVERED, status, duplicate=replayed)
        if status in _UNAVAILABLE_STATUS:
            raise _Retryable(
                DeliveryResult(
                    Outcome.UNAVAILABLE,
                    status,
                    error=f"HTTP {status}: {_body_excerpt(response)}",
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                )
            )
        if status >= 500:
            raise _Retryable(DeliveryResult(Outcome.FAILED, status, error=f"HTTP {status}: {_body_excerpt(response)}"))
        if status in (401, 403) or 300 <= status < 400:
            return DeliveryResult(
                Outcome.MISCONFIGURED, status, error=f"HTTP {status}: check CONEXXUS_API_URL and CONEXXUS_API_KEY"
            )
        return DeliveryResult(Outcome.REJECTED, status, error=f"HTTP {status}: {_body_excerpt(response)}")

    def _worth_retrying(self, exc: BaseException) -> bool:
        # A long Retry-After is left to the outbox's schedule rather than slept through here.
        if not isinstance(exc, _Retryable):
            return False
        wait = exc.result.retry_after
        return wait is None or wait <= self._max_retry_after_wait

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, _Retryable) and failure.result.retry_after is not None:
            return failure.result.retry_after
        return float(self._jitter(state))

    def _remember(self, result: DeliveryResult) -> None:
        self._metrics.deliveries.labels(result.outcome.value).inc()
        if result.delivered:
            self._last_success_at = utcnow()
        elif result.outcome not in (Outcome.REJECTED, Outcome.CIRCUIT_OPEN):
            # An open circuit repeats no news: keep the failure that opened it.
            self._last_error, self._last_error_at = result.error, utcnow()

    def _on_breaker_event(self, name: str, kind: str, event: Event) -> None:
        if isinstance(event, ContextChanged):
            self._metrics.circuit_state.set(CIRCUIT_STATE_VALUE[event.state])
            report = log.info if event.state == "closed" else log.warning
            report("backoffice circuit changed", state=event.state)
