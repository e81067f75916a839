"""The signed-in user as every service sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from posomni.auth.permissions import Permission, allows


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    role: str
    store_id: int | None
    register_id: int | None
    jti: str
    expires_at: datetime
    via: Literal["bearer", "cookie"]
    birth_date_iso: str | None = None

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something, for audit entries: a signed-in user, or the system (CLI, worker) with a name."""

    user_id: int | None
    role: str | None
    store_id: int | None = None
    register_id: int | None = None
    request_id: str | None = None
    name: str | None = None

    @classmethod
    def of(cls, principal: Principal, request_id: str | None) -> Actor:
        return cls(
            user_id=principal.user_id,
            role=principal.role,
            store_id=principal.store_id,
            register_id=principal.register_id,
            request_id=request_id,
            name=principal.username,
        )

    @classmethod
    def system(cls, name: str, request_id: str | None = None) -> Actor:
        return cls(user_id=None, role=None, name=name, request_id=request_id)
