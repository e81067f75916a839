"""Programmatic Alembic: upgrade, downgrade and status on an async engine (PostgreSQL or SQLite)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from posomni.models import metadata

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # '%' must be escaped for ConfigParser interpolation (passwords can contain it).
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@dataclass(frozen=True)
class MigrationStatus:
    current: str | None
    head: str | None
    pending: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


async def _with_connection(engine: AsyncEngine, target: str, action: str) -> None:
    config = alembic_config()

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        if action == "upgrade":
            command.upgrade(config, target)
        else:
            command.downgrade(config, target)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def upgrade(engine: AsyncEngine, target: str = "head") -> None:
    await _with_connection(engine, target, "upgrade")


async def downgrade(engine: AsyncEngine, target: str = "base") -> None:
    await _with_connection(engine, target, "downgrade")


async def status(engine: AsyncEngine) -> MigrationStatus:
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        current = await connection.run_sync(read)
    pending: list[str] = []
    if current != head and head is not None:
        for rev in script.iterate_revisions(head, current or "base"):
            pending.append(f"{rev.revision} {rev.doc}")
    return MigrationStatus(current=current, head=head, pending=tuple(reversed(pending)))


async def model_drift(engine: AsyncEngine) -> list[object]:
    """Differences between the models and the migrated schema; empty when migrations match the models."""

    def compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as connection:
        return await connection.run_sync(compare)


def new_revision(message: str, url: str, autogenerate: bool = True) -> None:
    config = alembic_config(url)
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    # Sequential ids ("0002") keep the history readable in a directory listing.
    script = ScriptDirectory.from_config(config)
    next_id = f"{sum(1 for _ in script.walk_revisions()) + 1:04d}"
    command.revision(config, message=message, autogenerate=autogenerate, rev_id=next_id)
