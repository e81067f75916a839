"""Prometheus metrics of the cache, read from the live service when scraped.

The service keeps the numbers; a collector reads them at scrape time. One collector per registry, pointed at
the newest service, so building several apps in one process (the tests do) never registers a series twice.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

BREAKER_STATES = ("closed", "open", "half-open")


@dataclass(frozen=True)
class CacheStats:
    mode: str  # "redis" while Redis serves, "memory" otherwise
    topology: str  # "standalone", "sentinel", or "none" when Redis is not configured
    breaker: str  # one of BREAKER_STATES, or "disabled" without Redis
    master: str | None  # host:port last seen serving writes
    hits: int
    misses: int
    errors: int
    breaker_openings: int
    failovers: int
    fallback_seconds: float  # cumulative time with the breaker not closed; 0 when Redis is not configured
    fallback_active: bool


class StatsSource(Protocol):
    def snapshot(self) -> CacheStats: ...


_COUNTERS: tuple[tuple[str, str, Callable[[CacheStats], float]], ...] = (
    ("hits", "Cache reads that found a value.", lambda s: s.hits),
    ("misses", "Cache reads that found nothing.", lambda s: s.misses),
    ("errors", "Redis calls that failed (the caller was served from memory).", lambda s: s.errors),
    ("breaker_openings", "Times the breaker opened (Redis outages).", lambda s: s.breaker_openings),
    ("failovers", "Master address changes seen through Sentinel.", lambda s: s.failovers),
    ("fallback_seconds", "Seconds spent on the in-memory fallback.", lambda s: s.fallback_seconds),
)


def _families(stats: CacheStats | None) -> Iterator[Metric]:
    """The metric families; without `stats`, empty ones (their names, for the registry's duplicate check)."""
    for name, doc, read in _COUNTERS:
        family = CounterMetricFamily(f"posomni_redis_{name}", doc)
        if stats is not None:
            family.add_metric([], float(read(stats)))
        yield family

    active = GaugeMetricFamily("posomni_redis_fallback_active", "1 while served from memory instead of Redis.")
    state = GaugeMetricFamily(
        "posomni_redis_breaker_state", "1 for the breaker's current state (all 0 without Redis).", labels=["state"]
    )
    master = InfoMetricFamily("posomni_redis_master", "The Redis master in use.", labels=["address", "topology"])
    if stats is not None:
        active.add_metric([], 1.0 if stats.fallback_active else 0.0)
        for name in BREAKER_STATES:
            state.add_metric([name], 1.0 if stats.breaker == name else 0.0)
        master.add_metric([stats.master or "", stats.topology], {})
    yield from (active, state, master)


class _CacheCollector:
    def __init__(self) -> None:
        self._source: weakref.ReferenceType[StatsSource] | None = None

    def point_at(self, source: StatsSource) -> None:
        # A weak reference: a registry must not keep a closed app's service (and its sockets) alive.
        self._source = weakref.ref(source)

    def describe(self) -> Iterator[Metric]:
        return _families(None)

    def collect(self) -> Iterator[Metric]:
        source = self._source() if self._source is not None else None
        if source is None:
            return iter(())
        return _families(source.snapshot())


_collectors: weakref.WeakKeyDictionary[CollectorRegistry, _CacheCollector] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def expose(source: StatsSource, registry: CollectorRegistry) -> None:
    """Publish `source`'s numbers on `registry`; calling again (a new app, a new service) re-points it."""
    with _lock:
        collector = _collectors.get(registry)
        if collector is None:
            collector = _CacheCollector()
            registry.register(collector)
            _collectors[registry] = collector
        collector.point_at(source)
