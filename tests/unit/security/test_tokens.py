from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from posomni.kit.errors import NotAuthenticated
from posomni.kit.time import utcnow
from posomni.security.tokens import (
    ACCESS_TOKEN_TTL,
    AccessTokenCodec,
    TokenError,
    TokenExpiredError,
)

SECRET = "test-secret-that-is-long-enough-for-hs512-signatures-0123456789ab"  # 64 bytes
OTHER_SECRET = "another-secret-of-sufficient-length-for-any-hmac-0123456789abcdef"
EIGHT_HOURS = timedelta(hours=8)


@pytest.fixture
def codec() -> AccessTokenCodec:
    return AccessTokenCodec(SECRET)


def valid_payload(**overrides: Any) -> dict[str, Any]:
    now = int(utcnow().timestamp())
    payload: dict[str, Any] = {
        "sub": "42",
        "role": "cashier",
        "store": 3,
        "jti": "abc123",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "typ": "access",
    }
    payload.update(overrides)
    return payload


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- issuing and decoding --------------------------------------------------------------------------------


def test_issued_token_decodes_to_the_same_claims(codec: AccessTokenCodec) -> None:
    issued = codec.issue(user_id=42, role="manager", store_id=7)
    claims = codec.decode(issued.token)
    assert claims == issued.claims
    assert claims.user_id == "42"
    assert claims.role == "manager"
    assert claims.store_id == 7


def test_store_may_be_null_for_users_not_tied_to_a_store(codec: AccessTokenCodec) -> None:
    claims = codec.decode(codec.issue(user_id="u-1", role="owner", store_id=None).token)
    assert claims.store_id is None


def test_token_carries_the_documented_claims(codec: AccessTokenCodec) -> None:
    issued = codec.issue(user_id=42, role="cashier", store_id=3)
    header = jwt.get_unverified_header(issued.token)
    payload = jwt.decode(issued.token, SECRET, algorithms=["HS256"])
    assert header["alg"] == "HS256"
    assert set(payload) == {"sub", "role", "store", "reg", "jti", "iat", "nbf", "exp", "typ"}
    assert payload["sub"] == "42"
    assert payload["typ"] == "access"
    assert payload["nbf"] == payload["iat"]


def test_register_of_the_session_round_trips(codec: AccessTokenCodec) -> None:
    issued = codec.issue(user_id=7, role="cashier", store_id=1, register_id=2)
    assert codec.decode(issued.token).register_id == 2
    assert codec.decode(codec.issue(user_id=7, role="admin", store_id=None).token).register_id is None


def test_token_expires_eight_hours_after_issue_by_default(codec: AccessTokenCodec) -> None:
    issued_at = datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)
    claims = codec.issue(user_id=1, role="cashier", store_id=1, now=issued_at).claims
    assert ACCESS_TOKEN_TTL == EIGHT_HOURS
    assert claims.issued_at == issued_at
    assert claims.not_before == issued_at
    assert claims.expires_at == issued_at + EIGHT_HOURS


def test_lifetime_is_configurable() -> None:
    codec = AccessTokenCodec(SECRET, ttl=timedelta(minutes=15))
    claims = codec.issue(user_id=1, role="cashier", store_id=1).claims
    assert claims.expires_at - claims.issued_at == timedelta(minutes=15)


def test_every_token_gets_a_unique_jti(codec: AccessTokenCodec) -> None:
    jtis = {codec.issue(user_id=1, role="cashier", store_id=1).claims.jti for _ in range(1000)}
    assert len(jtis) == 1000


# --- time ------------------------------------------------------------------------------------------------


def test_expired_token_is_refused_with_token_expired(codec: AccessTokenCodec) -> None:
    issued = codec.issue(user_id=1, role="cashier", store_id=1, now=utcnow() - EIGHT_HOURS - timedelta(minutes=1))
    with pytest.raises(TokenExpiredError) as caught:
        codec.decode(issued.token)
    assert caught.value.code == "token_expired"
    assert caught.value.status_code == 401


def test_token_expired_a_few_seconds_ago_is_accepted_within_the_leeway(codec: AccessTokenCodec) -> None:
    issued = codec.issue(user_id=1, role="cashier", store_id=1, now=utcnow() - EIGHT_HOURS - timedelta(seconds=4))
    assert codec.decode(issued.token).user_id == "1"


def test_token_expired_beyond_the_leeway_is_refused(codec: AccessTokenCodec) -> None:
    issued = codec.issue(user_id=1, role="cashier", store_id=1, now=utcnow() - EIGHT_HOURS - timedelta(seconds=20))
    with pytest.raises(TokenExpiredError):
        codec.decode(issued.token)


def test_without_leeway_a_just_expired_token_is_refused() -> None:
    strict = AccessTokenCodec(SECRET, leeway=timedelta(0))
    issued = strict.issue(user_id=1, role="cashier", store_id=1, now=utcnow() - EIGHT_HOURS - timedelta(seconds=4))
    with pytest.raises(TokenExpiredError):
        strict.decode(issued.token)


def test_token_from_a_clock_slightly_ahead_is_accepted(codec: AccessTokenCodec) -> None:
    issued = codec.issue(user_id=1, role="cashier", store_id=1, now=utcnow() + timedelta(seconds=4))
    assert codec.decode(issued.token).role == "cashier"


