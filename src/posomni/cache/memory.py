"""The in-memory fallback store: per process, with expiry. Used when Redis is absent or unreachable."""

from __future__ import annotations

import time


class MemoryStore:
    def __init__(self, max_keys: int = 100_000) -> None:
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

    def delete(self, *keys: str) -> int:
        return sum(1 for key in keys if self._data.pop(key, None) is not None)

    def exists(self, key: str) -> bool:
        return self._alive(key) is not None

    def incr(self, key: str, ttl_seconds: float | None = None) -> int:
        item = self._alive(key)
        value = int(item[0]) + 1 if item else 1
        expires = item[1] if item else (None if ttl_seconds is None else time.monotonic() + ttl_seconds)
        self._data[key] = (str(value), expires)
        return value

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
