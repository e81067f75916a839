"""The backup files themselves: `pg_dump`/`pg_restore` for PostgreSQL, the online backup API for SQLite, the
SHA-256 checksum and the JSON metadata written beside each file.

Connection details reach the PostgreSQL tools only through `PG*` environment variables: the password never
appears on a command line (where `ps` shows it to every user) or in a log line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, table
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from posomni.backups.errors import BackupFailed

METADATA_FORMAT: Final = "posomni-backup/1"
# pg_dump and pg_restore of a store's database take minutes; a hung tool must still end, so every call has a
# bound. Generous, because killing a slow but healthy dump of a large chain's database helps nobody.
PG_TOOL_TIMEOUT_S: Final = 2 * 3600
PG_CONNECT_TIMEOUT_S: Final = 10
STDERR_TAIL_CHARS: Final = 600
FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700

_TARGET_VARIABLES = frozenset(
    f"PG{name}" for name in ("HOST", "HOSTADDR", "PORT", "DATABASE", "USER", "PASSWORD", "SERVICE", "SERVICEFILE")
)


@dataclass(frozen=True)
class PgTarget:
    """Where a PostgreSQL tool connects. `password` stays out of repr and out of argv."""

    host: str | None
    port: int | None
    user: str | None
    database: str
    password: str | None = field(default=None, repr=False)
    sslmode: str | None = None

    @classmethod
    def from_url(cls, url: str) -> PgTarget:
        parsed = make_url(url)
        query = dict(parsed.query)
        # asyncpg spells libpq's sslmode `ssl`; a Unix-socket directory may come as ?host=/run/postgresql.
        ssl = query.get("ssl") or query.get("sslmode")
        host = parsed.host or query.get("host")
        if not parsed.database:
            raise BackupFailed("DATABASE_URL names no database")
        return cls(
            host=str(host) if host else None,
            port=parsed.port,
            user=parsed.username,
            database=parsed.database,
            password=parsed.password if isinstance(parsed.password, str) else None,
            sslmode=str(ssl) if ssl else None,
        )

    def with_database(self, name: str) -> PgTarget:
        return PgTarget(self.host, self.port, self.user, name, self.password, self.sslmode)

    def environment(self) -> dict[str, str]:
        # Start from the process environment without the variables that choose a server or a login, so an
        # operator's PGSERVICE or PGHOST can never redirect a restore elsewhere (TLS settings such as
        # PGSSLROOTCERT are kept).
        env = {k: v for k, v in os.environ.items() if k not in _TARGET_VARIABLES}
        env["PGDATABASE"] = self.database
        env["PGCONNECT_TIMEOUT"] = str(PG_CONNECT_TIMEOUT_S)
        env["PGAPPNAME"] = "posomni-backup"
        for name, value in (("PGHOST", self.host), ("PGUSER", self.user), ("PGSSLMODE", self.sslmode)):
            if value:
                env[name] = value
        if self.port:
            env["PGPORT"] = str(self.port)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupFailed(f"{name} is not installed: install the PostgreSQL client tools (postgresql-client)")
    return path


def _run(args: list[str], env: dict[str, str], what: str) -> str:
    try:
        # A fixed argument list, no shell: nothing in the arguments is interpreted.
        done = subprocess.run(  # noqa: S603
            args, env=env, capture_output=True, text=True, timeout=PG_TOOL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise BackupFailed(f"{what} did not finish within {PG_TOOL_TIMEOUT_S} s") from None
    if done.returncode != 0:
        tail = done.stderr.strip()[-STDERR_TAIL_CHARS:]
        raise BackupFailed(f"{what} failed (exit {done.returncode}): {tail}")
    return done.stdout


def tool_version(name: str) -> str:
    return _run([_tool(name), "--version"], dict(os.environ), f"{name} --version").strip()


def pg_dump(target: PgTarget, dest: Path, *, snapshot: str | None = None) -> None:
    args = [_tool("pg_dump"), "--format=custom", "--no-password", f"--file={dest}"]
    if snapshot:
        args.append(f"--snapshot={snapshot}")
    _run(args, target.environment(), "pg_dump")


def pg_restore(target: PgTarget, source: Path, *, clean: bool) -> None:
    args = [
        _tool("pg_restore"),
        "--no-password",
        "--exit-on-error",
        # All or nothing: a restore that fails half-way leaves the database as it was.
        "--single-transaction",
        # The objects belong to whoever restores them (the app's user), whatever roles the source server had.
        "--no-owner",
        "--no-privileges",
    ]
    if clean:
        args += ["--clean", "--if-exists"]
    args += [f"--dbname={target.database}", str(source)]
    _run(args, target.environment(), "pg_restore")


def pg_archive_tables(source: Path) -> set[str]:
    """The tables a custom-format archive holds (also proves the archive is readable)."""
    listing = _run([_tool("pg_restore"), "--list", str(source)], dict(os.environ), "pg_restore --list")
    tables = set()
    for line in listing.splitlines():
        # e.g. "215; 1259 16390 TABLE public audit_log posomni"
        parts = line.split()
        if len(parts) >= 6 and not line.startswith(";") and parts[3] == "TABLE" and parts[4] == "public":
            tables.add(parts[5])
    return tables


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupFailed("an in-memory SQLite database cannot be backed up")
    return Path(database)


def sqlite_copy(source: Path, dest: Path) -> None:
    """Copy a live SQLite database with the online backup API (a consistent snapshot, writers may continue)."""
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
            # One self-contained file: no -wal or -shm beside the backup.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def sqlite_restore(source: Path, dest: Path) -> None:
    """Write a backup into the database file through SQLite's own locking, in one step (all pages or none)."""
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(dest, timeout=30)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def sqlite_integrity(path: Path) -> str:
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        row = connection.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        connection.close()
    return str(row[0]) if row else "no answer"


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def sqlite_counts(path: Path) -> tuple[dict[str, int], str | None]:
    """Rows per table and the migration revision of a SQLite file, opened read-only."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = [
            str(row[0])
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        counts = {}
        for name in names:
            if name == "alembic_version" or not _PLAIN_NAME.fullmatch(name):
                continue
            # The name comes from the file's own catalogue and is checked to be a plain identifier above.
            counts[name] = int(connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])  # noqa: S608
        revision = None
        if "alembic_version" in names:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = str(row[0]) if row else None
    finally:
        connection.close()
    return counts, revision


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    # Backups hold password hashes and encrypted personal data: readable by the service's user only.
    with contextlib.suppress(PermissionError):
        path.chmod(DIR_MODE)


def create_private(path: Path) -> None:
    """An empty file only the owner can read, created before a tool writes into it (the tool keeps the mode)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def remove_quietly(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def metadata_path(backup_file: Path) -> Path:
    return backup_file.with_name(backup_file.name + ".json")


def write_metadata(backup_file: Path, document: dict[str, Any]) -> None:
    target = metadata_path(backup_file)
    partial = target.with_name(target.name + ".partial")
    remove_quietly(partial)
    create_private(partial)
    partial.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(target)


def read_metadata(backup_file: Path) -> dict[str, Any]:
    path = metadata_path(backup_file)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupFailed(f"the metadata file {path.name} is missing") from None
    except (OSError, ValueError) as exc:
        raise BackupFailed(f"the metadata file {path.name} cannot be read: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != METADATA_FORMAT:
        raise BackupFailed(f"{path.name} is not POS-Omni backup metadata")
    return document


def metadata_files(directory: Path) -> Iterator[Path]:
    """Backup files that have their metadata beside them, oldest name first."""
    if not directory.is_dir():
        return
    for meta in sorted(directory.glob("posomni-*.json")):
        backup = meta.with_name(meta.name.removesuffix(".json"))
        if backup.is_file():
            yield backup


async def row_counts(connection: AsyncConnection) -> dict[str, int]:
    """Rows in every table of the database (in the connection's transaction, so in its snapshot)."""

    def names(sync: Connection) -> list[str]:
        return sorted(n for n in inspect(sync).get_table_names() if n != "alembic_version")

    counts = {}
    for name in await connection.run_sync(names):
        counts[name] = int((await connection.execute(select(func.count()).select_from(table(name)))).scalar_one())
    return counts


async def revision_of(connection: AsyncConnection) -> str | None:
    def read(sync: Connection) -> str | None:
        return MigrationContext.configure(sync).get_current_revision()

    return await connection.run_sync(read)