def test_token_issued_in_the_future_beyond_the_leeway_is_invalid(codec: AccessTokenCodec) -> None:
    issued = codec.issue(user_id=1, role="cashier", store_id=1, now=utcnow() + timedelta(minutes=5))
    with pytest.raises(TokenError) as caught:
        codec.decode(issued.token)
    assert caught.value.code == "token_invalid"


def test_issuing_with_a_naive_time_is_refused(codec: AccessTokenCodec) -> None:
    with pytest.raises(ValueError, match="naive"):
        codec.issue(user_id=1, role="cashier", store_id=1, now=datetime(2030, 1, 1))


# --- forgeries and damage --------------------------------------------------------------------------------


def test_tampered_signature_is_invalid(codec: AccessTokenCodec) -> None:
    token = codec.issue(user_id=1, role="cashier", store_id=1).token
    head, body, signature = token.split(".")
    middle = len(signature) // 2
    flipped = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    with pytest.raises(TokenError) as caught:
        codec.decode(f"{head}.{body}.{flipped}")
    assert caught.value.code == "token_invalid"


def test_payload_edited_to_raise_the_role_is_invalid(codec: AccessTokenCodec) -> None:
    token = codec.issue(user_id=1, role="cashier", store_id=1).token
    head, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["role"] = "owner"
    forged_body = b64url(json.dumps(payload).encode())
    with pytest.raises(TokenError):
        codec.decode(f"{head}.{forged_body}.{signature}")


def test_token_signed_with_another_secret_is_invalid(codec: AccessTokenCodec) -> None:
    token = AccessTokenCodec(OTHER_SECRET).issue(user_id=1, role="owner", store_id=None).token
    with pytest.raises(TokenError):
        codec.decode(token)


def test_unsigned_alg_none_token_is_refused(codec: AccessTokenCodec) -> None:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = b64url(json.dumps(valid_payload(role="owner")).encode())
    for token in (f"{header}.{body}.", f"{header}.{body}"):
        with pytest.raises(TokenError):
            codec.decode(token)


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_token_with_another_algorithm_is_refused_even_with_the_right_secret(
    codec: AccessTokenCodec, algorithm: str
) -> None:
    token = jwt.encode(valid_payload(), SECRET, algorithm=algorithm)
    with pytest.raises(TokenError):
        codec.decode(token)


def test_correctly_signed_hand_made_token_is_accepted(codec: AccessTokenCodec) -> None:
    # Control for the tests below: the helper payload itself is valid.
    claims = codec.decode(jwt.encode(valid_payload(), SECRET, algorithm="HS256"))
    assert (claims.user_id, claims.role, claims.store_id, claims.jti) == ("42", "cashier", 3, "abc123")


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "jti", "sub", "role", "store", "typ"])
def test_token_missing_a_required_claim_is_invalid(codec: AccessTokenCodec, claim: str) -> None:
    payload = valid_payload()
    del payload[claim]
    with pytest.raises(TokenError) as caught:
        codec.decode(jwt.encode(payload, SECRET, algorithm="HS256"))
    assert caught.value.code == "token_invalid"


@pytest.mark.parametrize(
    "overrides",
    [
        {"typ": "refresh"},
        {"sub": 42},
        {"sub": ""},
        {"role": ""},
        {"role": ["owner"]},
        {"store": "3"},
        {"store": True},
        {"jti": ""},
        {"jti": 7},
        {"iat": "1700000000"},
        {"exp": float(int(utcnow().timestamp()) + 3600) + 0.5},
    ],
)
def test_token_with_a_wrongly_typed_claim_is_invalid(codec: AccessTokenCodec, overrides: dict[str, Any]) -> None:
    token = jwt.encode(valid_payload(**overrides), SECRET, algorithm="HS256")
    with pytest.raises(TokenError):
        codec.decode(token)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "a.b", "....", "eyJhbGciOiJIUzI1NiJ9.e30."])
def test_garbage_is_invalid(codec: AccessTokenCodec, garbage: str) -> None:
    with pytest.raises(TokenError):
        codec.decode(garbage)


# --- errors and configuration ----------------------------------------------------------------------------


def test_token_errors_are_401_not_authenticated_with_stable_codes() -> None:
    assert issubclass(TokenExpiredError, TokenError)
    assert issubclass(TokenError, NotAuthenticated)
    assert TokenError().to_dict()["error"]["code"] == "token_invalid"
    assert TokenExpiredError().to_dict()["error"]["code"] == "token_expired"
    assert TokenError.status_code == TokenExpiredError.status_code == 401


def test_error_message_does_not_contain_the_token(codec: AccessTokenCodec) -> None:
    token = AccessTokenCodec(OTHER_SECRET).issue(user_id=1, role="owner", store_id=None).token
    with pytest.raises(TokenError) as caught:
        codec.decode(token)
    assert token not in str(caught.value)
    assert SECRET not in str(caught.value)


def test_short_secret_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes") as caught:
        AccessTokenCodec("too-short-secret")
    assert "too-short-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"ttl": timedelta(0)}, "ttl"), ({"leeway": timedelta(seconds=-1)}, "leeway")],
)
def test_nonsense_lifetime_or_leeway_is_refused(kwargs: dict[str, timedelta], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AccessTokenCodec(SECRET, **kwargs)


@pytest.mark.parametrize(("user_id", "role"), [("", "cashier"), (1, "")])
def test_empty_subject_or_role_cannot_be_issued(codec: AccessTokenCodec, user_id: int | str, role: str) -> None:
    with pytest.raises(ValueError, match=r"user_id|role"):
        codec.issue(user_id=user_id, role=role, store_id=None)
