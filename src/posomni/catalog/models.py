from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from posomni.kit.db import Base, BigIntId, IdMixin, TimestampMixin


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
