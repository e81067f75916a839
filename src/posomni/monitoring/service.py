"""Who may scrape the metrics, and the scrape itself.

Access (`check_scrape_access`): a request is let in when it carries `Authorization: Bearer <METRICS_TOKEN>`
(compared in constant time), or when its client address is inside one of `METRICS_ALLOWED_NETWORKS`. A wrong
token is refused even from an allowed network: it means a misconfigured or hostile scraper. Otherwise the
answer is 401 when a token is configured (send it) and 403 when only networks are (you are not in them).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from typing import Final

from prometheus_client import REGISTRY, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from posomni.config import Network, Settings
from posomni.database import Database
from posomni.logging import get_logger
from posomni.monitoring.errors import MetricsNetworkRefused, MetricsTokenInvalid, MetricsTokenRequired
from posomni.outbox import service as outbox

log = get_logger(__name__)

# A scrape must answer even when the database is slow: the outbox gauges then keep their last values.
OUTBOX_REFRESH_TIMEOUT_S: Final = 2.0


def client_in_networks(host: str | None, networks: tuple[Network, ...]) -> bool:
    if host is None or not networks:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.5 on a dual-stack socket is 10.0.0.5
    return any(address in network for network in networks)


def check_scrape_access(settings: Settings, client_host: str | None, authorization: str) -> None:
    scheme, _, credentials = authorization.partition(" ")
    sent = credentials.strip() if scheme.lower() == "bearer" else ""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token is not None else None
    if token is not None and sent:
        if hmac.compare_digest(sent.encode(), token.encode()):
            return
        log.warning("metrics_scrape_refused", reason="invalid_token", client=client_host)
        raise MetricsTokenInvalid()
    if client_in_networks(client_host, settings.metrics_allowed_networks):
        return
    log.warning("metrics_scrape_refused", reason="no_token" if token else "network", client=client_host)
    if token is not None:
        raise MetricsTokenRequired()
    raise MetricsNetworkRefused()


async def _refresh_outbox_gauges(database: Database) -> None:
    try:
        async with asyncio.timeout(OUTBOX_REFRESH_TIMEOUT_S), database.sessionmaker() as session:
            await outbox.status(session, dead_limit=0, include_delivered=False)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.warning("metrics_outbox_refresh_failed", error=type(exc).__name__)


async def metrics_text(database: Database) -> bytes:
    """Every registered family in Prometheus text format, the outbox depth read fresh from the database."""
    await _refresh_outbox_gauges(database)
    return generate_latest(REGISTRY)
