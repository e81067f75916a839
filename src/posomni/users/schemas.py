from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from posomni.users.models import Role


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    full_name: str = Field(min_length=1, max_length=200)
    role: Role
    store_id: int | None = Field(default=None, ge=1)
    password: str = Field(min_length=1, max_length=256)
    pin: str | None = Field(default=None, pattern=r"^[0-9]{4,8}$")
    birth_date: date | None = None


class UserUpdate(BaseModel):
    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None
    store_id: int | None = Field(default=None, ge=1)
    birth_date: date | None = None


class PasswordReset(BaseModel):
    password: str = Field(min_length=1, max_length=256)


class PinChange(BaseModel):
    pin: str = Field(pattern=r"^[0-9]{4,8}$")


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    full_name: str
    role: str
    store_id: int | None
    is_active: bool
    has_pin: bool
    pin_locked_until: datetime | None
    birth_date: date | None
    last_login_at: datetime | None
    created_at: datetime
