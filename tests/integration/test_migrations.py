"""Migrations run on both PostgreSQL and SQLite, up and down, and match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from posomni import migrate
from posomni.database import create_engine
from posomni.models import metadata


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    url: str = request.getfixturevalue("pg_empty_url")
    return url


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names - {"alembic_version"}


async def test_upgrade_from_empty_to_head_and_back_to_base(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        await migrate.upgrade(engine)
        state = await migrate.status(engine)
        assert state.up_to_date
        assert state.current == migrate.head_revision()
        assert await _tables(empty_url) == set(metadata.tables)

        await migrate.downgrade(engine, "base")
        state = await migrate.status(engine)
        assert state.current is None
        assert state.pending
        assert await _tables(empty_url) == set()

        # And up again: downgrade left nothing behind that blocks a second upgrade.
        await migrate.upgrade(engine)
        assert (await migrate.status(engine)).up_to_date
    finally:
        await engine.dispose()


async def test_models_match_migrations_autogenerate_finds_nothing(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        await migrate.upgrade(engine)
        assert await migrate.model_drift(engine) == []
    finally:
        await engine.dispose()


def test_migration_ids_are_sequential_and_linear() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = list(reversed(list(script.walk_revisions())))
    assert [r.revision for r in revisions] == [f"{i:04d}" for i in range(1, len(revisions) + 1)]
    assert len(script.get_heads()) == 1
