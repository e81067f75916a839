"""Rate limits over the `limits` package: counted in Redis while the cache's breaker is closed, in memory while
it is open (or without Redis), so a Redis outage never stops sign-ins from being limited.

Moving windows by default: "5/minute" means at most 5 in any 60 seconds, with no double burst at a window
edge, which is what sign-in and PIN attempts need. On memory the counts are per process (see memory.py), and
counts made there are not carried into Redis when it returns.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.aio.strategies import (
    RateLimiter as Strategy,
)
from limits.util import WindowStats
from redis.asyncio import Redis

from posomni.cache.service import CacheService, Unavailable

T = TypeVar("T")

StrategyName = Literal["moving-window", "fixed-window", "sliding-window-counter"]
_STRATEGIES: Final[dict[str, type[Strategy]]] = {
    "moving-window": MovingWindowRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
}
# A refused caller is always told to wait a little, even when clocks or TTL rounding say "now".
_MIN_RETRY_AFTER_S: Final = 0.001


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    remaining: int
    reset_at: float  # Unix time, in seconds, when the window next frees a unit
    retry_after_seconds: float  # 0 when allowed, above 0 when refused


@functools.lru_cache(maxsize=256)
def _parse(limit: str) -> RateLimitItem:
    return parse(limit)


def _result(allowed: bool, stats: WindowStats) -> RateLimitResult:
    wait = 0.0 if allowed else max(stats.reset_time - time.time(), _MIN_RETRY_AFTER_S)
    return RateLimitResult(allowed, max(stats.remaining, 0), stats.reset_time, wait)


class RateLimiter:
    def __init__(self, cache: CacheService, *, strategy: StrategyName = "moving-window") -> None:
        self._cache = cache
        kind = _STRATEGIES[strategy]
        self._memory_storage = MemoryStorage()
        self._memory = kind(self._memory_storage)
        self._redis: Strategy | None = None
        client = cache.client
        if client is not None:
            # The cache's own connection pool: one set of sockets, the same timeouts, and with Sentinel the
            # same failover-following pool. The URI is unused when a pool is given.
            options: dict[str, Any] = {"connection_pool": client.connection_pool}
            storage = RedisStorage(
                "async+redis://", implementation="redispy", key_prefix=f"{cache.namespace}:limits", **options
            )
            self._redis = kind(storage)

    async def hit(self, limit: str | RateLimitItem, *identifiers: str, cost: int = 1) -> RateLimitResult:
        """Consume `cost` units if the limit allows it; a refused hit consumes nothing."""
        item = _parse(limit) if isinstance(limit, str) else limit

        async def consume(strategy: Strategy) -> RateLimitResult:
            allowed = await strategy.hit(item, *identifiers, cost=cost)
            return _result(allowed, await strategy.get_window_stats(item, *identifiers))

        return await self._run("ratelimit_hit", consume)

    async def admit(self, limit: str | RateLimitItem, *identifiers: str, cost: int = 1) -> float:
        """`hit` for a check made on every request: 0.0 when allowed, else the seconds to wait. The window's
        statistics are read only for a refusal, so an allowed hit is one round trip to Redis instead of two."""
        item = _parse(limit) if isinstance(limit, str) else limit

        async def consume(strategy: Strategy) -> float:
            if await strategy.hit(item, *identifiers, cost=cost):
                return 0.0
            return _result(False, await strategy.get_window_stats(item, *identifiers)).retry_after_seconds

        return await self._run("ratelimit_hit", consume)

    async def test(self, limit: str | RateLimitItem, *identifiers: str, cost: int = 1) -> RateLimitResult:
        """Whether `cost` more units would be allowed, consuming nothing."""
        item = _parse(limit) if isinstance(limit, str) else limit

        async def check(strategy: Strategy) -> RateLimitResult:
            allowed = await strategy.test(item, *identifiers, cost=cost)
            return _result(allowed, await strategy.get_window_stats(item, *identifiers))

        return await self._run("ratelimit_test", check)

    async def clear(self, limit: str | RateLimitItem, *identifiers: str) -> None:
        item = _parse(limit) if isinstance(limit, str) else limit
        await self._memory.clear(item, *identifiers)
        if self._redis is not None:
            redis_strategy = self._redis

            async def reset(_: Redis) -> None:
                await redis_strategy.clear(item, *identifiers)

            await self._cache.attempt("ratelimit_clear", reset)

    async def close(self) -> None:
        # The memory storage expires entries from a short-lived task; do not leave one pending at shutdown.
        timer = self._memory_storage.timer
        if timer is not None and not timer.done():
            timer.cancel()

    async def _run(self, operation: str, call: Callable[[Strategy], Awaitable[T]]) -> T:
        if self._redis is not None:
            redis_strategy = self._redis

            async def on_redis(_: Redis) -> T:
                return await call(redis_strategy)

            result = await self._cache.attempt(operation, on_redis)
            if not isinstance(result, Unavailable):
                return result
        return await call(self._memory)
