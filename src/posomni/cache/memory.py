"""The in-memory fallback store, used when Redis is not configured or the circuit breaker is open.

It lives inside one app process. With several processes (uvicorn workers, several registers' servers) each
has its own copy, which changes what the app can rely on while it is in use:

- Revocations (sign-outs, disabled users, rotated PINs) stay in force: the database is their record, and a
  cache only ever saves a lookup, so a miss here costs a query and never lets a revoked token through.
- Rate limits become per process: with N processes a client gets up to N times the limit. Acceptable for an
  outage; the limits are shared again as soon as Redis answers.
- Cached lookups (products, prices) must be invalidated locally too: a delete reaches only this process's
  copy while Redis is away. The service remembers such keys and deletes them from Redis before it serves
  from Redis again, and it empties this store on recovery so a later outage never serves copies from an
  earlier one. Another process's local copy is not reached, so values here need a short TTL.
- Counters and "set if absent" markers are per process: two processes can both win the same marker.
"""

from __future__ import annotations

import time


class MemoryStore:
    def __init__(self, max_keys: int = 100_000) -> None:
        # value, and the monotonic deadline after which it is gone (None: no expiry)
        self._data: dict[str, tuple[str, float | None]] = {}
        self._max_keys = max_keys

    def _alive(self, key: str) -> tuple[str, float | None] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item

    def get(self, key: str) -> str | None:
        item = self._alive(key)
        return None if item is None else item[0]

    def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        if len(self._data) >= self._max_keys and key not in self._data:
            self._evict()
        expires = None if ttl_seconds is None else time.monotonic() + ttl_seconds
        self._data[key] = (value, expires)

    def set_if_absent(self, key: str, value: str, ttl_seconds: float | None = None) -> bool:
        if self._alive(key) is not None:
            return False
        self.set(key, value, ttl_seconds)
        return True

    def delete(self, *keys: str) -> int:
        return sum(1 for key in keys if self._data.pop(key, None) is not None)

    def exists(self, key: str) -> bool:
        return self._alive(key) is not None

    def incr(self, key: str, ttl_seconds: float | None = None) -> int:
        # Like the Redis path: the TTL starts when the counter is created and is not extended by later hits.
        item = self._alive(key)
        value = int(item[0]) + 1 if item else 1
        expires = item[1] if item else (None if ttl_seconds is None else time.monotonic() + ttl_seconds)
        if item is None and len(self._data) >= self._max_keys:
            self._evict()
        self._data[key] = (str(value), expires)
        return value

    def clear(self) -> None:
        self._data.clear()

    def _evict(self) -> None:
        now = time.monotonic()
        expired = [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]
        for key in expired:
            del self._data[key]
        # Still full: drop the oldest tenth (dicts keep insertion order) rather than grow without bound.
        if len(self._data) >= self._max_keys:
            for key in list(self._data)[: max(1, self._max_keys // 10)]:
                del self._data[key]

    def __len__(self) -> int:
        return len(self._data)
