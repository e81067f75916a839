from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    register_id: int | None = Field(default=None, ge=1)


class PinLoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    pin: str = Field(min_length=4, max_length=8, pattern=r"^[0-9]+$")
    register_id: int | None = Field(default=None, ge=1)


class SessionOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_at: datetime
    csrf_token: str
    user: MeOut


class MeOut(BaseModel):
    id: int
    username: str
    full_name: str
    role: str
    store_id: int | None
    register_id: int | None
    permissions: list[str]
