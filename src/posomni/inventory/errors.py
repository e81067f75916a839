"""Inventory refusals, each with a stable code."""

from __future__ import annotations

from posomni.kit.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


class InsufficientStock(Conflict):
    """`details["items"]`: one `{"product_id", "requested", "available"}` per short product (base units)."""

    code = "insufficient_stock"
    default_message = "Not enough stock."


class InvalidStockItems(ValidationFailed):
    code = "invalid_stock_items"
    default_message = "Stock items are (base product id, base units) with both positive whole numbers."


class NotABaseUnit(ValidationFailed):
    code = "not_a_base_unit"
    default_message = "Stock is kept on base units only: use the pack's base product and multiply by its size."


class UnknownProduct(ValidationFailed):
    code = "unknown_product"
    default_message = "No product has this id."


class StockNotReserved(Conflict):
    code = "stock_not_reserved"
    default_message = "Nothing is reserved under this reference."


class ReservationMismatch(Conflict):
    code = "reservation_mismatch"
    default_message = "The items differ from what was reserved under this reference."


class StoreNotFound(NotFound):
    code = "store_not_found"
    default_message = "No store has this id."


class StoreRequired(ValidationFailed):
    code = "store_required"
    default_message = "Say which store (store_id): your account is not tied to one."


class OtherStore(PermissionDenied):
    code = "other_store"
    default_message = "Your account works in another store."


class InvalidAdjustment(ValidationFailed):
    code = "invalid_adjustment"
    default_message = "The adjustment is not valid."


class DuplicateInvoice(Conflict):
    code = "duplicate_invoice"
    default_message = "This supplier's invoice number was already received."


class InvoiceNotFound(NotFound):
    code = "invoice_not_found"
    default_message = "No purchase invoice has this id."


class CountNotFound(NotFound):
    code = "count_not_found"
    default_message = "No stock count has this id."


class CountNotOpen(Conflict):
    code = "count_not_open"
    default_message = "This count is already posted or cancelled."


class CountOutOfDate(Conflict):
    code = "count_out_of_date"
    default_message = "Stock moved since these products were counted: posting would leave negative stock. Recount."
