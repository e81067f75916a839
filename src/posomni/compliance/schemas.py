from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_ID = 2**63 - 1


def _id() -> Any:
    # Bounded so an absurd id is a 422, not a 64-bit overflow inside the database driver.
    return Field(default=None, ge=1, le=MAX_ID)


ManualDocumentType = Literal["passport", "passport_card", "military_id", "driver_license", "id_card"]


class IdCheckIn(BaseModel):
    """A proof-of-age check: `scan` (the scanner's raw text), `manual` (typed from a passport, military ID or
    damaged card, photo compared) or `profile` (the customer's verified profile, where the store allows it)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    method: Literal["scan", "manual", "profile"]
    # Never stored, logged or echoed back, not even in a validation error.
    raw: str | None = Field(default=None, min_length=1, max_length=16_384, repr=False)
    dob: date | None = None
    expires: date | None = None
    issued: date | None = None
    document_type: ManualDocumentType | None = None
    jurisdiction: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}$")
    photo_compared: bool = False
    sale_id: int | None = _id()
    customer_id: int | None = _id()
    # Chain-wide users (admins) name the store; a store's own staff check in their store.
    store_id: int | None = _id()
    min_age: int | None = Field(default=None, ge=1, le=120)
    # Keep the verified date of birth on the customer's profile.
    save_to_profile: bool = False

    @model_validator(mode="after")
    def _raw_only_for_scans(self) -> IdCheckIn:
        if self.method == "scan" and self.raw is None:
            raise ValueError("a scan needs the scanner's text in `raw`")
        if self.method != "scan" and self.raw is not None:
            raise ValueError("`raw` belongs to scans only")
        return self


class IdCheckOut(BaseModel):
    event_id: int
    result: str
    method: str
    document_type: str | None
    jurisdiction: str | None
    checked_min_age: int | None
    business_date: date
    occurred_at: datetime
    sale_id: int | None
    customer_id: int | None
    # The card's under-21-until date disagrees with its date of birth; the later date was applied.
    under_21_mismatch: bool
    profile_saved: bool


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    manager_username: str = Field(min_length=1, max_length=64)
    manager_pin: str | None = Field(default=None, pattern=r"^[0-9]{4,8}$", repr=False)
    manager_password: str | None = Field(default=None, min_length=1, max_length=256, repr=False)
    reason: str = Field(min_length=3, max_length=300)
    # Only for a refusal without a date of birth (an unreadable scan): read off the card by the manager.
    dob: date | None = None
    expires: date | None = None
    document_type: ManualDocumentType | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> OverrideIn:
        if (self.manager_pin is None) == (self.manager_password is None):
            raise ValueError("give the manager's PIN or password (one of them)")
        if not self.reason.strip():
            raise ValueError("give a reason")
        return self


class OverrideOut(BaseModel):
    event_id: int
    overrides_event_id: int
    result: str
    reason: str | None
    override_manager_id: int
    business_date: date
    occurred_at: datetime


class EventOut(BaseModel):
    id: int
    occurred_at: datetime
    business_date: date
    store_id: int
    register_id: int | None
    clerk_id: int
    customer_id: int | None
    sale_id: int | None
    method: str
    document_type: str | None
    jurisdiction: str | None
    result: str
    reason: str | None
    checked_min_age: int | None
    override_manager_id: int | None
    override_reason: str | None
    overrides_event_id: int | None


class Counts(BaseModel):
    checks: int = 0
    passed: int = 0
    refused: int = 0
    overridden: int = 0


class DayCounts(Counts):
    business_date: date


class ClerkCounts(Counts):
    clerk_id: int
    clerk: str


class RefusalOut(BaseModel):
    event_id: int
    occurred_at: datetime
    business_date: date
    store_id: int
    clerk_id: int
    clerk: str
    method: str
    reason: str | None
    document_type: str | None
    jurisdiction: str | None
    sale_id: int | None
    overridden_by_event_id: int | None


class OverrideReportOut(BaseModel):
    event_id: int
    occurred_at: datetime
    business_date: date
    store_id: int
    clerk_id: int
    clerk: str
    manager_id: int | None
    manager: str | None
    reason: str | None
    override_reason: str | None
    overrides_event_id: int | None
    sale_id: int | None


class UnverifiedSaleOut(BaseModel):
    sale_id: int
    receipt_number: str
    store_id: int
    business_date: date
    completed_at: datetime | None
    cashier_id: int
    required_min_age: int
    best_checked_min_age: int | None


class ClerkWithoutBirthDate(BaseModel):
    clerk_id: int
    clerk: str
    age_restricted_sales: int


class SummaryOut(BaseModel):
    date_from: date
    date_to: date
    store_id: int | None
    totals: Counts
    by_day: list[DayCounts]
    by_clerk: list[ClerkCounts]
    by_method: dict[str, int]
    refusals: list[RefusalOut]
    overrides: list[OverrideReportOut]
    # Must be zero: every completed sale of age-restricted items has a passing or overridden check.
    unverified_sales: int
    clerks_without_birth_date: list[ClerkWithoutBirthDate]


class UnverifiedSalesOut(BaseModel):
    date_from: date
    date_to: date
    store_id: int | None
    count: int
    sales: list[UnverifiedSaleOut]
