"""backup verification errors and retention

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import posomni.kit.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns: SQLite adds them in place, no batch rebuild needed.
    op.add_column("backup_records", sa.Column("verify_error", sa.Text(), nullable=True))
    op.add_column("backup_records", sa.Column("pruned_at", posomni.kit.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("backup_records") as batch:
        batch.drop_column("pruned_at")
        batch.drop_column("verify_error")
