"""/health and /health/backup with the database up and down."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from posomni.app import create_app
from posomni.backups.models import BackupRecord
from posomni.database import Database
from posomni.kit.time import utcnow
from posomni.outbox import service as outbox
from tests.conftest import make_settings


async def test_health_is_ok_or_degraded_with_the_database_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] in {"ok", "degraded"}
    components = body["components"]
    assert set(components) == {"database", "redis", "memory", "disk", "backup", "outbox"}
    assert components["database"]["status"] == "ok"
    assert components["database"]["critical"] is True
    assert components["database"]["details"]["revision"] == components["database"]["details"]["head"]
    assert components["memory"]["details"]["rss_bytes"] > 0
    assert components["disk"]["details"]["free_bytes"] > 0
    # No Redis configured in this test: reported, not fatal.
    assert components["redis"]["status"] == "degraded"
    assert components["redis"]["details"]["mode"] == "memory"
    assert components["backup"]["details"]["message"] == "no backup yet"
    assert response.headers["x-request-id"]


async def test_health_is_503_when_the_database_is_down(tmp_path: Path) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
    settings = make_settings(DATABASE_URL=url, POSOMNI_DATA_DIR=str(tmp_path))
    database = Database(url)
    app = create_app(settings, database=database)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        response = await http.get("/health")
        backup = await http.get("/health/backup")
    await database.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["components"]["database"]["status"] == "down"
    assert "nothing" not in str(body["components"]["database"]["details"])  # no connection string leaked
    assert backup.status_code == 503
    assert backup.json()["error"]["code"] == "service_unavailable"


async def test_health_reports_down_when_migrations_are_pending(pg_empty_url: str, tmp_path: Path) -> None:
    settings = make_settings(DATABASE_URL=pg_empty_url, POSOMNI_DATA_DIR=str(tmp_path))
    database = Database(pg_empty_url)
    app = create_app(settings, database=database)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        response = await http.get("/health")
    await database.dispose()
    assert response.status_code == 503
    assert "migrations pending" in response.json()["components"]["database"]["details"]["error"]


async def test_backup_health_says_no_backup_yet(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/backup")
    assert response.status_code == 200
    body = response.json()
    assert body["last_success_at"] is None
    assert body["message"] == "no backup yet"
    assert body["status"] == "degraded"


async def test_backup_health_reports_the_last_success_and_its_age(
    client: httpx.AsyncClient, database: Database
) -> None:
    now = utcnow()
    async with database.unit_of_work() as session:
        session.add_all(
            [
                BackupRecord(
                    method="sqlite", status="succeeded", started_at=now - timedelta(hours=30),
                    finished_at=now - timedelta(hours=30), size_bytes=10, location="old.db",
                ),
                BackupRecord(
                    method="sqlite", status="succeeded", started_at=now - timedelta(hours=2),
                    finished_at=now - timedelta(hours=2), size_bytes=4096, location="new.db",
                ),
                BackupRecord(method="sqlite", status="failed", started_at=now, finished_at=now, error="disk full"),
            ]
        )  # fmt: skip
    body = (await client.get("/health/backup")).json()
    assert body["status"] == "ok"
    assert body["location"] == "new.db"
    assert body["size_bytes"] == 4096
    assert 1.9 < body["age_hours"] < 2.1


async def test_backup_older_than_the_limit_is_degraded(client: httpx.AsyncClient, database: Database) -> None:
    old = utcnow() - timedelta(hours=27)
    async with database.unit_of_work() as session:
        session.add(BackupRecord(method="sqlite", status="succeeded", started_at=old, finished_at=old))
    body = (await client.get("/health/backup")).json()
    assert body["status"] == "degraded"
    assert "older than 26 hours" in body["message"]


async def test_the_outbox_is_degraded_past_outbox_max_age_minutes(
    db_url: str, tmp_path: Path, database: Database
) -> None:
    async with database.unit_of_work() as session:
        message = await outbox.enqueue(
            session, store_id=None, topic="price.changed", aggregate_id="p1", payload={"price_cents": 100}
        )
        message.created_at = utcnow() - timedelta(minutes=5)  # waiting for five minutes

    async def outbox_component(**env: str) -> dict[str, Any]:
        settings = make_settings(DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path), **env)
        app = create_app(settings, database=database)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            response = await http.get("/health")
        assert response.status_code == 200  # never down: the register sells without the back office
        component: dict[str, Any] = response.json()["components"]["outbox"]
        return component

    default = await outbox_component()
    assert (default["status"], default["details"]["stale_after_seconds"]) == ("ok", 900)
    tight = await outbox_component(OUTBOX_MAX_AGE_MINUTES="3")
    assert (tight["status"], tight["details"]["stale_after_seconds"]) == ("degraded", 180)
    assert tight["details"]["pending"] == 1
    assert 300 <= tight["details"]["oldest_pending_age_seconds"] < 400
    assert tight["details"]["message"].startswith("1 message(s) waiting; the oldest for ")
