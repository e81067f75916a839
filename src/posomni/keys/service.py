"""Key rotation: re-encrypt every encrypted value under the current key, in batches, resumably.

Each batch is its own transaction, and a value already under the current key is left alone, so a run that
crashed half-way is finished by running it again. Success is reported only after every value has been read
back with the current key alone — proof that the old key is no longer needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import InstrumentedAttribute

from posomni.audit import service as audit
from posomni.audit.chain import payload_aad
from posomni.audit.models import AuditEntry
from posomni.auth.principal import Actor
from posomni.compliance.models import ComplianceEvent, dob_aad, expiry_aad
from posomni.customers.models import Customer
from posomni.customers.models import dob_aad as customer_dob_aad
from posomni.database import Database
from posomni.security.crypto import DecryptionError, EncryptionService, StaticKeyProvider


@dataclass(frozen=True)
class EncryptedColumn:
    name: str
    model: Any
    column: InstrumentedAttribute[Any]
    aad: Callable[[Any], str]


# Every encrypted column in the schema. A new one must be added here, or rotation would leave it behind.
ENCRYPTED_COLUMNS: tuple[EncryptedColumn, ...] = (
    EncryptedColumn(
        "audit_log.payload", AuditEntry, AuditEntry.payload_encrypted, lambda e: payload_aad(e.chain, e.seq)
    ),
    EncryptedColumn(
        "customers.date_of_birth", Customer, Customer.date_of_birth_encrypted, lambda c: customer_dob_aad(c.id)
    ),
    EncryptedColumn("compliance_events.dob", ComplianceEvent, ComplianceEvent.dob_encrypted, lambda e: dob_aad(e.id)),
    EncryptedColumn(
        "compliance_events.expiry", ComplianceEvent, ComplianceEvent.expiry_encrypted, lambda e: expiry_aad(e.id)
    ),
)


@dataclass
class ColumnReport:
    name: str
    total: int = 0
    rotated: int = 0
    already_current: int = 0
    unreadable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.name,
            "total": self.total,
            "rotated": self.rotated,
            "already_current": self.already_current,
            "unreadable": self.unreadable,
        }


ProgressCallback = Callable[[str, int, int], None]


def _batch(column: EncryptedColumn, after_id: int, size: int) -> Select[tuple[Any]]:
    """The next rows holding a value of `column`, in id order: batches resume where the last one ended."""
    return (
        select(column.model)
        .where(column.column.is_not(None), column.model.id > after_id)
        .order_by(column.model.id)
        .limit(size)
    )


async def count_values(database: Database, column: EncryptedColumn) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).where(column.column.is_not(None))) or 0)


async def _rotate_column(
    database: Database,
    crypto: EncryptionService,
    column: EncryptedColumn,
    *,
    batch_size: int,
    dry_run: bool,
    progress: ProgressCallback | None,
) -> ColumnReport:
    report = ColumnReport(column.name, total=await count_values(database, column))
    last_id = 0
    done = 0
    while True:
        async with database.unit_of_work() as session:
            rows = list(await session.scalars(_batch(column, last_id, batch_size).with_for_update()))
            if not rows:
                break
            for row in rows:
                token = getattr(row, column.column.key)
                if not crypto.needs_rotation(token):
                    report.already_current += 1
                    continue
                label = f"{column.name} of row {row.id}"
                try:
                    fresh = crypto.reencrypt(token, aad=column.aad(row), label=label)
                except DecryptionError as exc:
                    report.unreadable.append(str(exc))
                    continue
                report.rotated += 1
                if not dry_run:
                    setattr(row, column.column.key, fresh)
            last_id = rows[-1].id
            if dry_run:
                await session.rollback()
        done += len(rows)
        if progress is not None:
            progress(column.name, done, report.total)
    return report


async def rotate(
    database: Database,
    crypto: EncryptionService,
    *,
    batch_size: int = 500,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> list[ColumnReport]:
    return [
        await _rotate_column(database, crypto, column, batch_size=batch_size, dry_run=dry_run, progress=progress)
        for column in ENCRYPTED_COLUMNS
    ]


async def verify_current_key_only(
    database: Database, current_key: str, *, batch_size: int = 1000
) -> list[ColumnReport]:
    """Read every encrypted value with the current key alone; list every one that fails."""
    only_current = EncryptionService(StaticKeyProvider.from_settings(current_key))
    reports = []
    for column in ENCRYPTED_COLUMNS:
        report = ColumnReport(column.name)
        last_id = 0
        while True:
            async with database.sessionmaker() as session:
                rows = list(await session.scalars(_batch(column, last_id, batch_size)))
            if not rows:
                break
            for row in rows:
                report.total += 1
                try:
                    only_current.decrypt(
                        getattr(row, column.column.key), aad=column.aad(row), label=f"{column.name} of row {row.id}"
                    )
                except DecryptionError as exc:
                    report.unreadable.append(str(exc))
            last_id = rows[-1].id
        reports.append(report)
    return reports


async def record_rotation(database: Database, crypto: EncryptionService, reports: list[ColumnReport]) -> None:
    async with database.unit_of_work() as session:
        await audit.record(
            session, crypto, Actor.system("rotate-key"), "keys.rotated", store_id=None,
            details={"key_id": crypto.current_key_id, "columns": [r.as_dict() for r in reports]},
        )  # fmt: skip
