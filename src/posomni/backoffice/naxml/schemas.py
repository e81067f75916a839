"""The pricebook as read from either source (an NAXML item-maintenance file, the REST pricebook), before any
check against the catalog: every value is the text the source gave, None when absent."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from posomni.backoffice.schemas import Outcome


class Action(enum.StrEnum):
    # Create the item or department, or change it when it exists.
    ADDCHANGE = "addchange"
    # Change only: an unknown item or department is an error.
    CHANGE = "change"
    # Items are deactivated (never removed: sales refer to them); departments are removed when empty.
    DELETE = "delete"


# RecordAction types as back offices send them → what is done.
ACTIONS = {
    "addchange": Action.ADDCHANGE, "add": Action.ADDCHANGE, "create": Action.ADDCHANGE,
    "change": Action.CHANGE, "update": Action.CHANGE, "delete": Action.DELETE, "remove": Action.DELETE,
}  # fmt: skip


@dataclass(frozen=True)
class ItemRecord:
    # Where the record is: its line in an XML file, its 1-based index in the REST answer's "items".
    position: int
    action: str
    pos_code: str | None = None
    pos_code_format: str | None = None
    pos_code_modifier: str | None = None
    description: str | None = None
    merchandise_code: str | None = None
    regular_sell_price: str | None = None
    selling_units: str | None = None
    tax_strategy: str | None = None
    sales_restriction: str | None = None
    active: str | None = None
    # Fields the source gave a value of the wrong kind (a list where text belongs).
    invalid: tuple[str, ...] = ()


@dataclass(frozen=True)
class DepartmentRecord:
    position: int
    action: str
    merchandise_code: str | None = None
    description: str | None = None
    tax_strategy: str | None = None
    sales_restriction: str | None = None
    invalid: tuple[str, ...] = ()


@dataclass
class Pricebook:
    # "naxml" or "rest": names the fields in error messages the way the source spells them.
    source: str
    items: list[ItemRecord] = field(default_factory=list)
    departments: list[DepartmentRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PricebookFetch:
    """What `BackOfficeClient.fetch_pricebook` got: the body when it changed, or why there is none."""

    outcome: Outcome
    status_code: int | None = None
    # 304 to our If-None-Match: the pricebook is the one applied last time.
    not_modified: bool = False
    body: bytes | None = None
    etag: str | None = None
    error: str | None = None

    @property
    def fetched(self) -> bool:
        return self.outcome is Outcome.DELIVERED and not self.not_modified
