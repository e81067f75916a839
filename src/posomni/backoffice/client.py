"""The back office port. Domain code and the outbox worker talk to `BackOfficeClient`; the adapter is chosen
from the settings by `build_backoffice_client` (Conexxus REST when CONEXXUS_API_URL is set, else the null
client, which delivers nothing so messages wait in the outbox until a back office is configured)."""

from __future__ import annotations

from typing import Any, Protocol

from posomni.backoffice.conexxus import ConexxusClient
from posomni.backoffice.naxml.schemas import PricebookFetch
from posomni.backoffice.schemas import DeliveryResult, OutboundMessage, Outcome
from posomni.config import Settings


class BackOfficeClient(Protocol):
    @property
    def configured(self) -> bool:
        """False when there is no back office to deliver to; the worker then claims nothing."""
        ...

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        """Send one message. Never raises for a remote failure: the outcome says what happened."""
        ...

    async def fetch_pricebook(self, store_code: str, *, etag: str | None = None) -> PricebookFetch:
        """GET the store's pricebook; `etag` from the last one applied makes an unchanged one cost no body."""
        ...

    async def health(self) -> dict[str, Any]:
        """The client's own view (breaker state, last success and error); makes no request."""
        ...

    async def close(self) -> None: ...


class NullBackOfficeClient:
    configured = False

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        return DeliveryResult(Outcome.DISABLED, error="no back office configured (CONEXXUS_API_URL is not set)")

    async def fetch_pricebook(self, store_code: str, *, etag: str | None = None) -> PricebookFetch:
        return PricebookFetch(Outcome.DISABLED, error="no back office configured (CONEXXUS_API_URL is not set)")

    async def health(self) -> dict[str, Any]:
        return {
            "configured": False,
            "circuit": None,
            "message": "CONEXXUS_API_URL is not set: messages stay pending in the outbox",
        }

    async def close(self) -> None:
        return None


def build_backoffice_client(settings: Settings) -> BackOfficeClient:
    if settings.conexxus_api_url is None or settings.conexxus_api_key is None:
        return NullBackOfficeClient()
    # A delivery takes at most about 3 tries × (2 s connect + CONEXXUS_TIMEOUT_SECONDS, default 5) plus two
    # waits of up to 5 s: ~31 s by default, inside the worker's delivery timeout (45 s of a 60 s lease); the
    # configuration warns about a timeout that does not fit.
    timeout = settings.conexxus_timeout_seconds
    return ConexxusClient(
        settings.conexxus_api_url,
        settings.conexxus_api_key.get_secret_value(),
        connect_timeout=min(2.0, timeout),
        read_timeout=timeout,
    )
