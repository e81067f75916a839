from __future__ import annotations

import unicodedata
from importlib import resources
from typing import TypedDict

import bcrypt
import pytest

from posomni.security import passwords
from posomni.security.passwords import (
    MIN_BCRYPT_COST,
    PolicyViolationError,
    check_password,
    check_pin,
    hash_password,
    hash_pin,
    needs_rehash,
    verify_or_dummy,
    verify_password,
    verify_pin,
)


class CostOptions(TypedDict):
    cost: int
    allow_insecure_cost: bool


# bcrypt's lowest cost keeps these tests fast; production code never passes allow_insecure_cost.
FAST: CostOptions = {"cost": 4, "allow_insecure_cost": True}
GOOD_PASSWORD = "correct horse battery staple"


def codes(problems: list[passwords.PolicyProblem]) -> list[str]:
    return [p.code for p in problems]


# --- policy ----------------------------------------------------------------------------------------------


def test_a_long_uncommon_password_passes() -> None:
    assert check_password(GOOD_PASSWORD, username="alice") == []


def test_password_shorter_than_the_minimum_is_too_short() -> None:
    assert codes(check_password("Xk3!pQz9")) == ["too_short"]
    assert check_password("Xk3!pQz9wR2#") == []


def test_minimum_length_is_configurable_but_not_below_eight() -> None:
    assert codes(check_password("Xk3!pQz9wR2#", min_length=16)) == ["too_short"]
    assert check_password("Xk3!pQz9", min_length=8) == []
    with pytest.raises(ValueError, match="at least 8"):
        check_password(GOOD_PASSWORD, min_length=6)


def test_password_longer_than_the_maximum_is_too_long() -> None:
    assert codes(check_password("Xk3!pQz9wR2#" * 22)) == ["too_long"]
    assert codes(check_password(GOOD_PASSWORD, max_length=20)) == ["too_long"]
    with pytest.raises(ValueError, match="max_length"):
        check_password(GOOD_PASSWORD, min_length=20, max_length=19)


@pytest.mark.parametrize("common", ["password1234", "PassWord1234", "qwertyuiop123", "iloveyou1234"])
def test_common_password_is_refused_whatever_its_case(common: str) -> None:
    assert codes(check_password(common)) == ["too_common"]


def test_common_password_list_ships_with_the_package_and_has_about_two_hundred_entries() -> None:
    text = resources.files("posomni.security").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    entries = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(entries) >= 200
    assert len(set(entries)) == len(entries)
    assert all(entry == entry.strip().casefold() for entry in entries)


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("jsmith", "jsmith-likes-dark-rum"),
        ("JSmith", "i am JSMITH and I sell wine"),
        ("bartender-number-one", "Bartender-Number-One"),
    ],
)
def test_password_containing_or_equal_to_the_username_is_refused(username: str, password: str) -> None:
    assert codes(check_password(password, username=username)) == ["contains_username"]


def test_a_very_short_username_only_blocks_an_identical_password() -> None:
    assert check_password("always reconcile the till", username="al") == []


def test_password_with_nul_is_refused() -> None:
    assert codes(check_password("correct horse\x00battery")) == ["contains_nul"]


def test_all_problems_are_reported_together() -> None:
    problems = check_password("admin", username="admin")
    assert codes(problems) == ["too_short", "too_common", "contains_username"]
    assert all(p.message for p in problems)


def test_problem_messages_do_not_echo_the_password() -> None:
    for problem in check_password("hunter2", username="hunter2"):
        assert "hunter2" not in problem.message


# --- hashing ---------------------------------------------------------------------------------------------


def test_hash_then_verify_accepts_the_right_password_only() -> None:
    stored = hash_password(GOOD_PASSWORD, **FAST)
    assert verify_password(stored, GOOD_PASSWORD)
    assert not verify_password(stored, GOOD_PASSWORD + "!")
    assert not verify_password(stored, "")


def test_hashing_the_same_password_twice_gives_different_salted_hashes() -> None:
    assert hash_password(GOOD_PASSWORD, **FAST) != hash_password(GOOD_PASSWORD, **FAST)


def test_default_cost_is_twelve() -> None:
    assert MIN_BCRYPT_COST == 12
    assert hash_password(GOOD_PASSWORD).startswith("$2b$12$")


@pytest.mark.parametrize("cost", [4, 10, 11])
def test_cost_below_twelve_needs_the_explicit_test_flag(cost: int) -> None:
    with pytest.raises(ValueError, match="at least 12"):
        hash_password(GOOD_PASSWORD, cost=cost)
    assert hash_password(GOOD_PASSWORD, cost=cost, allow_insecure_cost=True).startswith(f"$2b${cost:02d}$")


@pytest.mark.parametrize("cost", [3, 32])
def test_cost_outside_bcrypt_range_is_refused_even_with_the_flag(cost: int) -> None:
    with pytest.raises(ValueError, match="between 4 and 31"):
        hash_password(GOOD_PASSWORD, cost=cost, allow_insecure_cost=True)


