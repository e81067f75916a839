"""Password and PIN policy, and bcrypt hashing.

How a secret is hashed: the text is NFKC-normalised (so the same password typed on two keyboards that
compose accents differently still matches), UTF-8 encoded, passed through HMAC-SHA256 under a fixed
per-purpose label, base64-encoded (44 ASCII bytes) and only then given to bcrypt.

* bcrypt reads at most 72 bytes; pre-hashing makes every byte of a long password count.
* The base64 step keeps NUL bytes out of bcrypt's input, which C implementations treat as the end.
* The HMAC label (instead of bare SHA-256) means a leaked table of plain SHA-256 hashes from another site
  cannot be used to test our bcrypt hashes without cracking them ("password shucking"), and keeps password
  hashes and PIN hashes from being interchangeable.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise
from typing import Final

import bcrypt

MIN_BCRYPT_COST: Final = 12
MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 256
# NIST SP 800-63B's floor: a configured minimum below this is refused.
LOWEST_ALLOWED_MIN_LENGTH: Final = 8
# Shorter usernames ("al") would reject too many good passwords if "contains" applied; equality still does.
_MIN_USERNAME_FOR_CONTAINS: Final = 3

_PASSWORD_LABEL: Final = b"posomni/password/v1"
_PIN_LABEL: Final = b"posomni/pin/v1"
_BCRYPT_HASH = re.compile(r"\$2[abxy]\$(\d\d)\$[./A-Za-z0-9]{53}")
_PIN = re.compile(r"[0-9]{4,8}")


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    code: str
    message: str


class PolicyViolationError(ValueError):
    def __init__(self, problems: list[PolicyProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.code}: {p.message}" for p in problems))


def _normalise(secret: str) -> str:
    return unicodedata.normalize("NFKC", secret)


def _prehash(secret: str, label: bytes) -> bytes:
    # "surrogatepass": a lone surrogate from a JSON body must neither crash login nor match anything else.
    data = _normalise(secret).encode("utf-8", errors="surrogatepass")
    return base64.b64encode(hmac.new(label, data, hashlib.sha256).digest())


def _check_cost(cost: int, allow_insecure_cost: bool) -> None:
    if not 4 <= cost <= 31:
        raise ValueError("bcrypt cost must be between 4 and 31")
    if cost < MIN_BCRYPT_COST and not allow_insecure_cost:
        raise ValueError(f"bcrypt cost must be at least {MIN_BCRYPT_COST}")


def _hash(secret: str, label: bytes, cost: int, allow_insecure_cost: bool) -> str:
    _check_cost(cost, allow_insecure_cost)
    return bcrypt.hashpw(_prehash(secret, label), bcrypt.gensalt(rounds=cost)).decode("ascii")


def _verify(stored_hash: str, secret: str, label: bytes) -> bool:
    if not _BCRYPT_HASH.fullmatch(stored_hash):
        # A corrupt stored hash is a data problem to surface, not a wrong password to hide.
        raise ValueError("the stored hash is not a bcrypt hash")
    # checkpw compares in constant time.
    return bcrypt.checkpw(_prehash(secret, label), stored_hash.encode("ascii"))


@functools.lru_cache(maxsize=4)
def _dummy_hash(cost: int) -> bytes:
    return bcrypt.hashpw(_prehash(secrets.token_urlsafe(32), _PASSWORD_LABEL), bcrypt.gensalt(rounds=cost))


# --- passwords -------------------------------------------------------------------------------------------


@functools.cache
def _common_passwords() -> frozenset[str]:
    text = resources.files("posomni.security").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().casefold() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_password(
    password: str,
    *,
    username: str | None = None,
    min_length: int = MIN_PASSWORD_LENGTH,
    max_length: int = MAX_PASSWORD_LENGTH,
) -> list[PolicyProblem]:
    """Every rule the password breaks, in a fixed order; an empty list means it is acceptable."""
    if min_length < LOWEST_ALLOWED_MIN_LENGTH:
        raise ValueError(f"min_length must be at least {LOWEST_ALLOWED_MIN_LENGTH}")
    if max_length < min_length:
        raise ValueError("max_length must not be less than min_length")

    text = _normalise(password)
    folded = text.casefold()
    problems: list[PolicyProblem] = []
    if len(text) < min_length:
        problems.append(PolicyProblem("too_short", f"Use at least {min_length} characters."))
    if len(text) > max_length:
        problems.append(PolicyProblem("too_long", f"Use at most {max_length} characters."))
    if "\x00" in text:
        problems.append(PolicyProblem("contains_nul", "The password must not contain NUL characters."))
    if folded in _common_passwords():
        problems.append(PolicyProblem("too_common", "This is one of the most commonly used passwords."))
    user = _normalise(username or "").strip().casefold()
    if user and (folded == user or (len(user) >= _MIN_USERNAME_FOR_CONTAINS and user in folded)):
        problems.append(PolicyProblem("contains_username", "The password must not contain the username."))
    return problems


def hash_password(password: str, *, cost: int = MIN_BCRYPT_COST, allow_insecure_cost: bool = False) -> str:
    """`allow_insecure_cost=True` exists only so tests can hash at cost 4; production leaves it off."""
    if not password:
        raise ValueError("cannot hash an empty password")
    if "\x00" in password:
        raise ValueError("passwords must not contain NUL characters")
    return _hash(password, _PASSWORD_LABEL, cost, allow_insecure_cost)


def verify_password(password_hash: str, password: str) -> bool:
    return _verify(password_hash, password, _PASSWORD_LABEL)


def verify_or_dummy(
    password_hash: str | None,
    password: str,
    *,
    cost: int = MIN_BCRYPT_COST,
    allow_insecure_cost: bool = False,
) -> bool:
    """Verify, or when there is no user (`None`) do the same bcrypt work against a dummy hash and fail.

    Without this, "no such user" answers in microseconds and "wrong password" in a quarter second, which
    tells an attacker which usernames exist. `cost` must match the cost real hashes are made with.
    """
    if password_hash is None:
        _check_cost(cost, allow_insecure_cost)
        bcrypt.checkpw(_prehash(password, _PASSWORD_LABEL), _dummy_hash(cost))
        return False
    return verify_password(password_hash, password)


def needs_rehash(password_hash: str, *, cost: int = MIN_BCRYPT_COST) -> bool:
    """True when the stored hash was made with a lower cost than today's; rehash it at the next login."""
    match = _BCRYPT_HASH.fullmatch(password_hash)
    if match is None:
        raise ValueError("the stored hash is not a bcrypt hash")
    return int(match.group(1)) < cost


