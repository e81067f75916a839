from __future__ import annotations

from posomni.kit.errors import Conflict, NotFound, PosError, ValidationFailed


class SaleNotFound(NotFound):
    code = "sale_not_found"
    default_message = "No such sale."


class SaleNotOpen(Conflict):
    code = "sale_not_open"
    default_message = "This sale can no longer be changed."


class SaleCompleting(Conflict):
    code = "sale_completing"
    default_message = "This sale is being completed; wait for the result."


class EmptySale(ValidationFailed):
    code = "empty_sale"
    default_message = "Scan at least one item first."


class LineNotFound(NotFound):
    code = "line_not_found"
    default_message = "No such line on this sale."


class ProductInactive(ValidationFailed):
    code = "product_inactive"
    default_message = "This product is not for sale."


class TendersDoNotCover(ValidationFailed):
    code = "tenders_do_not_cover_total"
    default_message = "The tenders do not add up to the total."


class TenderInvalid(ValidationFailed):
    code = "tender_invalid"
    default_message = "A tender is not valid."


class CardNotReady(Conflict):
    code = "card_payment_not_ready"
    default_message = "The card payment is not authorised yet; wait for the reader or cancel it."


class ReturnInvalid(ValidationFailed):
    code = "return_invalid"
    default_message = "This return is not possible."


class VoidNotAllowed(Conflict):
    code = "void_not_allowed"
    default_message = "Only today's completed sales without returns can be voided."


class CheckoutFailed(PosError):
    """A saga step failed for a reason that is neither the client's nor a known business refusal."""

    status_code = 502
    code = "checkout_failed"
    default_message = "The sale could not be completed; nothing was charged. Try again."
