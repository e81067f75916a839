from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CustomerIn(BaseModel):
    name: str = Field(default="", max_length=200)
    # Written as people write it ("(813) 555-0101"); stored as digits.
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9()\-. ]{7,24}$")
    loyalty_card: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{4,32}$")


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    phone: str | None
    loyalty_card: str | None
    loyalty_points: int
    age_verified: bool
    age_verified_at: datetime | None
    age_verified_method: str | None
