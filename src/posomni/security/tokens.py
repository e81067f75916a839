"""Signed access tokens (JWT, HS256).

Claims: ``sub`` (user id as a string), ``role``, ``store`` (store id or null), ``reg`` (the register the
session was opened at, or null), ``jti`` (random, unique per
token, the handle for revocation), ``iat``, ``nbf``, ``exp`` (seconds since the epoch) and ``typ`` = "access".
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt

from posomni.kit.errors import NotAuthenticated
from posomni.kit.time import utcnow

ALGORITHM: Final = "HS256"
ACCESS_TYP: Final = "access"
ACCESS_TOKEN_TTL: Final = timedelta(hours=8)
# Tolerates small clock differences between the app servers that issue and check tokens.
CLOCK_LEEWAY: Final = timedelta(seconds=10)
# HS256 is only as strong as its key; RFC 7518 asks for at least the hash size (32 bytes).
MIN_SECRET_BYTES: Final = 32
_REQUIRED_CLAIMS: Final = ("exp", "iat", "nbf", "jti", "sub")


class TokenError(NotAuthenticated):
    code = "token_invalid"
    default_message = "The access token is not valid; sign in again."


class TokenExpiredError(TokenError):
    code = "token_expired"
    default_message = "The session has expired; sign in again."


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    role: str
    store_id: int | None
    jti: str
    issued_at: datetime
    not_before: datetime
    expires_at: datetime
    register_id: int | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: AccessClaims


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _timestamp(payload: dict[str, Any], claim: str) -> datetime:
    value = payload[claim]
    if not _is_int(value):
        raise TokenError()
    return datetime.fromtimestamp(value, UTC)


class AccessTokenCodec:
    def __init__(
        self,
        secret: str,
        *,
        ttl: timedelta = ACCESS_TOKEN_TTL,
        leeway: timedelta = CLOCK_LEEWAY,
    ) -> None:
        if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
            # Says how long it must be, never what it is.
            raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes long")
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        if leeway < timedelta(0):
            raise ValueError("leeway must not be negative")
        self._secret = secret
        self._ttl = ttl
        self._leeway = leeway

    def issue(
        self,
        *,
        user_id: int | str,
        role: str,
        store_id: int | None,
        register_id: int | None = None,
        now: datetime | None = None,
    ) -> IssuedToken:
        subject = str(user_id)
        if not subject:
            raise ValueError("user_id must not be empty")
        if not role:
            raise ValueError("role must not be empty")
        moment = now if now is not None else utcnow()
        if moment.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one")
        issued_at = int(moment.timestamp())
        expires_at = issued_at + int(self._ttl.total_seconds())
        # 128 random bits: unique without coordination, and unguessable, since it keys the revocation list.
        jti = secrets.token_urlsafe(16)
        payload = {
            "sub": subject,
            "role": role,
            "store": store_id,
            "reg": register_id,
            "jti": jti,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": expires_at,
            "typ": ACCESS_TYP,
        }
        token = jwt.encode(payload, self._secret, algorithm=ALGORITHM)
        claims = AccessClaims(
            user_id=subject,
            role=role,
            store_id=store_id,
            jti=jti,
            issued_at=datetime.fromtimestamp(issued_at, UTC),
            not_before=datetime.fromtimestamp(issued_at, UTC),
            expires_at=datetime.fromtimestamp(expires_at, UTC),
            register_id=register_id,
        )
        return IssuedToken(token=token, claims=claims)

    def decode(self, token: str) -> AccessClaims:
        try:
            # `algorithms` is a fixed allow-list: a token whose header says "none" or another algorithm is
            # refused before its signature is even considered.
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                leeway=self._leeway,
                options={"require": list(_REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpiredError() from exc
        except jwt.InvalidTokenError as exc:
            raise TokenError() from exc

        # The signature is valid, so these only fail for tokens signed by another issuer sharing the secret
        # or by an older format; refuse rather than guess.
        subject, role, jti, store = (payload.get(k) for k in ("sub", "role", "jti", "store"))
        if payload.get("typ") != ACCESS_TYP or "store" not in payload:
            raise TokenError()
        if not (isinstance(subject, str) and subject and isinstance(role, str) and role):
            raise TokenError()
        if not (isinstance(jti, str) and jti):
            raise TokenError()
        if store is not None and not _is_int(store):
            raise TokenError()
        register = payload.get("reg")
        if register is not None and not _is_int(register):
            raise TokenError()
        return AccessClaims(
            user_id=subject,
            role=role,
            store_id=store,
            jti=jti,
            issued_at=_timestamp(payload, "iat"),
            not_before=_timestamp(payload, "nbf"),
            expires_at=_timestamp(payload, "exp"),
            register_id=register,
        )
