"""Compliance refusals. Each has a stable code; the ones that follow a recorded decision keep their records
(`keeps_records`), so the refused check's event and audit entry are committed although the request fails."""

from __future__ import annotations

from typing import ClassVar

from posomni.kit.errors import Conflict, PosError, ValidationFailed


class IdRefused(PosError):
    """A proof-of-age check that did not pass; `details` carries the event id (for an override) and whether a
    manager may override it."""

    status_code = 422
    keeps_records = True
    # The compliance event's `reason` this error reports.
    reason: ClassVar[str] = ""


class Underage(IdRefused):
    code = "underage"
    reason = "underage"
    default_message = "The customer is under the minimum age for this sale. Do not sell."


class IdExpired(IdRefused):
    code = "id_expired"
    reason = "expired"
    default_message = "The ID has expired. Ask for another ID, or a manager may override."


class IdNotYetIssued(IdRefused):
    code = "id_not_yet_issued"
    reason = "not_yet_issued"
    default_message = "The ID's issue date is in the future. Ask for another ID, or a manager may override."


class IdMissingExpiry(IdRefused):
    code = "id_missing_expiry"
    reason = "missing_expiry"
    default_message = "No expiry date could be read. Check the card by eye and use manual entry."


class IdMissingDob(IdRefused):
    code = "id_missing_dob"
    reason = "missing_dob"
    default_message = "No date of birth could be read. Check the card by eye and use manual entry."


class IdUnreadable(IdRefused):
    code = "id_unreadable"
    reason = "unreadable"
    default_message = (
        "The ID barcode could not be read. Never guess: inspect the card, compare the photo and use manual entry."
    )


class OutsideSaleHours(PosError):
    status_code = 409
    code = "outside_sale_hours"
    default_message = "Alcohol may not be sold at this time of day in this store."
    keeps_records = True


class ClerkTooYoung(PosError):
    status_code = 409
    code = "clerk_too_young"
    default_message = "This cashier is below the store's minimum age to sell alcohol; a manager must approve the sale."
    keeps_records = True


class AgeVerificationRequired(PosError):
    # Not a refusal of anyone, just the prompt to check an ID: nothing is recorded, so nothing is kept.
    status_code = 409
    code = "age_verification_required"
    default_message = "This sale has age-restricted items: check the customer's ID first."


class OverrideNotAllowed(PosError):
    status_code = 409
    code = "override_not_allowed"
    default_message = "This refusal cannot be overridden."
    keeps_records = True


class AlreadyOverridden(Conflict):
    code = "already_overridden"
    default_message = "This check has already been overridden."


class ManualEntryIncomplete(ValidationFailed):
    code = "manual_entry_incomplete"
    default_message = "Manual entry needs the date of birth, the expiry date, the document type and the photo compared."


class ProfileNotAccepted(PosError):
    status_code = 409
    code = "profile_not_accepted"
    default_message = "This customer's verified profile cannot be used instead of an ID here."


class SaleNotOpen(Conflict):
    code = "sale_not_open"
    default_message = "ID checks can be added only to an open sale."


REFUSALS_BY_REASON: dict[str, type[IdRefused]] = {
    cls.reason: cls for cls in (Underage, IdExpired, IdNotYetIssued, IdMissingExpiry, IdMissingDob, IdUnreadable)
}
