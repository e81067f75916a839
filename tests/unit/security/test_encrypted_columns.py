"""Key rotation and the recovery drill cover every encrypted column. Encrypted columns are named `*_encrypted`;
one missing from `keys.service.ENCRYPTED_COLUMNS` would stay under the old key after `rotate-key`, and be lost
for good when that key is retired."""

from __future__ import annotations

from posomni.keys.service import ENCRYPTED_COLUMNS
from posomni.models import metadata


def test_rotation_covers_every_encrypted_column_in_the_schema() -> None:
    in_schema = {
        f"{table.name}.{column.name}"
        for table in metadata.tables.values()
        for column in table.columns
        if column.name.endswith("_encrypted")
    }
    rotated = {f"{entry.model.__tablename__}.{entry.column.key}" for entry in ENCRYPTED_COLUMNS}
    assert in_schema, "no encrypted columns found: has the naming convention changed?"
    assert rotated == in_schema


def test_each_rotated_column_has_a_distinct_name() -> None:
    names = [entry.name for entry in ENCRYPTED_COLUMNS]
    assert len(names) == len(set(names))