# --- PINs ------------------------------------------------------------------------------------------------


def check_pin(pin: str) -> list[PolicyProblem]:
    # A PIN has at most 10**8 values, so no hash cost protects a leaked PIN hash for long: what keeps PINs
    # safe is refusing the guessable ones here and locking the account after a few wrong attempts.
    if not _PIN.fullmatch(pin):
        return [PolicyProblem("pin_format", "A PIN is 4 to 8 digits.")]
    problems: list[PolicyProblem] = []
    if len(set(pin)) == 1:
        problems.append(PolicyProblem("pin_repeated", "A PIN must not be one digit repeated."))
    # Steps taken modulo 10 so keypad runs through zero (7890, 0987) count as runs too.
    steps = {(int(b) - int(a)) % 10 for a, b in pairwise(pin)}
    if steps in ({1}, {9}):
        problems.append(PolicyProblem("pin_sequential", "A PIN must not be a run of digits like 1234 or 4321."))
    return problems


def hash_pin(pin: str, *, cost: int = MIN_BCRYPT_COST, allow_insecure_cost: bool = False) -> str:
    problems = check_pin(pin)
    if problems:
        raise PolicyViolationError(problems)
    return _hash(pin, _PIN_LABEL, cost, allow_insecure_cost)


def verify_pin(pin_hash: str, pin: str) -> bool:
    return _verify(pin_hash, pin, _PIN_LABEL)
