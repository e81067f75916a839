"""Monitoring tests run the whole app: a metrics token, every request counted as slow (so each one writes a
`slow_request` line that must carry its request id), and the sales register of `tests/integration/sales`."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from posomni.config import Settings
from tests.conftest import make_settings

# `register` is the sales tests' fixture (a signed-in cashier and manager, an open shift): imported to reuse it.
from tests.integration.sales.conftest import Register, register

METRICS_TOKEN = "scrape-token-" + "Kq7mZ2pX9vR4tW8yB3nC6dF1" * 2
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path), METRICS_TOKEN=METRICS_TOKEN, SLOW_REQUEST_MS="1"
    )


async def scrape(http: httpx.AsyncClient) -> dict[str, Metric]:
    response = await http.get("/monitoring/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def value(families: dict[str, Metric], family: str, sample: str | None = None, **labels: str) -> float:
    """The sum of the samples named `sample` (default: the family's own) whose labels include `labels`."""
    found = families.get(family)
    if found is None:
        return 0.0
    name = sample or family
    return sum(
        s.value for s in found.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


__all__ = ["SCRAPE", "Register", "register", "scrape", "value"]
