"""Staff accounts: create, change, disable, reset. Every change is audited and ends the sessions it affects."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.auth.service import end_all_sessions, normalise_username
from posomni.kit.errors import Conflict, NotFound, ValidationFailed
from posomni.security.crypto import EncryptionService
from posomni.security.passwords import MIN_BCRYPT_COST, check_password, check_pin, hash_password, hash_pin
from posomni.stores.models import Store
from posomni.users.models import Role, User
from posomni.users.schemas import UserCreate, UserOut, UserUpdate

STORE_ROLES = frozenset({Role.CASHIER, Role.MANAGER})


class WeakPassword(ValidationFailed):
    code = "weak_password"
    default_message = "The password does not meet the policy."


class WeakPin(ValidationFailed):
    code = "weak_pin"
    default_message = "The PIN is too easy to guess."


@dataclass(frozen=True)
class Hashing:
    cost: int = MIN_BCRYPT_COST

    def password(self, secret: str) -> str:
        return hash_password(secret, cost=self.cost, allow_insecure_cost=self.cost < MIN_BCRYPT_COST)

    def pin(self, secret: str) -> str:
        return hash_pin(secret, cost=self.cost, allow_insecure_cost=self.cost < MIN_BCRYPT_COST)


def out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        store_id=user.store_id,
        is_active=user.is_active,
        has_pin=user.pin_hash is not None,
        pin_locked_until=user.pin_locked_until,
        birth_date=user.birth_date,
        last_login_at=user.last_login_at,
        created_at=user.created_at,
    )


def _check_password(password: str, username: str) -> None:
    problems = check_password(password, username=username)
    if problems:
        raise WeakPassword(details={"problems": [{"code": p.code, "message": p.message} for p in problems]})


def _check_pin(pin: str) -> None:
    problems = check_pin(pin)
    if problems:
        raise WeakPin(details={"problems": [{"code": p.code, "message": p.message} for p in problems]})


async def _check_store(session: AsyncSession, role: Role, store_id: int | None) -> None:
    if role in STORE_ROLES and store_id is None:
        raise ValidationFailed("Cashiers and managers belong to a store.", details={"field": "store_id"})
    if store_id is not None and await session.get(Store, store_id) is None:
        raise ValidationFailed("Unknown store.", details={"store_id": store_id})


async def get(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.", details={"user_id": user_id})
    return user


async def by_username(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(func.lower(User.username) == normalise_username(username)))
    if user is None:
        raise NotFound("No such user.", details={"username": username})
    return user


async def create(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, data: UserCreate, hashing: Hashing
) -> User:
    username = normalise_username(data.username)
    if await session.scalar(select(User.id).where(func.lower(User.username) == username)) is not None:
        raise Conflict("That username is taken.", details={"username": username})
    await _check_store(session, data.role, data.store_id)
    _check_password(data.password, username)
    if data.pin is not None:
        _check_pin(data.pin)
    user = User(
        username=username,
        full_name=data.full_name.strip(),
        role=data.role.value,
        store_id=data.store_id,
        password_hash=hashing.password(data.password),
        pin_hash=hashing.pin(data.pin) if data.pin else None,
        birth_date=data.birth_date,
    )
    session.add(user)
    await session.flush()
    await audit.record(
        session, crypto, actor, "user.created", store_id=user.store_id, target_type="user", target_id=user.id,
        details={"username": username, "role": user.role, "store_id": user.store_id, "has_pin": data.pin is not None},
    )  # fmt: skip
    return user


async def list_users(
    session: AsyncSession, *, store_id: int | None = None, include_inactive: bool = True
) -> list[User]:
    query = select(User).order_by(User.username)
    if store_id is not None:
        query = query.where(User.store_id == store_id)
    if not include_inactive:
        query = query.where(User.is_active.is_(True))
    return list(await session.scalars(query))


async def update(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, user_id: int, data: UserUpdate
) -> User:
    user = await get(session, user_id)
    changes = data.model_dump(exclude_unset=True)
    # An explicit null leaves the role as it is, as it does the name (the fuzzer sent `"role": null`).
    role = Role(changes.get("role") or user.role)
    store_id = changes.get("store_id", user.store_id)
    await _check_store(session, role, store_id)
    before = {"role": user.role, "store_id": user.store_id, "full_name": user.full_name}
    if "full_name" in changes and changes["full_name"] is not None:
        user.full_name = changes["full_name"].strip()
    if "birth_date" in changes:
        user.birth_date = changes["birth_date"]
    if role.value != user.role or store_id != user.store_id:
        user.role = role.value
        user.store_id = store_id
        # A token carries the role and store it was issued for; after a change it must not keep working.
        end_all_sessions(user)
    await audit.record(
        session, crypto, actor, "user.updated", store_id=user.store_id, target_type="user", target_id=user.id,
        details={"before": before, "changes": {k: str(v) for k, v in changes.items()}},
    )  # fmt: skip
    return user


async def set_active(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, user_id: int, active: bool
) -> User:
    user = await get(session, user_id)
    if not active and actor.user_id == user.id:
        raise ValidationFailed("You cannot disable your own account.")
    user.is_active = active
    if not active:
        end_all_sessions(user)
    await audit.record(
        session, crypto, actor, "user.enabled" if active else "user.disabled",
        store_id=user.store_id, target_type="user", target_id=user.id, details={"username": user.username},
    )  # fmt: skip
    return user


async def end_sessions(session: AsyncSession, crypto: EncryptionService, actor: Actor, user_id: int) -> User:
    user = await get(session, user_id)
    end_all_sessions(user)
    await audit.record(
        session, crypto, actor, "user.sessions_revoked", store_id=user.store_id, target_type="user",
        target_id=user.id, details={"username": user.username},
    )  # fmt: skip
    return user


async def reset_password(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, user_id: int, password: str, hashing: Hashing
) -> User:
    user = await get(session, user_id)
    _check_password(password, user.username)
    user.password_hash = hashing.password(password)
    user.failed_login_attempts = 0
    end_all_sessions(user)
    await audit.record(
        session, crypto, actor, "user.password_reset", store_id=user.store_id, target_type="user",
        target_id=user.id, details={"username": user.username},
    )  # fmt: skip
    return user


async def set_pin(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, user_id: int, pin: str, hashing: Hashing
) -> User:
    user = await get(session, user_id)
    _check_pin(pin)
    user.pin_hash = hashing.pin(pin)
    user.failed_pin_attempts = 0
    user.pin_locked_until = None
    await audit.record(
        session, crypto, actor, "user.pin_set", store_id=user.store_id, target_type="user", target_id=user.id,
        details={"username": user.username},
    )  # fmt: skip
    return user
