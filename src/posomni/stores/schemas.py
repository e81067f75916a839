from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StoreOut(BaseModel):
    id: int
    code: str
    name: str
    timezone: str
    address: str
    state: str
    county: str
    currency: str
    # Exact decimal fractions as strings ("0.06"), never floats.
    state_tax_rate: str
    local_tax_rate: str
    is_active: bool


class StoreUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    address: str | None = Field(default=None, max_length=300)
    county: str | None = Field(default=None, max_length=80)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    state_tax_rate: str | None = Field(default=None, max_length=16, description='A decimal fraction, e.g. "0.06"')
    local_tax_rate: str | None = Field(default=None, max_length=16, description='A decimal fraction, e.g. "0.01"')


class StoreSettingsOut(BaseModel):
    """The policies in force: stored values, with the default for every key not stored."""

    store_id: int
    settings: dict[str, Any]


class RegisterOut(BaseModel):
    id: int
    store_id: int
    code: str
    name: str
    card_reader_id: str | None
    is_active: bool


class RegisterCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=100)
    card_reader_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class RegisterUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    # Explicit null unpairs the reader; an absent field leaves it as it is.
    card_reader_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    is_active: bool | None = None
