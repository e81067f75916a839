"""Sentry through a fake ingest over real HTTP: the real sentry-sdk sends the error, and nothing sensitive in it."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import sentry_sdk
from fastapi import Request

from posomni import __version__
from posomni.app import create_app
from posomni.database import Database
from tests.conftest import make_settings
from tests.fakes.sentry_ingest import PUBLIC_KEY, SentryIngest

SECRET = "hunter2-Very-Secret"
CARD = "4111111111111111"
CARD_GROUPED = "4111 1111 1111 1111"
DOB = "1990-05-17"
AAMVA_DOB = "05171990"
STRIPE_KEY = "sk_live_" + "51HxYzAbCdEfGh"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwicm9sZSI6Im1hbmFnZXIifQ.c2lnbmF0dXJlLW5vdC1yZWFs"
SESSION_COOKIE = "cookie-session-value-9d8c7b"
REQUEST_ID = "sentry-probe-0001"
SENSITIVE = (SECRET, CARD, CARD_GROUPED, DOB, AAMVA_DOB, STRIPE_KEY, JWT, SESSION_COOKIE)


async def failing_route(request: Request) -> None:
    api_key = STRIPE_KEY  # a local variable: Sentry attaches the frame's variables
    customer = {"name": "Jane", "date_of_birth": DOB, "note": f"paid with {CARD_GROUPED}", "password": SECRET}
    logging.getLogger("posomni.tests.sentry").error("refund failed for card %s, password=%s", CARD, SECRET)
    raise RuntimeError(
        f"charge failed: card {CARD}, date of birth {DOB}, password={SECRET}, scan DBB{AAMVA_DOB}, "
        f"key {api_key}, customer {customer}"
    )


async def test_an_error_reaches_sentry_without_secrets_cards_or_dates_of_birth(
    database: Database, tmp_path: Path
) -> None:
    with SentryIngest().running() as ingest:
        settings = make_settings(
            DATABASE_URL=database.url,
            POSOMNI_DATA_DIR=str(tmp_path),
            SENTRY_DSN=ingest.dsn,
            SENTRY_ENVIRONMENT="store-42-test",
        )
        app = create_app(settings, database=database)
        app.add_api_route("/probe/fail", failing_route, methods=["GET"])
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
                async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                    response = await http.get(
                        "/probe/fail",
                        params={"token": SECRET},
                        headers={
                            "X-Request-ID": REQUEST_ID,
                            "Authorization": f"Bearer {JWT}",
                            "Cookie": f"posomni_session={SESSION_COOKIE}",
                        },
                    )
            # The lifespan's end flushed and closed the client: everything has been sent.
        finally:
            if sentry_sdk.get_client().is_active():  # only when the test failed before the lifespan ended
                sentry_sdk.get_client().close(timeout=2)
                sentry_sdk.get_global_scope().set_client(None)
        events = ingest.wait_for_events(2)

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert not sentry_sdk.get_client().is_active()
    crash = next(e for e in events if e.get("exception"))
    logged = next(e for e in events if not e.get("exception"))
    assert crash["exception"]["values"][-1]["type"] == "RuntimeError"
    assert crash["release"] == f"posomni@{__version__}"
    assert crash["environment"] == "store-42-test"
    assert crash["tags"]["request_id"] == REQUEST_ID
    assert crash["transaction"] == "/probe/fail"
    message = crash["exception"]["values"][-1]["value"]
    assert "[card ****1111]" in message
    assert "password=[redacted]" in message
    assert "date of birth [redacted]" in message
    frame_vars = crash["exception"]["values"][-1]["stacktrace"]["frames"][-1]["vars"]
    assert frame_vars["api_key"] == "[redacted]"
    assert logged["logentry"]["formatted"] == "refund failed for card [card ****1111], password=[redacted]"
    assert "params" not in logged["logentry"]  # the bare arguments, secret among them, are dropped
    assert all(f"sentry_key={PUBLIC_KEY}" in envelope.auth for envelope in ingest.envelopes)
    raw = ingest.raw_text()
    leaked = [value for value in SENSITIVE if value in raw]
    assert leaked == []


async def test_without_a_dsn_nothing_is_started(database: Database, tmp_path: Path) -> None:
    settings = make_settings(DATABASE_URL=database.url, POSOMNI_DATA_DIR=str(tmp_path))
    app = create_app(settings, database=database)
    async with app.router.lifespan_context(app):
        assert app.state.sentry is False
        assert not sentry_sdk.get_client().is_active()
