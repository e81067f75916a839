"""One cache service for the app: Redis when configured and answering, the in-memory store otherwise."""

from __future__ import annotations

from typing import Any, Literal, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from posomni.cache.memory import MemoryStore
from posomni.config import Settings
from posomni.logging import get_logger

log = get_logger(__name__)

# Short timeouts: a register must never wait seconds on a slow cache.
SOCKET_TIMEOUT_S = 0.5


class CacheService:
    def __init__(self, client: aioredis.Redis | None, namespace: str = "posomni") -> None:
        self._client = client
        self._memory = MemoryStore()
        self._namespace = namespace
        self.errors = 0
        self.hits = 0
        self.misses = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> CacheService:
        if settings.redis_host is None:
            return cls(None)
        password = settings.redis_password.get_secret_value() if settings.redis_password else None
        client = aioredis.Redis(
            host=settings.redis_host,
            port=settings.redis_port,
            db=settings.redis_db,
            password=password,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            decode_responses=True,
        )
        return cls(client)

    @property
    def mode(self) -> Literal["redis", "memory"]:
        return "memory" if self._client is None else "redis"

    def _key(self, key: str) -> str:
        return f"{self._namespace}:{key}"

    async def get(self, key: str) -> str | None:
        value: str | None
        if self._client is None:
            value = self._memory.get(self._key(key))
        else:
            try:
                value = cast(str | None, await self._client.get(self._key(key)))
            except (RedisError, OSError) as exc:
                self._failed("get", exc)
                value = self._memory.get(self._key(key))
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        if self._client is None:
            self._memory.set(self._key(key), value, ttl_seconds)
            return
        try:
            await self._client.set(self._key(key), value, px=int(ttl_seconds * 1000) if ttl_seconds else None)
        except (RedisError, OSError) as exc:
            self._failed("set", exc)
            self._memory.set(self._key(key), value, ttl_seconds)

    async def delete(self, *keys: str) -> None:
        names = [self._key(k) for k in keys]
        self._memory.delete(*names)
        if self._client is None:
            return
        try:
            await self._client.delete(*names)
        except (RedisError, OSError) as exc:
            self._failed("delete", exc)

    async def ping(self) -> dict[str, Any]:
        if self._client is None:
            return {
                "status": "degraded",
                "mode": "memory",
                "detail": "Redis not configured: in-memory fallback",
            }
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            self._failed("ping", exc)
            return {
                "status": "degraded",
                "mode": "memory",
                "detail": f"Redis unreachable: {type(exc).__name__}",
            }
        return {
            "status": "ok",
            "mode": "redis",
            "hits": self.hits,
            "misses": self.misses,
            "errors": self.errors,
        }

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.errors += 1
        log.warning("redis_error", operation=operation, error=type(exc).__name__)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
