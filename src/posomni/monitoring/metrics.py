"""The app's own Prometheus metrics, created once per process on the default registry.

The app is built several times in one process (tests, reloads) and a registry refuses a second metric of the
same name, so every family here is made by a cached function, as in `outbox/metrics.py`. Domain code records
outcomes with the one-line helpers at the bottom (`sale_completed()`, `age_check(...)` …); they never raise.

Label values are always from small fixed sets (error codes, route templates, operation names), never ids or
amounts: every distinct value is a new time series kept in memory until the process ends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from prometheus_client import Counter, Histogram
from prometheus_fastapi_instrumentator import metrics as http_metrics

NAMESPACE: Final = "posomni"
# Seconds. The register's requests are mostly 5–200 ms; a card payment can take several seconds.
HTTP_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
QUERY_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PAYMENT_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
QUERY_OPERATIONS: Final = frozenset({"select", "insert", "update", "delete"})

# Payment error codes read as a result (the rest are reported by their own code).
_PAYMENT_RESULTS: Final = {"card_declined": "declined", "processor_unavailable": "unavailable"}


@dataclass(frozen=True)
class AppMetrics:
    sales_completed: Counter
    sales_failed: Counter
    payments: Counter
    age_checks: Counter
    query_duration: Histogram
    slow_queries: Counter
    slow_requests: Counter


@functools.cache
def app_metrics() -> AppMetrics:
    return AppMetrics(
        sales_completed=Counter("posomni_sales_completed", "Sales completed (by the checkout or its recovery)."),
        sales_failed=Counter(
            "posomni_sales_failed",
            "Checkouts that failed and were compensated, by the error code the cashier saw.",
            ["reason"],
        ),
        payments=Counter(
            "posomni_payments",
            "Card processor answers during checkout, by operation and result (a card status or an error code).",
            ["operation", "result"],
        ),
        age_checks=Counter(
            "posomni_age_checks",
            "ID and age checks by method (scan, manual, profile), result and refusal reason (none when passed).",
            ["method", "result", "reason"],
        ),
        query_duration=Histogram(
            "posomni_db_query_duration_seconds",
            "Database statement durations, by the statement's first keyword.",
            ["operation"],
            buckets=QUERY_BUCKETS,
        ),
        slow_queries=Counter("posomni_db_slow_queries", "Statements slower than SLOW_QUERY_MS."),
        slow_requests=Counter("posomni_http_slow_requests", "Requests slower than SLOW_REQUEST_MS."),
    )


Instrumentation = Callable[[http_metrics.Info], None]


@functools.cache
def http_instrumentations() -> tuple[Instrumentation, ...]:
    """The HTTP families of prometheus-fastapi-instrumentator, built once per process.

    The library's own default builds them in every middleware instance and, on the second app of a process,
    silently returns nothing (duplicate names): that app would record no HTTP metrics at all. Built here once
    and handed to each app's middleware instead."""
    requests = http_metrics.requests(
        metric_name="http_requests_total",
        metric_doc="HTTP requests by route template, method and status.",
        metric_namespace=NAMESPACE,
    )
    latency = http_metrics.latency(
        metric_name="http_request_duration_seconds",
        metric_doc="HTTP request latency by route template, method and status.",
        metric_namespace=NAMESPACE,
        buckets=HTTP_BUCKETS,
    )
    built = tuple(f for f in (requests, latency) if f is not None)
    if len(built) != 2:  # someone registered these names outside this function
        raise RuntimeError("the HTTP metrics are already registered on the default registry")
    return built


# --- one-line helpers for domain code ----------------------------------------------------------------------


def sale_completed() -> None:
    app_metrics().sales_completed.inc()


def sale_failed(cause: BaseException) -> None:
    # PosError carries a stable code; anything else is the generic failure the cashier sees.
    code = getattr(cause, "code", None)
    app_metrics().sales_failed.labels(code if isinstance(code, str) else "checkout_failed").inc()


def card_payment(operation: str, result: object) -> None:
    """`result`: the CardStatus returned, or the PaymentError raised."""
    if isinstance(result, BaseException):
        code = getattr(result, "code", None)
        label = _PAYMENT_RESULTS.get(code, code) if isinstance(code, str) else "error"
    else:
        label = str(getattr(result, "value", result))
    app_metrics().payments.labels(operation, label).inc()


def age_check(method: str | None, result: str | None, reason: str | None) -> None:
    app_metrics().age_checks.labels(method or "unknown", result or "unknown", reason or "none").inc()


def query_operation(statement: str) -> str:
    # Runs for every statement: only the first characters are looked at (the four keywords have six letters).
    head = statement[:32].lstrip(" \t\r\n(")
    word = head[:6].lower()
    return word if word in QUERY_OPERATIONS and not head[6:7].isalnum() else "other"
