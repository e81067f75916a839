"""The circuit breaker in front of Redis, on purgatory's state machine, plus the bookkeeping the metrics need.

purgatory opens after `threshold` consecutive failures and lets one request through again ("half-open")
once its TTL has passed. The service never sends a caller's request through while the breaker is not
closed: callers go straight to memory, and only the background probe enters the breaker when it is open.
So no caller waits on a Redis that is known to be down, and recovery is decided by the probe alone.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

from purgatory import AsyncCircuitBreakerFactory, ContextChanged, Event
from purgatory.domain.model import HalfOpenedState, OpenedState
from purgatory.service._async.circuitbreaker import AsyncCircuitBreaker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Failures that say "Redis is not there", as opposed to a bad command. OSError covers refused connections
# and the builtin TimeoutError; ConnectionError includes Sentinel's MasterNotFoundError, AuthenticationError
# and BusyLoadingError. ReadOnlyError: a standalone client pointed at a demoted master.
UNREACHABLE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)

__all__ = ["UNREACHABLE", "Breaker", "BreakerOpen", "BreakerState"]

BreakerOpen = OpenedState  # what purgatory raises on entry while open


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


_FROM_PURGATORY = {"closed": BreakerState.CLOSED, "opened": BreakerState.OPEN, "half-opened": BreakerState.HALF_OPEN}


def _not_an_outage(exc: BaseException) -> bool:
    # A cancelled request (client went away) or a bad command must not count towards opening the breaker.
    return not isinstance(exc, UNREACHABLE)


class Breaker:
    def __init__(
        self,
        *,
        threshold: int,
        probe_interval: float,
        on_open: Callable[[], None],
        on_close: Callable[[], None],
    ) -> None:
        # The TTL only gates the probe (callers never enter while open); half the probe interval means
        # every probe after the first sleep finds it elapsed.
        self._ttl = probe_interval / 2
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=threshold,
            default_ttl=self._ttl,
            exclude=[(BaseException, _not_an_outage)],
        )
        self._factory.add_listener(self._on_event)
        self._guard: AsyncCircuitBreaker | None = None
        self._opened_monotonic = 0.0
        self._state = BreakerState.CLOSED
        self._on_open = on_open
        self._on_close = on_close
        self.openings = 0
        self._fallback_total = 0.0
        self._fallback_since: float | None = None

    async def guard(self) -> AsyncCircuitBreaker:
        if self._guard is None:
            self._guard = await self._factory.get_breaker("redis")
        return self._guard

    async def probe_guard(self) -> AsyncCircuitBreaker:
        """The guard for the probe, moved to half-open once the TTL has passed on the monotonic clock.

        purgatory times the open state with the wall clock: a clock stepped back (NTP, a resumed VM) would hold
        the breaker open for as long as the step, and the register on memory with it.
        """
        guard = await self.guard()
        if self.state is BreakerState.OPEN and time.monotonic() - self._opened_monotonic >= self._ttl:
            guard.context.set_state(HalfOpenedState())
        return guard

    @property
    def state(self) -> BreakerState:
        if self._guard is None:
            return BreakerState.CLOSED
        return _FROM_PURGATORY[self._guard.context.state]

    @property
    def fallback_seconds(self) -> float:
        """Cumulative seconds spent with the breaker not closed, including the current outage."""
        current = 0.0 if self._fallback_since is None else time.monotonic() - self._fallback_since
        return self._fallback_total + current

    def _on_event(self, name: str, kind: str, event: Event) -> None:
        if kind != "state_changed" or not isinstance(event, ContextChanged):
            return
        new = _FROM_PURGATORY[event.state]
        old, self._state = self._state, new
        if new is BreakerState.OPEN:
            self._opened_monotonic = time.monotonic()
        if old is BreakerState.CLOSED and new is not BreakerState.CLOSED:
            # Counted once per outage: a failed probe (half-open -> open) is the same outage.
            self.openings += 1
            self._fallback_since = time.monotonic()
            self._on_open()
        elif new is BreakerState.CLOSED and old is not BreakerState.CLOSED:
            if self._fallback_since is not None:
                self._fallback_total += time.monotonic() - self._fallback_since
            self._fallback_since = None
            self._on_close()
