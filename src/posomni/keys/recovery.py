"""Key backup confirmation and recovery drills (launch checklist §14: "encryption key backed up in 2+ locations",
"key recovery procedure tested").

Both are written to the audit log, in the global chain, under the key's id (`target_id`): a one-way fingerprint,
never the key. The log is hash-chained, so a confirmation or a drill cannot be quietly invented afterwards.

A drill takes the key as typed or read from the backup, never the configured one, and decrypts a sample of
real encrypted values with it alone: the backup is proven to hold the key the data needs, not merely a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select

from posomni.audit import service as audit
from posomni.audit.models import AuditEntry
from posomni.auth.principal import Actor
from posomni.database import Database
from posomni.keys.service import ENCRYPTED_COLUMNS, EncryptedColumn
from posomni.kit.errors import ValidationFailed
from posomni.security.crypto import (
    DecryptionError,
    EncryptionKey,
    EncryptionService,
    InvalidKeyError,
    StaticKeyProvider,
    parse_key,
)

CONFIRMED: Final = "keys.backup_confirmed"
DRILL_PASSED: Final = "keys.drill_passed"
DRILL_FAILED: Final = "keys.drill_failed"
TARGET: Final = "encryption_key"
MIN_LOCATIONS: Final = 2
# Values taken from each encrypted column: the oldest and the newest half of this many.
DRILL_SAMPLE: Final = 20


class NotEnoughLocations(ValidationFailed):
    code = "key_backup_locations"
    default_message = f"Name at least {MIN_LOCATIONS} separate places where the key is kept."


@dataclass(frozen=True)
class Confirmation:
    key_id: str
    by: str
    locations: list[str]
    at: datetime


@dataclass
class DrillResult:
    key_id: str  # the configured (current) key the drill is about
    entered_key_id: str | None
    sampled: int = 0
    decrypted: int = 0
    problems: list[str] = field(default_factory=list)
    at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.sampled > 0 and self.decrypted == self.sampled and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "key_id": self.key_id,
            "entered_key_id": self.entered_key_id,
            "sampled": self.sampled,
            "decrypted": self.decrypted,
            "problems": self.problems[:10],
        }


def parse_locations(text: str) -> list[str]:
    locations = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if len(locations) < MIN_LOCATIONS:
        raise NotEnoughLocations(details={"given": locations})
    return locations


async def confirm_backup(database: Database, crypto: EncryptionService, *, by: str, locations: list[str]) -> str:
    """Record that the current key is backed up, by whom and where. Returns the key id."""
    if len(locations) < MIN_LOCATIONS:
        raise NotEnoughLocations(details={"given": locations})
    key_id = crypto.current_key_id
    async with database.unit_of_work() as session:
        await audit.record(
            session, crypto, Actor.system(f"keys:{by}"), CONFIRMED, store_id=None, target_type=TARGET,
            target_id=key_id, details={"key_id": key_id, "by": by, "locations": locations},
        )  # fmt: skip
    return key_id


async def latest_confirmation(database: Database, crypto: EncryptionService, key_id: str) -> Confirmation | None:
    async with database.sessionmaker() as session:
        entry = await session.scalar(
            select(AuditEntry)
            .where(AuditEntry.action == CONFIRMED, AuditEntry.target_type == TARGET, AuditEntry.target_id == key_id)
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
    if entry is None:
        return None
    details = audit.decrypt_details(crypto, entry)
    return Confirmation(key_id, str(details.get("by", "")), list(details.get("locations", [])), entry.occurred_at)


async def latest_drill(database: Database, key_id: str) -> tuple[bool, datetime] | None:
    """(passed?, when) of the newest drill for this key."""
    async with database.sessionmaker() as session:
        entry = await session.scalar(
            select(AuditEntry)
            .where(
                AuditEntry.action.in_((DRILL_PASSED, DRILL_FAILED)),
                AuditEntry.target_type == TARGET,
                AuditEntry.target_id == key_id,
            )
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
    return None if entry is None else (entry.action == DRILL_PASSED, entry.occurred_at)


async def _sample(database: Database, column: EncryptedColumn, key_id: str) -> list[Any]:
    prefix = f"v1.{key_id}.%"
    half = DRILL_SAMPLE // 2
    rows: dict[int, Any] = {}
    async with database.sessionmaker() as session:
        for order in (column.model.id.asc(), column.model.id.desc()):
            for row in await session.scalars(
                select(column.model).where(column.column.like(prefix)).order_by(order).limit(half)
            ):
                rows[row.id] = row
    return list(rows.values())


async def drill(database: Database, crypto: EncryptionService, entered_key: str, *, by: str) -> DrillResult:
    """Decrypt a sample of the values under the current key with `entered_key` alone; record the outcome."""
    result = DrillResult(key_id=crypto.current_key_id, entered_key_id=None)
    try:
        key = EncryptionKey.from_bytes(parse_key(entered_key, setting="the entered key"))
    except InvalidKeyError as exc:
        result.problems.append(str(exc).split(";", 1)[0])
    else:
        result.entered_key_id = key.key_id
        if key.key_id != result.key_id:
            result.problems.append(
                f"the entered key has id {key.key_id}, but the data is encrypted under key id {result.key_id}"
            )
        only_entered = EncryptionService(StaticKeyProvider(key))
        for column in ENCRYPTED_COLUMNS:
            for row in await _sample(database, column, result.key_id):
                result.sampled += 1
                label = f"{column.name} of row {row.id}"
                try:
                    only_entered.decrypt(getattr(row, column.column.key), aad=column.aad(row), label=label)
                except DecryptionError as exc:
                    if len(result.problems) < 10:
                        result.problems.append(str(exc))
                else:
                    result.decrypted += 1
        if result.sampled == 0:
            result.problems.append(
                "no value is encrypted under the current key yet: run `posomni keys confirm-backup` first "
                "(it writes one), then the drill"
            )
    async with database.unit_of_work() as session:
        entry = await audit.record(
            session, crypto, Actor.system(f"keys:{by}"), DRILL_PASSED if result.ok else DRILL_FAILED,
            store_id=None, target_type=TARGET, target_id=result.key_id, details={"by": by, **result.as_dict()},
        )  # fmt: skip
        result.at = entry.occurred_at
    return result
