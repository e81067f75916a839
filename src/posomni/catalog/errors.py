"""Catalog refusals, each with a stable code. Barcode format errors are `barcodes.BarcodeError` (422,
`invalid_characters` / `invalid_length` / `invalid_check_digit`)."""

from __future__ import annotations

from posomni.kit.errors import Conflict, NotFound, ValidationFailed


class UnknownBarcode(NotFound):
    code = "unknown_barcode"
    default_message = "No product has this barcode."


class CouponNotAProduct(ValidationFailed):
    code = "coupon_not_a_product"
    default_message = "This is a coupon barcode, not a product."


class DuplicateBarcode(Conflict):
    code = "duplicate_barcode"
    default_message = "Another product already has this barcode."


class BarcodeNotOnProduct(NotFound):
    code = "barcode_not_found"
    default_message = "This product has no such barcode."


class DuplicateSku(Conflict):
    code = "duplicate_sku"
    default_message = "Another product already has this SKU."


class ProductNotFound(NotFound):
    code = "product_not_found"
    default_message = "No product has this id."


class UnknownCategory(ValidationFailed):
    code = "unknown_category"
    default_message = "No category has this id or code."


class CategoryNotFound(NotFound):
    code = "category_not_found"
    default_message = "No category has this id."


class DuplicateCategory(Conflict):
    code = "duplicate_category"
    default_message = "A category with this code already exists."


class InvalidPack(ValidationFailed):
    """`details["reason"]`: base_missing, base_is_a_pack, base_is_itself, units_per_pack, pack_needs_base,
    has_packs, has_stock."""

    code = "invalid_pack"
    default_message = "A pack points at a base unit and holds at least 2 of it."


class InvalidProduct(ValidationFailed):
    code = "invalid_product"
    default_message = "The product is not valid."


class PromotionNotFound(NotFound):
    code = "promotion_not_found"
    default_message = "No promotion has this id."


class GroupNotFound(NotFound):
    code = "group_not_found"
    default_message = "No mix & match group has this id."


class DuplicatePromotion(Conflict):
    code = "duplicate_promotion"
    default_message = "A promotion or group with this code already exists."


class InvalidPromotion(ValidationFailed):
    code = "invalid_promotion"
    default_message = "The promotion is not valid."
