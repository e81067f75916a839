"""Sign-in with a password or a PIN, sign-out, and turning a token back into a principal."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.permissions import Permission, allows
from posomni.auth.principal import Actor, Principal
from posomni.auth.revocation import RevocationStore
from posomni.cache.ratelimit import RateLimiter
from posomni.kit.errors import NotAuthenticated, PosError, TooManyRequests, ValidationFailed
from posomni.kit.time import utcnow
from posomni.security.crypto import EncryptionService
from posomni.security.passwords import MIN_BCRYPT_COST, verify_or_dummy, verify_password, verify_pin
from posomni.security.tokens import AccessClaims, AccessTokenCodec, IssuedToken
from posomni.stores.models import Register
from posomni.users.models import Role, User

# Per account and per client address; the account's windows stack into a growing lock-out: after 5 failures
# wait a minute, after 10 in a quarter of an hour wait up to 15 minutes, after 20 in a day wait until the day
# has passed. Failures are counted per name, so an unknown name behaves exactly like a real one.
ACCOUNT_LIMITS = ("5/minute", "10/15minutes", "20/day")
ADDRESS_LIMITS = ("30/minute", "200/hour")
PIN_ATTEMPTS_BEFORE_LOCK = 5
PIN_LOCK_BASE = timedelta(minutes=15)
PIN_LOCK_MAX = timedelta(hours=24)


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    default_message = "Wrong username or password."
    keeps_records = True


class InvalidPin(NotAuthenticated):
    code = "invalid_pin"
    default_message = "Wrong user or PIN."
    keeps_records = True


class PinLocked(PosError):
    status_code = 423
    code = "pin_locked"
    default_message = "This PIN is locked after too many wrong attempts; sign in with the password or ask a manager."
    keeps_records = True


class TooManyAttempts(TooManyRequests):
    code = "too_many_attempts"
    default_message = "Too many sign-in attempts; wait before trying again."
    keeps_records = True


class TokenRevoked(NotAuthenticated):
    code = "token_revoked"
    default_message = "This session has been signed out; sign in again."


class SessionEnded(NotAuthenticated):
    code = "session_ended"
    default_message = "Your account changed or was disabled; sign in again."


class CsrfFailed(PosError):
    status_code = 403
    code = "csrf_failed"
    default_message = "The request is missing its CSRF token; reload the page and try again."


@dataclass(frozen=True)
class AuthAdapters:
    codec: AccessTokenCodec
    revocations: RevocationStore
    limiter: RateLimiter
    crypto: EncryptionService
    csrf_secret: bytes
    # bcrypt cost for new hashes and for the dummy check; 12 in production, lower only in tests.
    hash_cost: int = MIN_BCRYPT_COST
    account_limits: tuple[str, ...] = ACCOUNT_LIMITS
    address_limits: tuple[str, ...] = ADDRESS_LIMITS


@dataclass(frozen=True)
class SignedIn:
    user: User
    issued: IssuedToken
    csrf_token: str


def csrf_token_for(adapters: AuthAdapters, jti: str) -> str:
    """Bound to the session, so a cookie planted by another site cannot pass: the header must equal this."""
    return hmac.new(adapters.csrf_secret, f"csrf:{jti}".encode(), hashlib.sha256).hexdigest()


def normalise_username(username: str) -> str:
    return username.strip().lower()


async def _throttle(adapters: AuthAdapters, scope: str, account: str, address: str) -> None:
    checks = [(limit, f"{scope}:account", account) for limit in adapters.account_limits]
    checks += [(limit, f"{scope}:address", address) for limit in adapters.address_limits]
    waits = []
    for limit, kind, key in checks:
        result = await adapters.limiter.test(limit, kind, key)
        if not result.allowed:
            waits.append(result.retry_after_seconds)
    if waits:
        raise TooManyAttempts(max(waits))


async def _count_failure(adapters: AuthAdapters, scope: str, account: str, address: str) -> None:
    for limit in adapters.account_limits:
        await adapters.limiter.hit(limit, f"{scope}:account", account)
    for limit in adapters.address_limits:
        await adapters.limiter.hit(limit, f"{scope}:address", address)


async def _resolve_register(session: AsyncSession, user: User, register_id: int | None) -> int | None:
    if register_id is None:
        return None
    register = await session.get(Register, register_id)
    if register is None or not register.is_active:
        raise ValidationFailed("Unknown register.", details={"register_id": register_id})
    if user.store_id is not None and register.store_id != user.store_id:
        raise ValidationFailed("That register belongs to another store.", details={"register_id": register_id})
    return register.id


def _issue(adapters: AuthAdapters, user: User, register_id: int | None) -> IssuedToken:
    now = utcnow()
    # A token issued in the same second as "sign out everywhere" must not count as issued before it.
    if user.tokens_valid_after is not None and now < user.tokens_valid_after:
        now = user.tokens_valid_after
    return adapters.codec.issue(
        user_id=user.id, role=user.role, store_id=user.store_id, register_id=register_id, now=now
    )


async def login(
    session: AsyncSession,
    adapters: AuthAdapters,
    *,
    username: str,
    password: str,
    register_id: int | None,
    client_address: str,
    request_id: str | None,
) -> SignedIn:
    name = normalise_username(username)
    actor = Actor.system("sign-in", request_id)
    try:
        await _throttle(adapters, "login", name, client_address)
    except TooManyAttempts:
        await audit.record(
            session, adapters.crypto, actor, "auth.login_throttled", store_id=None,
            details={"username": name, "address": client_address},
        )  # fmt: skip
        raise
    user = await session.scalar(select(User).where(func.lower(User.username) == name))
    # verify_or_dummy spends the same bcrypt time for an unknown user, so timing does not reveal accounts.
    password_ok = verify_or_dummy(
        user.password_hash if user else None,
        password,
        cost=adapters.hash_cost,
        allow_insecure_cost=adapters.hash_cost < MIN_BCRYPT_COST,
    )
    if user is None or not password_ok or not user.is_active:
        reason = "unknown_user" if user is None else ("wrong_password" if not password_ok else "disabled")
        await _count_failure(adapters, "login", name, client_address)
        if user is not None:
            user.failed_login_attempts += 1
        await audit.record(
            session, adapters.crypto,
            Actor(user_id=user.id if user else None, role=user.role if user else None, request_id=request_id),
            "auth.login_failed", store_id=user.store_id if user else None,
            target_type="user", target_id=user.id if user else None,
            details={"username": name, "reason": reason, "address": client_address},
        )  # fmt: skip
        raise InvalidCredentials()
    register = await _resolve_register(session, user, register_id)
    issued = _issue(adapters, user, register)
    user.failed_login_attempts = 0
    user.last_login_at = utcnow()
    # A successful sign-in forgives the short-window failures (not the longer windows: slow guessing still adds up).
    await adapters.limiter.clear(adapters.account_limits[0], "login:account", name)
    await audit.record(
        session, adapters.crypto, _actor(user, register, request_id), "auth.login",
        target_type="user", target_id=user.id,
        details={"method": "password", "register_id": register, "address": client_address, "jti": issued.claims.jti},
    )  # fmt: skip
    return SignedIn(user, issued, csrf_token_for(adapters, issued.claims.jti))


def _actor(user: User, register_id: int | None, request_id: str | None) -> Actor:
    return Actor(
        user_id=user.id,
        role=user.role,
        store_id=user.store_id,
        register_id=register_id,
        request_id=request_id,
        name=user.username,
    )


def _dummy_check(adapters: AuthAdapters, secret: str) -> None:
    verify_or_dummy(None, secret, cost=adapters.hash_cost, allow_insecure_cost=adapters.hash_cost < MIN_BCRYPT_COST)


def _pin_lock_duration(attempts: int) -> timedelta:
    doubling = max(0, attempts - PIN_ATTEMPTS_BEFORE_LOCK)
    duration: timedelta = PIN_LOCK_BASE * (2**doubling)
    return min(duration, PIN_LOCK_MAX)


async def pin_login(
    session: AsyncSession,
    adapters: AuthAdapters,
    *,
    username: str,
    pin: str,
    register_id: int | None,
    client_address: str,
    request_id: str | None,
) -> SignedIn:
    name = normalise_username(username)
    user = await session.scalar(select(User).where(func.lower(User.username) == name))
    now = utcnow()
    # The account's own lock answers first: it says what to do (use the password), a rate limit only "wait".
    if user is not None and user.pin_locked_until is not None and user.pin_locked_until > now:
        raise PinLocked(headers={"Retry-After": str(int((user.pin_locked_until - now).total_seconds()) + 1)})
    await _throttle(adapters, "pin", name, client_address)
    pin_hash = user.pin_hash if user is not None and user.is_active else None
    if pin_hash is None:
        _dummy_check(adapters, pin)  # the same bcrypt time as a real check
        pin_ok = False
    else:
        pin_ok = verify_pin(pin_hash, pin)
    usable = pin_hash is not None
    if user is None or not usable or not pin_ok:
        await _count_failure(adapters, "pin", name, client_address)
        if user is not None and usable:
            user.failed_pin_attempts += 1
            await audit.record(
                session, adapters.crypto, Actor(user_id=user.id, role=user.role, request_id=request_id),
                "auth.pin_failed", store_id=user.store_id, target_type="user", target_id=user.id,
                details={"attempts": user.failed_pin_attempts, "register_id": register_id},
            )  # fmt: skip
            if user.failed_pin_attempts >= PIN_ATTEMPTS_BEFORE_LOCK:
                user.pin_locked_until = now + _pin_lock_duration(user.failed_pin_attempts)
                await audit.record(
                    session, adapters.crypto, Actor(user_id=user.id, role=user.role, request_id=request_id),
                    "auth.pin_locked", store_id=user.store_id, target_type="user", target_id=user.id,
                    details={"until": user.pin_locked_until.isoformat(), "attempts": user.failed_pin_attempts},
                )  # fmt: skip
                seconds = int((user.pin_locked_until - now).total_seconds()) + 1
                raise PinLocked(headers={"Retry-After": str(seconds)})
        raise InvalidPin()
    register = await _resolve_register(session, user, register_id)
    user.failed_pin_attempts = 0
    user.pin_locked_until = None
    user.last_login_at = now
    issued = _issue(adapters, user, register)
    await audit.record(
        session, adapters.crypto, _actor(user, register, request_id), "auth.login",
        target_type="user", target_id=user.id,
        details={"method": "pin", "register_id": register, "address": client_address, "jti": issued.claims.jti},
    )  # fmt: skip
    return SignedIn(user, issued, csrf_token_for(adapters, issued.claims.jti))


async def logout(session: AsyncSession, adapters: AuthAdapters, principal: Principal, request_id: str | None) -> None:
    await adapters.revocations.revoke(
        session, jti=principal.jti, user_id=principal.user_id, expires_at=principal.expires_at
    )
    await audit.record(
        session, adapters.crypto, Actor.of(principal, request_id), "auth.logout",
        target_type="user", target_id=principal.user_id, details={"jti": principal.jti},
    )  # fmt: skip


async def principal_for(
    session: AsyncSession, adapters: AuthAdapters, token: str, via: str
) -> tuple[Principal, AccessClaims]:
    claims = adapters.codec.decode(token)
    if await adapters.revocations.is_revoked(session, claims.jti):
        raise TokenRevoked()
    user = await session.get(User, int(claims.user_id))
    if user is None or not user.is_active or user.role != claims.role or user.store_id != claims.store_id:
        raise SessionEnded()
    if user.tokens_valid_after is not None and claims.issued_at < user.tokens_valid_after:
        raise SessionEnded()
    principal = Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        store_id=user.store_id,
        register_id=claims.register_id,
        jti=claims.jti,
        expires_at=claims.expires_at,
        via="cookie" if via == "cookie" else "bearer",
        birth_date_iso=user.birth_date.isoformat() if user.birth_date else None,
    )
    return principal, claims


def end_all_sessions(user: User) -> None:
    """Every token issued so far stops working ("sign out everywhere", disabling a user).

    Token times have whole-second precision, so the cut-off is the start of the next second: a token issued in
    this second is before it, and a sign-in right after is issued at the cut-off (see `_issue`)."""
    user.tokens_valid_after = utcnow().replace(microsecond=0) + timedelta(seconds=1)


def is_manager_or_above(role: str) -> bool:
    return role in (Role.MANAGER.value, Role.ADMIN.value)


class ManagerApprovalFailed(PosError):
    status_code = 403
    code = "manager_approval_failed"
    default_message = "Manager approval failed: wrong manager, PIN or password."
    keeps_records = True


@dataclass(frozen=True, slots=True)
class ManagerCredentials:
    """What a manager enters at the register to approve something: a PIN or a password, never a session."""

    username: str
    pin: str | None = None
    password: str | None = None

    @classmethod
    def from_secret(cls, username: str, secret: str) -> ManagerCredentials:
        # Registers offer one field; all digits (4–8) is a PIN, anything else a password.
        if secret.isdigit() and 4 <= len(secret) <= 8:
            return cls(username, pin=secret)
        return cls(username, password=secret)


async def verify_manager(
    session: AsyncSession,
    adapters: AuthAdapters,
    actor: Actor,
    credentials: ManagerCredentials,
    *,
    store_id: int | None,
    client_address: str,
    failure_action: str,
    details: dict[str, Any] | None = None,
    not_user_id: int | None = None,
) -> User:
    """The manager (or admin) whose credentials these are, allowed to approve in this store. Otherwise record the
    failure, count it toward that manager's lock-out and the sign-in rate limits exactly like a failed sign-in,
    and raise `ManagerApprovalFailed` (or `PinLocked`)."""
    name = normalise_username(credentials.username)
    using_pin = credentials.pin is not None
    secret = credentials.pin if credentials.pin is not None else credentials.password or ""
    scope = "pin" if using_pin else "login"
    manager = await session.scalar(select(User).where(func.lower(User.username) == name))
    now = utcnow()
    if using_pin and manager is not None and manager.pin_locked_until is not None and manager.pin_locked_until > now:
        raise PinLocked("That manager's PIN is locked; the manager may use the password instead.")
    await _throttle(adapters, scope, name, client_address)
    eligible = (
        manager is not None
        and manager.is_active
        and allows(manager.role, Permission.OVERRIDE)
        and manager.store_id in (None, store_id)
        and manager.id != not_user_id
    )
    stored = None
    if manager is not None and eligible:
        stored = manager.pin_hash if using_pin else manager.password_hash
    if stored is None:
        # The same bcrypt time as a real check: timing must not tell which usernames are managers.
        _dummy_check(adapters, secret)
        ok = False
    else:
        ok = verify_pin(stored, secret) if using_pin else verify_password(stored, secret)
    if ok and manager is not None:
        if using_pin:
            manager.failed_pin_attempts = 0
            manager.pin_locked_until = None
        return manager
    await _count_failure(adapters, scope, name, client_address)
    credential = "pin" if using_pin else "password"
    why = "unknown_user" if manager is None else ("not_allowed" if not eligible else f"wrong_{credential}")
    record: dict[str, Any] = {**(details or {}), "manager": name, "credential": credential, "why": why}
    if manager is not None and eligible and stored is not None:
        if using_pin:
            manager.failed_pin_attempts += 1
            record["attempts"] = manager.failed_pin_attempts
        else:
            manager.failed_login_attempts += 1
    await audit.record(
        session, adapters.crypto, actor, failure_action, store_id=store_id,
        target_type="user", target_id=manager.id if manager else None, details=record,
    )  # fmt: skip
    if manager is not None and using_pin and manager.failed_pin_attempts >= PIN_ATTEMPTS_BEFORE_LOCK:
        manager.pin_locked_until = now + _pin_lock_duration(manager.failed_pin_attempts)
        await audit.record(
            session, adapters.crypto, Actor(user_id=manager.id, role=manager.role, request_id=actor.request_id),
            "auth.pin_locked", store_id=manager.store_id, target_type="user", target_id=manager.id,
            details={"until": manager.pin_locked_until.isoformat(), "attempts": manager.failed_pin_attempts},
        )  # fmt: skip
        raise PinLocked()
    raise ManagerApprovalFailed()


async def approving_manager(
    session: AsyncSession,
    adapters: AuthAdapters,
    principal: Principal,
    credentials: ManagerCredentials | None,
    *,
    action: str,
    request_id: str | None,
    client_address: str,
) -> User:
    """Who approves a manager-only action at the register: the signed-in user when they may approve it
    themselves, otherwise the manager whose credentials were entered (see `verify_manager`)."""
    if credentials is None:
        if principal.can(Permission.OVERRIDE):
            user = await session.get(User, principal.user_id)
            assert user is not None
            return user
        raise ManagerApprovalFailed("A manager must approve this: enter a manager's username and PIN or password.")
    return await verify_manager(
        session, adapters, Actor.of(principal, request_id), credentials, store_id=principal.store_id,
        client_address=client_address, failure_action="auth.manager_approval_failed", details={"action": action},
    )  # fmt: skip
