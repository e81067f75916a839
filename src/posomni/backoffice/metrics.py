"""Prometheus metrics of the back office client, created once per process: the app is built several times
in one process (tests, reloads) and the default registry refuses a second metric of the same name."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

# Gauge values of `posomni_backoffice_circuit_state`.
CIRCUIT_STATE_VALUE = {"closed": 0, "half-opened": 1, "opened": 2}


@dataclass(frozen=True)
class BackOfficeMetrics:
    circuit_state: Gauge
    deliveries: Counter


@functools.cache
def backoffice_metrics() -> BackOfficeMetrics:
    return BackOfficeMetrics(
        circuit_state=Gauge(
            "posomni_backoffice_circuit_state",
            "Back office circuit breaker: 0 closed, 1 half-open, 2 open (failing fast).",
        ),
        deliveries=Counter(
            "posomni_backoffice_deliveries",
            "Deliveries to the back office by outcome (after the client's own retries).",
            ["outcome"],
        ),
    )
