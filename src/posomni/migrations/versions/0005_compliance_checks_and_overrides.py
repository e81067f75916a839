"""compliance: minimum age checked, overrides linked to the refused check, tender-time events

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 23:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_METHODS = "method IN ('scan', 'manual', 'override', 'profile')"
NEW_METHODS = "method IN ('scan', 'manual', 'override', 'profile', 'tender')"


def upgrade() -> None:
    # Batch mode: SQLite can neither add a foreign key nor replace a check constraint in place, so the table is
    # rebuilt; PostgreSQL gets plain ALTER TABLE statements.
    with op.batch_alter_table("compliance_events") as batch:
        batch.add_column(sa.Column("checked_min_age", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("overrides_event_id", BigIntId, nullable=True))
        batch.create_foreign_key(
            op.f("fk_compliance_events_overrides_event_id_compliance_events"),
            "compliance_events",
            ["overrides_event_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch.drop_constraint(op.f("ck_compliance_events_method_known"), type_="check")
        batch.create_check_constraint(op.f("ck_compliance_events_method_known"), NEW_METHODS)
    # Unique: one override per refusal. NULLs (every other event) do not collide on either backend.
    op.create_index("ix_compliance_events_overrides_event_id", "compliance_events", ["overrides_event_id"], unique=True)
    op.create_index(
        "ix_compliance_events_store_business_date", "compliance_events", ["store_id", "business_date"], unique=False
    )


def downgrade() -> None:
    # Tender-time events ('tender') do not fit the old constraint, and compliance records are never deleted to
    # make a downgrade pass: with such rows present the downgrade fails, as it should.
    op.drop_index("ix_compliance_events_store_business_date", table_name="compliance_events")
    op.drop_index("ix_compliance_events_overrides_event_id", table_name="compliance_events")
    with op.batch_alter_table("compliance_events") as batch:
        batch.drop_constraint(op.f("ck_compliance_events_method_known"), type_="check")
        batch.create_check_constraint(op.f("ck_compliance_events_method_known"), OLD_METHODS)
        batch.drop_constraint(op.f("fk_compliance_events_overrides_event_id_compliance_events"), type_="foreignkey")
        batch.drop_column("overrides_event_id")
        batch.drop_column("checked_min_age")
