"""catalog search, price history and promotions; purchasing, cycle counts and stock reservations

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 22:44:01.190943
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from posomni.kit.db import UTCDateTime

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = UTCDateTime(timezone=True)

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str = "RESTRICT") -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete=ondelete)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # Trigram matching for the product search (pg_trgm is a trusted extension: the database owner may create
        # it without being a superuser).
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # PostgreSQL: GIN trigram index. SQLite has no such index type: an always-empty partial index keeps the names
    # of both schemas equal (see catalog.models.Product).
    op.create_index(
        "ix_products_search_trgm",
        "products",
        ["search_text"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
        sqlite_where=sa.text("0"),
    )
    op.create_index("ix_stock_movements_store_reference", "stock_movements", ["store_id", "reference"], unique=False)

    op.create_table(
        "price_changes",
        sa.Column("product_id", BigIntId, nullable=False),
        sa.Column("old_price_cents", sa.Integer(), nullable=True),
        sa.Column("new_price_cents", sa.Integer(), nullable=False),
        sa.Column("changed_by", BigIntId, nullable=True),
        sa.Column("changed_at", Timestamp, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("id", BigIntId, nullable=False),
        sa.CheckConstraint("new_price_cents >= 0", name=op.f("ck_price_changes_new_price_non_negative")),
        _fk("price_changes", "changed_by", "users.id"),
        _fk("price_changes", "product_id", "products.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_changes")),
    )
    op.create_index("ix_price_changes_product_time", "price_changes", ["product_id", "changed_at"], unique=False)

    op.create_table(
        "mix_match_groups",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("id", BigIntId, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mix_match_groups")),
        sa.UniqueConstraint("code", name=op.f("uq_mix_match_groups_code")),
    )
    op.create_table(
        "mix_match_group_members",
        sa.Column("group_id", BigIntId, nullable=False),
        sa.Column("product_id", BigIntId, nullable=False),
        _fk("mix_match_group_members", "group_id", "mix_match_groups.id", ondelete="CASCADE"),
        _fk("mix_match_group_members", "product_id", "products.id"),
        sa.PrimaryKeyConstraint("group_id", "product_id", name=op.f("pk_mix_match_group_members")),
    )
    op.create_index(
        op.f("ix_mix_match_group_members_product_id"), "mix_match_group_members", ["product_id"], unique=False
    )
    op.create_table(
        "promotions",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("store_id", BigIntId, nullable=True),
        sa.Column("group_id", BigIntId, nullable=True),
        sa.Column("product_id", BigIntId, nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=True),
        sa.Column("percent_off_bp", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(length=24), nullable=True),
        sa.Column("starts_at", Timestamp, nullable=True),
        sa.Column("ends_at", Timestamp, nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("id", BigIntId, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint(
            "(kind = 'quantity_for_price' AND group_id IS NOT NULL AND price_cents IS NOT NULL"
            " AND product_id IS NULL AND percent_off_bp IS NULL)"
            " OR (kind = 'percent_off_quantity' AND group_id IS NOT NULL AND percent_off_bp IS NOT NULL"
            " AND product_id IS NULL AND price_cents IS NULL)"
            " OR (kind = 'case_price' AND product_id IS NOT NULL AND price_cents IS NOT NULL"
            " AND group_id IS NULL AND percent_off_bp IS NULL)",
            name=op.f("ck_promotions_shape"),
        ),
        sa.CheckConstraint(
            "kind IN ('quantity_for_price', 'percent_off_quantity', 'case_price')",
            name=op.f("ck_promotions_kind_known"),
        ),
        sa.CheckConstraint(
            "percent_off_bp IS NULL OR (percent_off_bp > 0 AND percent_off_bp <= 10000)",
            name=op.f("ck_promotions_percent"),
        ),
        sa.CheckConstraint("price_cents IS NULL OR price_cents >= 0", name=op.f("ck_promotions_price_non_negative")),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_promotions_quantity_positive")),
        _fk("promotions", "group_id", "mix_match_groups.id"),
        _fk("promotions", "product_id", "products.id"),
        _fk("promotions", "store_id", "stores.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
        sa.UniqueConstraint("code", name=op.f("uq_promotions_code")),
    )
    op.create_index(op.f("ix_promotions_group_id"), "promotions", ["group_id"], unique=False)
    op.create_index(op.f("ix_promotions_product_id"), "promotions", ["product_id"], unique=False)
    op.create_index(op.f("ix_promotions_store_id"), "promotions", ["store_id"], unique=False)

    op.create_table(
        "stock_reservations",
        sa.Column("store_id", BigIntId, nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("product_id", BigIntId, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_stock_reservations_quantity_positive")),
        _fk("stock_reservations", "product_id", "products.id"),
        _fk("stock_reservations", "store_id", "stores.id"),
        sa.PrimaryKeyConstraint("store_id", "reference", "product_id", name=op.f("pk_stock_reservations")),
    )

    op.create_table(
        "purchase_invoices",
        sa.Column("store_id", BigIntId, nullable=False),
        sa.Column("supplier", sa.String(length=100), nullable=False),
        sa.Column("invoice_number", sa.String(length=64), nullable=False),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.Column("received_by", BigIntId, nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("total_cost_cents", sa.Integer(), nullable=False),
        sa.Column("id", BigIntId, nullable=False),
        sa.CheckConstraint("total_cost_cents >= 0", name=op.f("ck_purchase_invoices_total_cost_non_negative")),
        _fk("purchase_invoices", "received_by", "users.id"),
        _fk("purchase_invoices", "store_id", "stores.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_invoices")),
        sa.UniqueConstraint("supplier", "invoice_number", name=op.f("uq_purchase_invoices_supplier_invoice_number")),
    )
    op.create_index(
        "ix_purchase_invoices_store_received", "purchase_invoices", ["store_id", "received_at"], unique=False
    )
    op.create_table(
        "purchase_invoice_lines",
        sa.Column("invoice_id", BigIntId, nullable=False),
        sa.Column("product_id", BigIntId, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("units_per_pack", sa.Integer(), nullable=False),
        sa.Column("stock_product_id", BigIntId, nullable=False),
        sa.Column("base_units", sa.Integer(), nullable=False),
        sa.Column("cost_cents", sa.Integer(), nullable=True),
        sa.Column("unit_cost_cents", sa.Integer(), nullable=True),
        sa.Column("id", BigIntId, nullable=False),
        sa.CheckConstraint(
            "cost_cents IS NULL OR cost_cents >= 0", name=op.f("ck_purchase_invoice_lines_cost_non_negative")
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_purchase_invoice_lines_quantity_positive")),
        sa.CheckConstraint("units_per_pack >= 1", name=op.f("ck_purchase_invoice_lines_units_per_pack_positive")),
        _fk("purchase_invoice_lines", "invoice_id", "purchase_invoices.id"),
        _fk("purchase_invoice_lines", "product_id", "products.id"),
        _fk("purchase_invoice_lines", "stock_product_id", "products.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_invoice_lines")),
    )
    op.create_index(
        op.f("ix_purchase_invoice_lines_invoice_id"), "purchase_invoice_lines", ["invoice_id"], unique=False
    )

    op.create_table(
        "stock_counts",
        sa.Column("store_id", BigIntId, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("started_by", BigIntId, nullable=True),
        sa.Column("closed_at", Timestamp, nullable=True),
        sa.Column("closed_by", BigIntId, nullable=True),
        sa.Column("id", BigIntId, nullable=False),
        sa.CheckConstraint("status IN ('open', 'posted', 'cancelled')", name=op.f("ck_stock_counts_status_known")),
        _fk("stock_counts", "closed_by", "users.id"),
        _fk("stock_counts", "started_by", "users.id"),
        _fk("stock_counts", "store_id", "stores.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_counts")),
    )
    op.create_index(op.f("ix_stock_counts_store_id"), "stock_counts", ["store_id"], unique=False)
    op.create_table(
        "stock_count_lines",
        sa.Column("count_id", BigIntId, nullable=False),
        sa.Column("product_id", BigIntId, nullable=False),
        sa.Column("expected", sa.Integer(), nullable=False),
        sa.Column("expected_at_count", sa.Integer(), nullable=True),
        sa.Column("counted", sa.Integer(), nullable=True),
        sa.Column("counted_at", Timestamp, nullable=True),
        sa.Column("variance", sa.Integer(), nullable=True),
        sa.Column("unit_cost_cents", sa.Integer(), nullable=True),
        sa.CheckConstraint("counted IS NULL OR counted >= 0", name=op.f("ck_stock_count_lines_counted_non_negative")),
        _fk("stock_count_lines", "count_id", "stock_counts.id"),
        _fk("stock_count_lines", "product_id", "products.id"),
        sa.PrimaryKeyConstraint("count_id", "product_id", name=op.f("pk_stock_count_lines")),
    )


def downgrade() -> None:
    op.drop_table("stock_count_lines")
    op.drop_index(op.f("ix_stock_counts_store_id"), table_name="stock_counts")
    op.drop_table("stock_counts")
    op.drop_index(op.f("ix_purchase_invoice_lines_invoice_id"), table_name="purchase_invoice_lines")
    op.drop_table("purchase_invoice_lines")
    op.drop_index("ix_purchase_invoices_store_received", table_name="purchase_invoices")
    op.drop_table("purchase_invoices")
    op.drop_table("stock_reservations")
    op.drop_index(op.f("ix_promotions_store_id"), table_name="promotions")
    op.drop_index(op.f("ix_promotions_product_id"), table_name="promotions")
    op.drop_index(op.f("ix_promotions_group_id"), table_name="promotions")
    op.drop_table("promotions")
    op.drop_index(op.f("ix_mix_match_group_members_product_id"), table_name="mix_match_group_members")
    op.drop_table("mix_match_group_members")
    op.drop_table("mix_match_groups")
    op.drop_index("ix_price_changes_product_time", table_name="price_changes")
    op.drop_table("price_changes")
    op.drop_index("ix_stock_movements_store_reference", table_name="stock_movements")
    op.drop_index("ix_products_search_trgm", table_name="products")
    # The pg_trgm extension stays: dropping it could break anything else in the database that uses it.
