from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from posomni.kit.db import Base, BigIntId, IdMixin, TimestampMixin
from posomni.kit.time import utcnow


class Category(IdMixin, TimestampMixin, Base):
    __tablename__ = "categories"
    __table_args__ = (CheckConstraint("min_age IS NULL OR (min_age >= 0 AND min_age <= 99)", name="min_age"),)

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # Defaults for new products of the category; each product carries its own copy.
    age_restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    min_age: Mapped[int | None] = mapped_column(Integer, default=None)
    tax_class: Mapped[str] = mapped_column(String(32), default="standard")


class Product(IdMixin, TimestampMixin, Base):
    """A sellable item. Packs and cases point at their base unit: stock lives only on the base product."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price_non_negative"),
        CheckConstraint("cost_cents >= 0", name="cost_non_negative"),
        CheckConstraint("units_per_pack >= 1", name="units_per_pack_positive"),
        CheckConstraint(
            "(base_product_id IS NULL AND units_per_pack = 1) OR base_product_id IS NOT NULL",
            name="pack_has_base",
        ),
        CheckConstraint("min_age IS NULL OR (min_age >= 0 AND min_age <= 99)", name="min_age"),
        # Search is "every word of the query appears somewhere in search_text". PostgreSQL answers that from a
        # trigram index; SQLite has no trigram index type, so there this is an always-empty partial index (the
        # same index names on both schemas) and SQLite scans ix_products_search_text instead.
        Index(
            "ix_products_search_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
            sqlite_where=text("0"),
        ),
    )

    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str] = mapped_column(String(100), default="")
    size: Mapped[str] = mapped_column(String(40), default="")
    # Lower-cased name, brand and size, kept by the service for search without per-row functions.
    search_text: Mapped[str] = mapped_column(String(400), default="", index=True)
    category_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("categories.id", ondelete="RESTRICT"), index=True)
    tax_class: Mapped[str] = mapped_column(String(32), default="standard")
    age_restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    min_age: Mapped[int | None] = mapped_column(Integer, default=None)
    deposit_class: Mapped[str | None] = mapped_column(String(32), default=None)
    # Money in integer cents.
    price_cents: Mapped[int] = mapped_column(Integer)
    cost_cents: Mapped[int] = mapped_column(Integer, default=0)
    base_product_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("products.id", ondelete="RESTRICT"), index=True, default=None
    )
    # Base units sold by one of this product: 6 for a 6-pack, 24 for a case of 24.
    units_per_pack: Mapped[int] = mapped_column(Integer, default=1)
    # Vintage, season and similar attributes of one UPC: one item with attributes, never duplicates.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    barcodes: Mapped[list[Barcode]] = relationship(back_populates="product", lazy="raise")


class Barcode(Base):
    __tablename__ = "barcodes"

    # The one normalised form, GTIN-14; every scan is normalised before lookup.
    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    product_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("products.id", ondelete="CASCADE"), index=True)

    product: Mapped[Product] = relationship(back_populates="barcodes", lazy="raise")


class PriceChange(IdMixin, Base):
    """One row per price set on a product (its first price included), for the back office's price history."""

    __tablename__ = "price_changes"
    __table_args__ = (
        CheckConstraint("new_price_cents >= 0", name="new_price_non_negative"),
        Index("ix_price_changes_product_time", "product_id", "changed_at"),
    )

    product_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("products.id", ondelete="RESTRICT"))
    # Cents; None when the product was created with this price.
    old_price_cents: Mapped[int | None] = mapped_column(Integer, default=None)
    new_price_cents: Mapped[int] = mapped_column(Integer)
    # None for changes made by the command line (a CSV import).
    changed_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), default=None)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # "api" or "import".
    source: Mapped[str] = mapped_column(String(16), default="api")
    reason: Mapped[str] = mapped_column(String(200), default="")


class PromotionKind(enum.StrEnum):
    # Each complete set of `quantity` items of the group costs `price_cents` together ("2 for $30").
    QUANTITY_FOR_PRICE = "quantity_for_price"
    # `percent_off_bp` off once `quantity` items of the group are bought ("any 6 wines 10 % off").
    PERCENT_OFF_QUANTITY = "percent_off_quantity"
    # Singles of one base product bought by the full case (`quantity` of them) cost `price_cents` per case.
    CASE_PRICE = "case_price"


KIND_VALUES = ", ".join(f"'{k.value}'" for k in PromotionKind)


class MixMatchGroup(IdMixin, TimestampMixin, Base):
    """A set of sellable products that count together towards a mix & match promotion ("any 6 wines")."""

    __tablename__ = "mix_match_groups"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))


class MixMatchGroupMember(Base):
    __tablename__ = "mix_match_group_members"

    group_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("mix_match_groups.id", ondelete="CASCADE"), primary_key=True
    )
    # A sellable product (a single, or a pack counted as one item).
    product_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("products.id", ondelete="RESTRICT"), primary_key=True, index=True
    )


class Promotion(IdMixin, TimestampMixin, Base):
    """A promotion as data: the shapes the pricing engine takes (`sales.pricing.inputs`)."""

    __tablename__ = "promotions"
    __table_args__ = (
        CheckConstraint(f"kind IN ({KIND_VALUES})", name="kind_known"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("price_cents IS NULL OR price_cents >= 0", name="price_non_negative"),
        CheckConstraint("percent_off_bp IS NULL OR (percent_off_bp > 0 AND percent_off_bp <= 10000)", name="percent"),
        CheckConstraint(
            "(kind = 'quantity_for_price' AND group_id IS NOT NULL AND price_cents IS NOT NULL"
            " AND product_id IS NULL AND percent_off_bp IS NULL)"
            " OR (kind = 'percent_off_quantity' AND group_id IS NOT NULL AND percent_off_bp IS NOT NULL"
            " AND product_id IS NULL AND price_cents IS NULL)"
            " OR (kind = 'case_price' AND product_id IS NOT NULL AND price_cents IS NOT NULL"
            " AND group_id IS NULL AND percent_off_bp IS NULL)",
            name="shape",
        ),
    )

    code: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(24))
    # None: every store.
    store_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("stores.id", ondelete="RESTRICT"), index=True, default=None
    )
    group_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("mix_match_groups.id", ondelete="RESTRICT"), index=True, default=None
    )
    # Case price only: the base product whose singles are priced by the case.
    product_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("products.id", ondelete="RESTRICT"), index=True, default=None
    )
    # Items in a set; for a case price, singles in a case.
    quantity: Mapped[int] = mapped_column(Integer)
    # Cents for the whole set (or the whole case).
    price_cents: Mapped[int | None] = mapped_column(Integer, default=None)
    # Basis points (1000 = 10 %): an exact integer on every database, turned into a Decimal fraction for pricing.
    percent_off_bp: Mapped[int | None] = mapped_column(Integer, default=None)
    # sales.pricing.SetMode for percent-off promotions.
    mode: Mapped[str | None] = mapped_column(String(24), default=None)
    starts_at: Mapped[datetime | None] = mapped_column(default=None)
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
