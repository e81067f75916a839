"""Prometheus metrics of the outbox, created once per process (the app is built several times in one process
and the default registry refuses a second metric of the same name)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import Counter, Gauge


@dataclass(frozen=True)
class OutboxMetrics:
    pending: Gauge
    oldest_pending_age: Gauge
    dead: Gauge
    delivered: Counter
    failures: Counter


@functools.cache
def outbox_metrics() -> OutboxMetrics:
    return OutboxMetrics(
        pending=Gauge("posomni_outbox_pending_messages", "Messages waiting for the back office."),
        oldest_pending_age=Gauge(
            "posomni_outbox_oldest_pending_age_seconds", "Age of the oldest message waiting (0 when none)."
        ),
        dead=Gauge("posomni_outbox_dead_messages", "Parked messages waiting for `posomni outbox retry`."),
        delivered=Counter("posomni_outbox_delivered", "Messages delivered to the back office.", ["topic"]),
        failures=Counter(
            "posomni_outbox_delivery_failures", "Failed delivery tries, by outcome (dead: parked).", ["outcome"]
        ),
    )
