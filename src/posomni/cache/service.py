"""The app's one Redis service: standalone or Sentinel, behind a circuit breaker, with an in-memory fallback.

While the breaker is closed every operation goes to Redis. Connection failures are counted; after
`failure_threshold` in a row the breaker opens and every call is served from memory (memory.py says what
that means with several processes) without touching the network. A background task probes Redis every
`probe_interval` seconds while the breaker is open, closes it when Redis answers, and with Sentinel watches
the master's address to count failovers. The app calls `start()` after creating the service and `close()` at
shutdown; the task also starts on first use, so a missing `start()` costs only the early failover watch.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, Final, Literal, TypeVar, cast

from prometheus_client.registry import REGISTRY, CollectorRegistry
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from posomni.cache.breaker import UNREACHABLE, Breaker, BreakerOpen, BreakerState
from posomni.cache.memory import MemoryStore
from posomni.cache.metrics import CacheStats, expose
from posomni.config import Settings
from posomni.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")

# A register must never wait on a slow cache: a read that takes longer than this is a failure.
SOCKET_TIMEOUT_S: Final = 0.5
CONNECT_TIMEOUT_S: Final = 0.25
# Sentinels are asked one after the other when a connection opens: keep each question short.
SENTINEL_TIMEOUT_S: Final = 0.25
FAILURE_THRESHOLD: Final = 3
PROBE_INTERVAL_S: Final = 0.5
# Keys changed while Redis was away, to delete from Redis before serving from it again.
MAX_STALE_KEYS: Final = 10_000
_FLUSH_BATCH: Final = 500

# INCR, and a TTL set only when the counter is created (PEXPIRE ... NX needs Redis 7; this works on 6).
_INCR_SCRIPT: Final = """
local value = redis.call('INCR', KEYS[1])
if value == 1 and tonumber(ARGV[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return value
"""


class Unavailable:
    """What `CacheService.attempt` returns when the caller must use its fallback (the one instance below)."""

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE: Final = Unavailable()


def _one_quick_retry() -> Retry:
    # redis-py retries 10 times with backoff by default: seconds of waiting on a dead server. One immediate
    # retry on connection errors only replaces a pooled connection that died with a restarted server without
    # counting a failure; a timeout is never retried, so a frozen server costs a caller one timeout at most.
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def _milliseconds(ttl_seconds: float | None) -> int | None:
    if ttl_seconds is None:
        return None
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    return max(1, round(ttl_seconds * 1000))


class CacheService:
    # A client passed in directly should have short timeouts and no retry backoff, as from_settings builds it.
    def __init__(
        self,
        client: Redis | None,
        namespace: str = "posomni",
        *,
        sentinel: Sentinel | None = None,
        master_name: str | None = None,
        failure_threshold: int = FAILURE_THRESHOLD,
        probe_interval: float = PROBE_INTERVAL_S,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self._client = client
        self._sentinel = sentinel
        self._master_name = master_name
        self._memory = MemoryStore()
        self._namespace = namespace
        self._probe_interval = probe_interval
        self._breaker = Breaker(
            threshold=failure_threshold,
            probe_interval=probe_interval,
            on_open=self._on_breaker_open,
            on_close=self._on_breaker_close,
        )
        self._incr_script: AsyncScript | None = None if client is None else client.register_script(_INCR_SCRIPT)
        # Insertion-ordered set of namespaced keys whose Redis copy may be outdated.
        self._stale: dict[str, None] = {}
        self._stale_overflowed = False
        self._watch_task: asyncio.Task[None] | None = None
        self._closed = False
        self._master: str | None = None
        if client is not None and sentinel is None:
            kwargs = client.connection_pool.connection_kwargs
            self._master = f"{kwargs.get('host')}:{kwargs.get('port')}"
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self.failovers = 0
        if registry is not None:
            expose(self, registry)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        namespace: str = "posomni",
        registry: CollectorRegistry | None = REGISTRY,
        failure_threshold: int = FAILURE_THRESHOLD,
        probe_interval: float = PROBE_INTERVAL_S,
    ) -> CacheService:
        options: dict[str, Any] = {
            "failure_threshold": failure_threshold,
            "probe_interval": probe_interval,
            "registry": registry,
        }
        if not settings.redis_configured:
            return cls(None, namespace, **options)
        password = settings.redis_password.get_secret_value() if settings.redis_password else None
        connection: dict[str, Any] = {
            "db": settings.redis_db,
            "password": password,
            "socket_timeout": SOCKET_TIMEOUT_S,
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "retry": _one_quick_retry(),
            "decode_responses": True,
        }
        if settings.redis_sentinel_enabled:
            master_name = settings.redis_sentinel_master_name
            if master_name is None:  # config.check() refuses this; kept for type narrowing
                raise ValueError("REDIS_SENTINEL_MASTER_NAME is required with Sentinel")
            # REDIS_PASSWORD is the data nodes' password; the sentinels are reached without one.
            sentinel = Sentinel(  # type: ignore[no-untyped-call]
                [(s.host, s.port) for s in settings.redis_sentinels],
                sentinel_kwargs={
                    "socket_timeout": SENTINEL_TIMEOUT_S,
                    "socket_connect_timeout": SENTINEL_TIMEOUT_S,
                    "retry": Retry(NoBackoff(), 0),
                },
            )
            # master_for re-asks the sentinels whenever it opens a connection, so after a failover new
            # connections (including the one retried after the old master's socket died) reach the new master.
            client = cast(Redis, sentinel.master_for(master_name, **connection))
            return cls(client, namespace, sentinel=sentinel, master_name=master_name, **options)
        client = Redis(host=settings.redis_host or "127.0.0.1", port=settings.redis_port, **connection)
        return cls(client, namespace, **options)

    # --- state -------------------------------------------------------------------------------------------

    @property
    def mode(self) -> Literal["redis", "memory"]:
        if self._client is None or self._closed or self._breaker.state is not BreakerState.CLOSED:
            return "memory"
        return "redis"

    @property
    def topology(self) -> Literal["standalone", "sentinel", "none"]:
        if self._client is None:
            return "none"
        return "sentinel" if self._sentinel is not None else "standalone"

    @property
    def breaker_state(self) -> BreakerState | None:
        """None when Redis is not configured (there is nothing to break)."""
        return None if self._client is None else self._breaker.state

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def client(self) -> Redis | None:
        """The Redis client, for adapters sharing its connections; call it only inside `attempt()`."""
        return self._client

    def snapshot(self) -> CacheStats:
        state = self.breaker_state
        return CacheStats(
            mode=self.mode,
            topology=self.topology,
            breaker="disabled" if state is None else state.value,
            master=self._master,
            hits=self.hits,
            misses=self.misses,
            errors=self.errors,
            breaker_openings=self._breaker.openings,
            failovers=self.failovers,
            fallback_seconds=round(self._breaker.fallback_seconds, 3),
            fallback_active=self.mode == "memory",
        )

    async def ping(self) -> dict[str, Any]:
        if self._client is None:
            detail = "Redis not configured: in-memory fallback"
            return {"status": "degraded", **asdict(self.snapshot()), "detail": detail}

        async def pong(client: Redis) -> bool:
            return bool(await client.ping())

        result = await self.attempt("ping", pong)
        stats = self.snapshot()
        if isinstance(result, Unavailable):
            detail = f"Redis unreachable (breaker {stats.breaker}): in-memory fallback"
            return {"status": "degraded", **asdict(stats), "detail": detail}
        return {"status": "ok", **asdict(stats)}

    # --- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._ensure_watching()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        task, self._watch_task = self._watch_task, None
        if task is not None:
            task.cancel()
            # wait() rather than `await task`: it never re-raises the task's CancelledError into close().
            await asyncio.wait({task})
        if self._client is not None:
            await self._client.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()

    # --- the one gate to Redis ---------------------------------------------------------------------------

    async def attempt(self, operation: str, call: Callable[[Redis], Awaitable[T]]) -> T | Unavailable:
        """Run `call` on Redis through the breaker; UNAVAILABLE means "use your fallback".

        Connection failures and timeouts are counted and answered with UNAVAILABLE; any other Redis error
        (a bad command, a key of the wrong type) is a bug and is raised.
        """
        if self._client is None or self._closed:
            return UNAVAILABLE
        self._ensure_watching()
        guard = await self._breaker.guard()
        if self._breaker.state is not BreakerState.CLOSED:
            return UNAVAILABLE
        try:
            async with guard:
                return await call(self._client)
        except BreakerOpen:
            return UNAVAILABLE
        except UNREACHABLE as exc:
            self._failed(operation, exc)
            return UNAVAILABLE
        except RedisError as exc:
            self._failed(operation, exc)
            raise

    # --- operations ----------------------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return f"{self._namespace}:{key}"

    async def get(self, key: str) -> str | None:
        name = self._key(key)

        async def read(client: Redis) -> str | None:
            return cast("str | None", await client.get(name))

        result = UNAVAILABLE if name in self._stale else await self.attempt("get", read)
        value = self._memory.get(name) if isinstance(result, Unavailable) else result
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    async def get_many(self, *keys: str) -> list[str | None]:
        """`get` of several keys in one round trip (MGET), in the order asked."""
        names = [self._key(key) for key in keys]
        asked = [name for name in names if name not in self._stale]

        async def read(client: Redis) -> list[str | None]:
            return cast("list[str | None]", await client.mget(asked))

        result = await self.attempt("get", read) if asked else UNAVAILABLE
        answered = {} if isinstance(result, Unavailable) else dict(zip(asked, result, strict=True))
        values = [answered[name] if name in answered else self._memory.get(name) for name in names]
        found = sum(value is not None for value in values)
        self.hits += found
        self.misses += len(values) - found
        return values

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> bool:
        """True when Redis stored it; False when only this process's memory did (Redis was unavailable)."""
        name, px = self._key(key), _milliseconds(ttl_seconds)

        async def write(client: Redis) -> None:
            await client.set(name, value, px=px)

        if isinstance(await self.attempt("set", write), Unavailable):
            self._memory.set(name, value, ttl_seconds)
            self._mark_stale(name)
            return False
        self._fresh(name)
        return True

    async def set_if_absent(self, key: str, value: str, ttl_seconds: float | None = None) -> bool:
        """SET NX: True when this call stored the value. Per process while on the fallback."""
        name, px = self._key(key), _milliseconds(ttl_seconds)

        async def write(client: Redis) -> bool:
            return bool(await client.set(name, value, nx=True, px=px))

        result = UNAVAILABLE if name in self._stale else await self.attempt("set_if_absent", write)
        if isinstance(result, Unavailable):
            stored = self._memory.set_if_absent(name, value, ttl_seconds)
            self._mark_stale(name)
            return stored
        return result

    async def delete(self, *keys: str) -> int:
        """Delete from Redis and from this process's memory; returns how many keys existed."""
        names = [self._key(k) for k in keys]
        if not names:
            return 0
        local = self._memory.delete(*names)

        async def remove(client: Redis) -> int:
            return int(await client.delete(*names))

        result = await self.attempt("delete", remove)
        if isinstance(result, Unavailable):
            self._mark_stale(*names)
            return local
        self._fresh(*names)
        return result

    async def exists(self, key: str) -> bool:
        name = self._key(key)

        async def check(client: Redis) -> bool:
            return int(await client.exists(name)) > 0

        result = UNAVAILABLE if name in self._stale else await self.attempt("exists", check)
        return self._memory.exists(name) if isinstance(result, Unavailable) else result

    async def incr(self, key: str, ttl_seconds: float | None = None) -> int:
        """Add one; the TTL is set when the counter is created. Per process while on the fallback."""
        name, px = self._key(key), _milliseconds(ttl_seconds)
        script = self._incr_script

        async def increment(client: Redis) -> int:
            assert script is not None  # registered whenever there is a client
            return int(await script(keys=[name], args=[px or 0], client=client))

        result = UNAVAILABLE if name in self._stale else await self.attempt("incr", increment)
        return self._memory.incr(name, ttl_seconds) if isinstance(result, Unavailable) else result

    # --- fallback bookkeeping --------------------------------------------------------------------------------

    def _mark_stale(self, *names: str) -> None:
        for name in names:
            if name not in self._stale and len(self._stale) >= MAX_STALE_KEYS:
                if not self._stale_overflowed:
                    # Beyond this the oldest changes are forgotten; their Redis copies live until their TTL.
                    log.warning("redis_stale_keys_overflow", kept=MAX_STALE_KEYS)
                    self._stale_overflowed = True
                self._stale.pop(next(iter(self._stale)))
            self._stale[name] = None

    def _fresh(self, *names: str) -> None:
        # Redis now holds the current value: stop serving this key's outage copy from memory.
        for name in names:
            if name in self._stale:
                del self._stale[name]
                self._memory.delete(name)

    async def _flush_stale(self, client: Redis) -> None:
        # Batches are removed from the set only after Redis confirmed the delete; a key re-marked meanwhile
        # is absent from Redis afterwards anyway, so a read finds nothing rather than an old value.
        while self._stale:
            batch = list(itertools.islice(self._stale, _FLUSH_BATCH))
            await client.delete(*batch)
            for name in batch:
                self._stale.pop(name, None)
        self._stale_overflowed = False

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.errors += 1
        log.warning("redis_error", operation=operation, error=type(exc).__name__, detail=str(exc)[:200])

    def _on_breaker_open(self) -> None:
        log.warning("redis_breaker_open", fallback="memory", errors=self.errors)
        self._ensure_watching()

    def _on_breaker_close(self) -> None:
        # What was written to memory during the outage is not in Redis; drop it so a later outage never
        # serves it (the keys that matter were deleted from Redis by the probe before the breaker closed).
        self._memory.clear()
        log.info("redis_breaker_closed", fallback_seconds=round(self._breaker.fallback_seconds, 3))

    # --- background watch ------------------------------------------------------------------------------------

    def _ensure_watching(self) -> None:
        if self._watch_task is None and self._client is not None and not self._closed:
            self._watch_task = asyncio.get_running_loop().create_task(self._watch(), name="posomni-redis-watch")

    async def _watch(self) -> None:
        while True:
            try:
                await self._tick()
            except Exception as exc:
                # The watcher is the only way back to Redis after an outage: it must survive any surprise.
                log.warning("redis_watch_error", error=repr(exc)[:200])
            await asyncio.sleep(self._probe_interval)

    async def _tick(self) -> None:
        if self._breaker.state is not BreakerState.CLOSED:
            await self._probe()
        elif self._stale:
            await self.attempt("invalidate", self._flush_stale)
        if self._sentinel is not None:
            await self._watch_master()

    async def _probe(self) -> None:
        client = self._client
        if client is None:
            return
        guard = await self._breaker.probe_guard()
        try:
            async with guard:
                try:
                    await client.ping()
                    await self._flush_stale(client)
                except RedisError as exc:
                    # Any error while probing keeps the breaker open, even one that is not an outage.
                    raise RedisConnectionError(f"probe failed: {exc}") from exc
        except BreakerOpen:
            return
        except UNREACHABLE as exc:
            log.debug("redis_probe_failed", error=type(exc).__name__)

    async def _watch_master(self) -> None:
        if self._sentinel is None or self._master_name is None:
            return
        try:
            host, port = await self._sentinel.discover_master(self._master_name)
        except (RedisError, OSError) as exc:
            # During a failover no sentinel names a master for a moment; nothing to record yet.
            log.debug("redis_master_unknown", error=type(exc).__name__)
            return
        address = f"{host}:{port}"
        if self._master is not None and address != self._master:
            self.failovers += 1
            log.warning("redis_failover", old_master=self._master, new_master=address)
        self._master = address