def test_passwords_differing_only_after_byte_72_are_distinguished() -> None:
    prefix = "x" * 80
    stored = hash_password(prefix + "a", **FAST)
    assert verify_password(stored, prefix + "a")
    assert not verify_password(stored, prefix + "b")
    assert not verify_password(stored, prefix)


def test_multibyte_passwords_differing_after_byte_72_are_distinguished() -> None:
    prefix = "é" * 40  # 80 UTF-8 bytes
    stored = hash_password(prefix + "1", **FAST)
    assert verify_password(stored, prefix + "1")
    assert not verify_password(stored, prefix + "2")


def test_composed_and_decomposed_accents_verify_the_same() -> None:
    composed = unicodedata.normalize("NFC", "crème brûlée liqueur")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert verify_password(hash_password(composed, **FAST), decomposed)


@pytest.mark.parametrize("bad", ["", "with\x00nul"])
def test_empty_or_nul_password_cannot_be_hashed(bad: str) -> None:
    with pytest.raises(ValueError, match=r"empty|NUL"):
        hash_password(bad, **FAST)


def test_verifying_a_nul_or_lone_surrogate_password_fails_without_crashing() -> None:
    stored = hash_password(GOOD_PASSWORD, **FAST)
    assert not verify_password(stored, GOOD_PASSWORD + "\x00")
    assert not verify_password(stored, "\ud800")


@pytest.mark.parametrize("corrupt", ["", "plain-text-password", "$2b$04$short", "$1$md5crypt$abc"])
def test_a_corrupt_stored_hash_raises_instead_of_looking_like_a_wrong_password(corrupt: str) -> None:
    with pytest.raises(ValueError, match="not a bcrypt hash"):
        verify_password(corrupt, GOOD_PASSWORD)


def test_stored_hash_from_plain_bcrypt_of_the_password_does_not_verify() -> None:
    # Hashes are made from a labelled pre-hash, so a plain bcrypt hash of the password is not accepted.
    plain = bcrypt.hashpw(GOOD_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode("ascii")
    assert not verify_password(plain, GOOD_PASSWORD)


def test_needs_rehash_when_stored_cost_is_below_the_configured_cost() -> None:
    stored = hash_password(GOOD_PASSWORD, **FAST)
    assert needs_rehash(stored)
    assert not needs_rehash(stored, cost=4)
    with pytest.raises(ValueError, match="not a bcrypt hash"):
        needs_rehash("nope")


# --- unknown users ---------------------------------------------------------------------------------------


def test_unknown_user_verification_is_false() -> None:
    assert verify_or_dummy(None, GOOD_PASSWORD, **FAST) is False


def test_unknown_user_still_costs_one_bcrypt_check(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real_checkpw = bcrypt.checkpw

    def counting_checkpw(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting_checkpw)
    verify_or_dummy(None, GOOD_PASSWORD, **FAST)
    assert len(calls) == 1
    assert calls[0].startswith(b"$2b$04$")


def test_known_user_is_verified_normally() -> None:
    stored = hash_password(GOOD_PASSWORD, **FAST)
    assert verify_or_dummy(stored, GOOD_PASSWORD, **FAST) is True
    assert verify_or_dummy(stored, "wrong password!", **FAST) is False


def test_dummy_check_refuses_a_low_cost_without_the_flag() -> None:
    with pytest.raises(ValueError, match="at least 12"):
        verify_or_dummy(None, GOOD_PASSWORD, cost=4)


# --- PINs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pin", ["2580", "1379", "90210", "739164", "31415926", "1243", "1122"])
def test_non_trivial_pins_pass(pin: str) -> None:
    assert check_pin(pin) == []


@pytest.mark.parametrize(
    "pin", ["", "123", "123456789", "12a4", " 2580", "2580\n", "25 80", "２５８０", "٢٥٨٠", "-258"]
)
def test_pin_must_be_four_to_eight_ascii_digits(pin: str) -> None:
    assert codes(check_pin(pin)) == ["pin_format"]


@pytest.mark.parametrize("pin", ["0000", "1111", "99999", "77777777"])
def test_pin_of_one_repeated_digit_is_refused(pin: str) -> None:
    assert codes(check_pin(pin)) == ["pin_repeated"]


@pytest.mark.parametrize("pin", ["1234", "4321", "0123", "3456789", "87654321", "7890", "0987", "89012"])
def test_pin_that_is_a_run_of_digits_is_refused(pin: str) -> None:
    assert codes(check_pin(pin)) == ["pin_sequential"]


def test_pin_hash_verifies_the_right_pin_only() -> None:
    stored = hash_pin("2580", **FAST)
    assert stored.startswith("$2b$04$")
    assert verify_pin(stored, "2580")
    assert not verify_pin(stored, "2581")


def test_trivial_pin_cannot_be_hashed() -> None:
    with pytest.raises(PolicyViolationError) as caught:
        hash_pin("1234", **FAST)
    assert codes(caught.value.problems) == ["pin_sequential"]


def test_pin_and_password_hashes_are_not_interchangeable() -> None:
    assert not verify_password(hash_pin("2580", **FAST), "2580")
    assert not verify_pin(hash_password("2580", **FAST), "2580")
