"""stripe events and payment disputes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 23:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import posomni.kit.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # New tables only: plain CREATE TABLE works on both backends, no batch mode needed.
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("created", posomni.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", posomni.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", posomni.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    op.create_index("ix_stripe_events_unprocessed", "stripe_events", ["processed_at", "received_at"], unique=False)
    op.create_table(
        "payment_disputes",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_dispute_id", sa.String(length=128), nullable=False),
        sa.Column("provider_reference", sa.String(length=128), nullable=True),
        sa.Column("payment_id", BIGINT_ID, nullable=True),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("evidence_due_at", posomni.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("created_at", posomni.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", posomni.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_cents >= 0", name=op.f("ck_payment_disputes_amount_non_negative")),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_disputes_payment_id_payments"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_disputes")),
        sa.UniqueConstraint(
            "provider", "provider_dispute_id", name=op.f("uq_payment_disputes_provider_provider_dispute_id")
        ),
    )
    op.create_index(op.f("ix_payment_disputes_payment_id"), "payment_disputes", ["payment_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_payment_disputes_payment_id"), table_name="payment_disputes")
    op.drop_table("payment_disputes")
    op.drop_index("ix_stripe_events_unprocessed", table_name="stripe_events")
    op.drop_table("stripe_events")
