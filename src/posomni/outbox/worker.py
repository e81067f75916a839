"""The outbox worker: delivers pending messages to the back office, at least once and in order per store.

Order. A store's messages are delivered strictly by id, one at a time: only a store's head (its oldest
pending message) is ever claimed. A head that keeps failing therefore holds back that store's later
messages — the back office never sees a return before its sale — while other stores go on. A dead (parked)
message is no longer pending, so it stops blocking: the store's later messages continue, the dead one is
reported by `posomni outbox status` and can be sent again with `posomni outbox retry`. Parking is for
messages the back office cannot take (a 4xx, or `max_attempts` 5xx answers); outages never park anything.
Ids are assigned at insert, so two transactions of one store that overlap may commit out of id order; the
back office then sees them in commit order, which is just as valid for changes that were concurrent.

Claiming. No database transaction is ever open during an HTTP call. A round:

1. claim (a short transaction): lease the due head of up to `batch_size` stores by writing
   `next_attempt_at = now + lease` (on PostgreSQL the heads are locked FOR UPDATE SKIP LOCKED meanwhile);
2. then each store's lane runs concurrently with the others: deliver the leased message (bounded by a
   timeout shorter than the lease), then in one short transaction record the result and, when it was
   delivered, lease the store's next head; repeat, up to `messages_per_store` messages.

Recording only applies while `next_attempt_at` still holds this worker's lease value (a fencing token). A
leased head is not due, so no other worker can take it, nor the messages behind it. If the worker dies
mid-delivery, the lease simply expires and any worker sends the message again with the same idempotency
key: nothing is lost, and the receiver drops the repeat. This needs no extra columns. Several workers are
safe on PostgreSQL and share the stores between them. On SQLite every transaction begins with BEGIN
IMMEDIATE, which serialises claims: run a single worker there (more are safe but gain nothing).
Leases are compared with each worker's own clock: keep the hosts' clocks in sync (NTP).

Failures. REJECTED parks the message at once. FAILED (5xx for this message) counts an attempt and waits
`backoff_base * 2**(attempts-1)` seconds (capped at `backoff_max`, with jitter); at `max_attempts` the message
is parked. UNAVAILABLE, MISCONFIGURED and CIRCUIT_OPEN do not count: the message is not at fault, and
parking during an outage would break the order; they wait with a backoff that grows while the outage lasts
(capped at `outage_backoff_max`), or as long as Retry-After or the open breaker says.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from posomni.backoffice.client import BackOfficeClient
from posomni.backoffice.schemas import NOT_THE_MESSAGES_FAULT, DeliveryResult, OutboundMessage, Outcome
from posomni.database import Database
from posomni.kit.time import utcnow
from posomni.logging import get_logger
from posomni.outbox import repository, service
from posomni.outbox.metrics import outbox_metrics
from posomni.outbox.repository import Claim

log = get_logger(__name__)

_ERROR_MAX_CHARS = 1000


def backoff_delay(attempt: int, *, base: float, cap: float) -> float:
    """Exponential backoff with "equal jitter": between half and all of base·2^(attempt-1), capped. Half is
    kept so that a failing message is never retried immediately."""
    # The exponent is bounded: an outage can last thousands of rounds and 2.0**1100 overflows.
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 60))
    jitter = random.uniform(0, ceiling / 2)  # noqa: S311 (spreading retries, not a secret)
    return ceiling / 2 + jitter


class OutboxWorker:
    def __init__(
        self,
        database: Database,
        client: BackOfficeClient,
        *,
        batch_size: int = 50,
        messages_per_store: int = 10,
        poll_interval: float = 1.0,
        max_attempts: int = 10,
        lease_seconds: float = 60.0,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
        outage_backoff_max: float = 30.0,
        gauges_interval: float = 15.0,
        name: str | None = None,
    ) -> None:
        if min(batch_size, messages_per_store, max_attempts) < 1 or lease_seconds <= 0 or poll_interval <= 0:
            raise ValueError("batch_size, messages_per_store, max_attempts ≥ 1; lease and poll interval > 0")
        self._database = database
        self._client = client
        self._batch_size = batch_size
        self._messages_per_store = messages_per_store
        self._poll_interval = poll_interval
        self._max_attempts = max_attempts
        self._lease = timedelta(seconds=lease_seconds)
        # The delivery must end well before the lease does, or a second worker could send the same message
        # while this one still waits for its answer.
        self._delivery_timeout = lease_seconds * 0.75
        self._skip_locked = database.kind == "postgresql"
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._outage_backoff_max = outage_backoff_max
        self._gauges_interval = gauges_interval
        self._gauges_due = 0.0
        self._outage_rounds = 0
        self._claimed_last_round = 0
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._metrics = outbox_metrics()

    async def run_once(self) -> int:
        """One round: claim the due head of up to `batch_size` stores, then work each store's lane
        concurrently — deliver its head, record the result and claim its next message in one short
        transaction — for up to `messages_per_store` messages. Returns how many messages were delivered."""
        self._claimed_last_round = 0
        if not self._client.configured:
            return 0
        now = utcnow()
        async with self._database.unit_of_work() as session:
            claims = await repository.claim_heads(
                session, now=now, lease_until=now + self._lease, limit=self._batch_size, skip_locked=self._skip_locked
            )
        self._claimed_last_round = len(claims)
        if not claims:
            return 0
        # Lanes run side by side, so a slow store delays the others only once their lanes are done for this
        # round. Every lane is awaited before an error is raised: none may outlive the round unobserved.
        outcomes = await asyncio.gather(*(self._work_lane(claim) for claim in claims), return_exceptions=True)
        lanes = [o for o in outcomes if not isinstance(o, BaseException)]
        if any(delivered for delivered, _ in lanes):
            self._outage_rounds = 0
        elif any(outage for _, outage in lanes):
            self._outage_rounds += 1
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return sum(delivered for delivered, _ in lanes)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; rounds follow each other without pause while there is work."""
        log.info("outbox worker started", worker=self.name)
        while not stop.is_set():
            try:
                await self.run_once()
                await self._refresh_gauges()
            except (SQLAlchemyError, OSError) as exc:
                # The database may be restarting: keep the worker alive and try again after the poll interval.
                log.warning("outbox round failed", worker=self.name, error=f"{type(exc).__name__}: {exc}"[:300])
                self._claimed_last_round = 0
            if self._claimed_last_round:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await stop.wait()
        log.info("outbox worker stopped", worker=self.name)

    async def _work_lane(self, claim: Claim) -> tuple[int, bool]:
        """Deliver a store's messages one after the other; returns (delivered, saw an outage)."""
        delivered, outage = 0, False
        current: Claim | None = claim
        for remaining in range(self._messages_per_store - 1, -1, -1):
            if current is None:
                break
            result = await self._deliver(current)
            outage = outage or result.outcome in NOT_THE_MESSAGES_FAULT
            now = utcnow()
            async with self._database.unit_of_work() as session:
                values = self._result_values(current, result, now)
                recorded = await repository.finish(session, current, **values)
                following = None
                if recorded and result.delivered and remaining:
                    following = await repository.claim_store_head(
                        session, current, now=now, lease_until=now + self._lease, skip_locked=self._skip_locked
                    )
            # Counted once the transaction has committed, so the metrics never run ahead of the table.
            if recorded:
                self._count(current, result, values["status"])
                delivered += result.delivered
            else:
                # Its lease expired and another worker took the message over (or an operator reset it): that
                # worker records the outcome. At worst the back office saw the message twice.
                log.warning("outbox lease lost; result dropped", worker=self.name, message_id=current.message.id)
            current = following
        return delivered, outage

    async def _deliver(self, claim: Claim) -> DeliveryResult:
        m = claim.message
        message = OutboundMessage(
            id=m.id,
            store_id=m.store_id,
            store_code=claim.store_code,
            topic=m.topic,
            aggregate_id=m.aggregate_id,
            idempotency_key=m.idempotency_key,
            request_id=m.request_id,
            payload=m.payload,
            created_at=m.created_at,
        )
        try:
            async with asyncio.timeout(self._delivery_timeout):
                return await self._client.deliver(message)
        except TimeoutError:
            return DeliveryResult(Outcome.UNAVAILABLE, error=f"no answer within {self._delivery_timeout:g}s")
        except Exception as exc:
            # A defect in an adapter must not stop the other stores' deliveries; it counts as an attempt.
            log.exception("backoffice client raised", message_id=m.id)
            return DeliveryResult(Outcome.FAILED, error=f"{type(exc).__name__}: {exc}")

    def _result_values(self, claim: Claim, result: DeliveryResult, now: datetime) -> dict[str, Any]:
        m = claim.message
        if result.delivered:
            return {"status": repository.DELIVERED, "delivered_at": now, "next_attempt_at": now, "last_error": None}
        error = f"{result.outcome.value}: {result.error or ''}"[:_ERROR_MAX_CHARS]
        if result.outcome in NOT_THE_MESSAGES_FAULT:
            delay = backoff_delay(self._outage_rounds + 1, base=self._backoff_base, cap=self._outage_backoff_max)
            return {
                "status": repository.PENDING,
                "next_attempt_at": now + timedelta(seconds=self._honour(delay, result)),
                "last_error": error,
            }
        attempts = m.attempts + 1
        if result.outcome is Outcome.REJECTED or attempts >= self._max_attempts:
            log.error("outbox message parked", message_id=m.id, topic=m.topic, attempts=attempts, error=error)
            return {"status": repository.DEAD, "attempts": attempts, "next_attempt_at": now, "last_error": error}
        delay = backoff_delay(attempts, base=self._backoff_base, cap=self._backoff_max)
        return {
            "status": repository.PENDING,
            "attempts": attempts,
            "next_attempt_at": now + timedelta(seconds=self._honour(delay, result)),
            "last_error": error,
        }

    def _honour(self, delay: float, result: DeliveryResult) -> float:
        # Retry-After (or the breaker's remaining open time) is a floor, capped so that a hostile or absurd
        # value cannot stall a store for days.
        if result.retry_after is None:
            return delay
        return max(delay, min(result.retry_after, self._backoff_max))

    def _count(self, claim: Claim, result: DeliveryResult, status: str) -> None:
        if result.delivered:
            self._metrics.delivered.labels(claim.message.topic).inc()
            return
        self._metrics.failures.labels(result.outcome.value).inc()
        if status == repository.DEAD:
            self._metrics.failures.labels("dead").inc()

    async def _refresh_gauges(self) -> None:
        if time.monotonic() < self._gauges_due:
            return
        self._gauges_due = time.monotonic() + self._gauges_interval
        async with self._database.sessionmaker() as session:
            await service.status(session, dead_limit=0, include_delivered=False)
