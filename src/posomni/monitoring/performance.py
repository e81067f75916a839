"""Per-route latency percentiles over a sliding window, the slowest recent requests, and the slow-request and
slow-query logs, for `GET /monitoring/performance`.

Memory is bounded whatever the traffic: each (method, route template) keeps at most `MAX_SAMPLES_PER_ROUTE`
durations from the last `window_seconds`, the number of routes is capped, the slowest requests are kept as a
top-N per minute, and the logs are fixed-size rings. Routes are templates (`/sales/{sale_id}`), never raw
paths, so ids do not create new entries. One process's view: with several worker processes each has its own.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from starlette.types import Scope

from posomni.monitoring.schemas import (
    PerformanceReport,
    RequestSampleOut,
    RouteLatency,
    SlowQueryGroup,
    SlowQueryOut,
)

WINDOW_SECONDS: Final = 300
MAX_SAMPLES_PER_ROUTE: Final = 2000
MAX_ROUTES: Final = 500
SLOWEST_KEPT: Final = 20
LOG_SIZE: Final = 100
QUERY_GROUPS_KEPT: Final = 200
OTHER_ROUTE: Final = "(other)"


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the database hooks need to know about the request being served, if any."""

    request_id: str | None
    scope: Scope

    def route(self) -> str | None:
        # Set by the router once it matched; absent before routing and for unmatched paths.
        route = self.scope.get("route")
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else None


current_request: ContextVar[RequestContext | None] = ContextVar("posomni_current_request", default=None)


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float  # time.time()
    method: str
    route: str
    status: int
    duration_ms: float
    request_id: str | None

    def out(self) -> RequestSampleOut:
        return RequestSampleOut(
            at=_when(self.at),
            method=self.method,
            route=self.route,
            status=self.status,
            duration_ms=round(self.duration_ms, 2),
            request_id=self.request_id,
        )


@dataclass(slots=True)
class _QueryGroup:
    count: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    last_at: float = 0.0


@dataclass(slots=True)
class _Route:
    samples: deque[tuple[float, float, int]] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES_PER_ROUTE))


class PerformanceTracker:
    def __init__(
        self,
        *,
        slow_request_ms: int,
        slow_query_ms: int,
        window_seconds: int = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.slow_request_ms = slow_request_ms
        self.slow_query_ms = slow_query_ms
        self.window_seconds = window_seconds
        self._clock = clock
        # Recorded from the event loop, but a sync route runs in a worker thread: the lock is almost never contended.
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], _Route] = {}
        # minute → min-heap of the slowest requests in that minute.
        self._slowest: dict[int, list[tuple[float, int, _Sample]]] = {}
        self._sequence = 0
        self._slow_requests: deque[_Sample] = deque(maxlen=LOG_SIZE)
        self._slow_queries: deque[SlowQueryOut] = deque(maxlen=LOG_SIZE)
        self._query_groups: OrderedDict[str, _QueryGroup] = OrderedDict()

    # --- recording ---------------------------------------------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float, request_id: str | None) -> bool:
        """Record one request; True when it was slower than the slow-request threshold."""
        now = self._clock()
        duration_ms = seconds * 1000
        sample = _Sample(now, method, route, status, duration_ms, request_id)
        slow = duration_ms >= self.slow_request_ms
        with self._lock:
            key = (method, route)
            entry = self._routes.get(key)
            if entry is None:
                if len(self._routes) >= MAX_ROUTES:
                    key = (method, OTHER_ROUTE)
                entry = self._routes.setdefault(key, _Route())
            entry.samples.append((now, duration_ms, status))
            self._keep_if_slowest(sample)
            if slow:
                self._slow_requests.append(sample)
        return slow

    def _keep_if_slowest(self, sample: _Sample) -> None:
        minute = int(sample.at // 60)
        heap = self._slowest.setdefault(minute, [])
        self._sequence += 1
        item = (sample.duration_ms, self._sequence, sample)
        if len(heap) < SLOWEST_KEPT:
            heapq.heappush(heap, item)
        elif sample.duration_ms > heap[0][0]:
            heapq.heapreplace(heap, item)
        if len(self._slowest) > self.window_seconds // 60 + 2:
            oldest_kept = minute - self.window_seconds // 60 - 1
            for old in [m for m in self._slowest if m < oldest_kept]:
                del self._slowest[old]

    def observe_slow_query(self, sql: str, seconds: float, *, request_id: str | None, route: str | None) -> None:
        """`sql` must already be normalised (`queries.normalise_sql`): it is shown as it is."""
        now = self._clock()
        duration_ms = seconds * 1000
        with self._lock:
            self._slow_queries.append(
                SlowQueryOut(
                    at=_when(now), sql=sql, duration_ms=round(duration_ms, 2), request_id=request_id, route=route
                )
            )
            group = self._query_groups.pop(sql, None) or _QueryGroup()
            group.count += 1
            group.total_ms += duration_ms
            group.max_ms = max(group.max_ms, duration_ms)
            group.last_at = now
            self._query_groups[sql] = group  # most recent last
            while len(self._query_groups) > QUERY_GROUPS_KEPT:
                self._query_groups.popitem(last=False)

    # --- reading -----------------------------------------------------------------------------------------

    def report(self) -> PerformanceReport:
        now = self._clock()
        since = now - self.window_seconds
        with self._lock:
            routes = {key: [(d, s) for t, d, s in entry.samples if t >= since] for key, entry in self._routes.items()}
            candidates = [item[2] for heap in self._slowest.values() for item in heap if item[2].at >= since]
            slow_requests = list(self._slow_requests)
            slow_queries = list(self._slow_queries)
            groups = [(sql, g.count, g.total_ms, g.max_ms, g.last_at) for sql, g in self._query_groups.items()]
        latencies = [_latency(method, route, samples) for (method, route), samples in routes.items() if samples]
        latencies.sort(key=lambda r: r.p95_ms, reverse=True)
        slowest = sorted(candidates, key=lambda s: s.duration_ms, reverse=True)[:SLOWEST_KEPT]
        groups.sort(key=lambda g: g[2], reverse=True)
        return PerformanceReport(
            generated_at=_when(now),
            window_seconds=self.window_seconds,
            routes=latencies,
            slowest_requests=[s.out() for s in slowest],
            slow_request_threshold_ms=self.slow_request_ms,
            slow_requests=[s.out() for s in reversed(slow_requests)],
            slow_query_threshold_ms=self.slow_query_ms,
            slow_queries=list(reversed(slow_queries)),
            slow_query_groups=[
                SlowQueryGroup(
                    sql=sql,
                    count=count,
                    total_ms=round(total, 2),
                    max_ms=round(longest, 2),
                    mean_ms=round(total / count, 2),
                    last_at=_when(last),
                )
                for sql, count, total, longest, last in groups
            ],
        )


def _latency(method: str, route: str, samples: list[tuple[float, int]]) -> RouteLatency:
    durations = sorted(d for d, _ in samples)
    return RouteLatency(
        method=method,
        route=route,
        count=len(durations),
        server_errors=sum(1 for _, status in samples if status >= 500),
        p50_ms=round(percentile(durations, 0.50), 2),
        p95_ms=round(percentile(durations, 0.95), 2),
        p99_ms=round(percentile(durations, 0.99), 2),
        max_ms=round(durations[-1], 2),
    )


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list: a value that was actually observed."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _when(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
