"""Sentry error reports, only when SENTRY_DSN is set. Started by the composition root (`create_app`), never at
import, and closed with the app; without a DSN nothing here runs and the app is unchanged.

What is sent: exceptions with their stack and local variables, the request's method, URL and (filtered)
headers, log breadcrumbs, a `request_id` tag, the release (`posomni@<version>`) and environment. Before
anything leaves the process, `before_send` runs the log scrubber over the whole event (`scrub.py`): secrets,
tokens, card-like numbers and dates of birth are masked. Request bodies are never attached (ID scans and
sign-in forms travel in them), and no default PII (client addresses, cookies, user) is sent.
"""

from __future__ import annotations

import asyncio
from typing import Final

import sentry_sdk
from sentry_sdk.integrations.fastapi import FastApiIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration

from posomni import __version__
from posomni.config import Settings
from posomni.logging import get_logger
from posomni.monitoring.scrub import scrub_sentry_breadcrumb, scrub_sentry_event

log = get_logger(__name__)

CLOSE_TIMEOUT_S: Final = 2.0


def start_sentry(settings: Settings) -> bool:
    """Initialise the Sentry client from the settings; False (and nothing done) without a DSN."""
    if settings.sentry_dsn is None:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        release=f"posomni@{__version__}",
        traces_sample_rate=settings.sentry_traces_sample_rate,
        profiles_sample_rate=settings.sentry_profiles_sample_rate,
        # send_default_pii is left at its default (off: no client addresses, cookies or user); setting it
        # explicitly is deprecated in favour of data_collection, which older 2.x releases do not know.
        max_request_body_size="never",
        before_send=scrub_sentry_event,
        before_send_transaction=scrub_sentry_event,
        before_breadcrumb=scrub_sentry_breadcrumb,
        # Transactions named by route template (/sales/{sale_id}), like the metrics, not by raw path.
        integrations=[StarletteIntegration(transaction_style="url"), FastApiIntegration(transaction_style="url")],
    )
    log.info("sentry_started", environment=settings.sentry_environment, release=__version__)
    return True


async def stop_sentry() -> None:
    """Send what is queued (bounded wait) and stop the transport's thread."""
    client = sentry_sdk.get_client()
    if client.is_active():
        # close() blocks while it flushes; keep the event loop free for the rest of the shutdown.
        await asyncio.to_thread(client.close, CLOSE_TIMEOUT_S)
        # Back to "no Sentry": a closed client would still count as active for the next app of this process.
        sentry_sdk.get_global_scope().set_client(None)
