"""GS1 barcodes: check-digit validation, UPC-E expansion and the one stored form, GTIN-14.

Accepted: UPC-A (12 digits), EAN-13 (13), EAN-8 (8), UPC-E (8, number system 0 or 1) and GTIN-14 (14), with
surrounding whitespace stripped. The check digit is always verified. `BarcodeError` (a `ValueError` and a
`ValidationFailed`) is the only exception raised, with `.code` one of `invalid_characters`, `invalid_length`,
`invalid_check_digit`.

Choices:

* 6- and 7-digit UPC-E are refused (`invalid_length`). The 6-digit form carries no check digit, so a misread
  could never be caught; a 7-digit string is either "number system + 6 digits" (no check digit) or "6 digits +
  check digit" (number system 0 implied), and nothing in it says which.
* 8 digits may be EAN-8 or UPC-E. Unless the caller says which (`expected`, e.g. from the scanner's symbology
  identifier), a code starting with 0 or 1 whose check digit is right for UPC-E is UPC-E (the common short
  symbol on US shelves; EAN-8s starting with 0 are restricted-circulation numbers), anything else is EAN-8.
* `display_form` is a function of the GTIN-14 alone: six leading zeros → EAN-8 (GS1 keeps that range for
  GTIN-8; a GTIN-12 or GTIN-13 there is at most a company-internal number), two → UPC-A, one → EAN-13, else
  GTIN-14. A code scanned as UPC-E is shown as its UPC-A.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final

from posomni.kit.errors import ValidationFailed

_DIGITS: Final = frozenset("0123456789")
# Longest GS1 key that uses this check digit is the SSCC: 17 digits before its check digit.
_MAX_BODY_LENGTH: Final = 17


class BarcodeError(ValidationFailed, ValueError):
    """Base of the three refusals below; never raised itself."""

    code: ClassVar[str] = "invalid_barcode"
    default_message = "Not a valid barcode."


class InvalidBarcodeCharacters(BarcodeError):
    code = "invalid_characters"
    default_message = "A barcode holds digits only."


class InvalidBarcodeLength(BarcodeError):
    code = "invalid_length"
    default_message = "A barcode has 8, 12, 13 or 14 digits."


class InvalidCheckDigit(BarcodeError):
    code = "invalid_check_digit"
    default_message = "The barcode's check digit is wrong: rescan or retype it."


class BarcodeFormat(StrEnum):
    UPC_A = "upc_a"
    UPC_E = "upc_e"
    EAN_8 = "ean_8"
    EAN_13 = "ean_13"
    GTIN_14 = "gtin_14"


class BarcodeKind(StrEnum):
    PRODUCT = "product"
    # Restricted-circulation numbers: store-assigned or variable-measure (weight/price inside the code).
    IN_STORE = "in_store"
    # Never sold as a product: the register must refuse it as an item.
    COUPON = "coupon"


_LENGTH_OF: Final = {
    BarcodeFormat.UPC_A: 12,
    BarcodeFormat.UPC_E: 8,
    BarcodeFormat.EAN_8: 8,
    BarcodeFormat.EAN_13: 13,
    BarcodeFormat.GTIN_14: 14,
}
_FORMAT_OF_LENGTH: Final = {12: BarcodeFormat.UPC_A, 13: BarcodeFormat.EAN_13, 14: BarcodeFormat.GTIN_14}


@dataclass(frozen=True, slots=True)
class Barcode:
    gtin14: str
    # As scanned or typed; the stored key is always `gtin14`.
    format: BarcodeFormat
    kind: BarcodeKind

    @property
    def display(self) -> str:
        return display_form(self.gtin14)


def _digits(code: object) -> str:
    # The raw input is never echoed into the error: a driver's licence scanned at the item prompt would put
    # a name and address into logs.
    if not isinstance(code, str):
        raise InvalidBarcodeCharacters()
    cleaned = code.strip()
    if not cleaned:
        raise InvalidBarcodeLength(details={"length": 0})
    # str.isdigit() would accept "²" and Arabic-Indic digits; only ASCII 0-9 are barcode digits.
    if not _DIGITS.issuperset(cleaned):
        raise InvalidBarcodeCharacters()
    return cleaned


def _check_digit(body: str) -> int:
    # GS1 mod 10: weights 3, 1, 3 … starting from the digit next to the check digit.
    total = sum(int(digit) * (3 if position % 2 == 0 else 1) for position, digit in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def compute_check_digit(body: str) -> int:
    """The GS1 check digit for `body`, the code without its check digit (1 to 17 digits)."""
    digits = _digits(body)
    if len(digits) > _MAX_BODY_LENGTH:
        raise InvalidBarcodeLength(details={"length": len(digits)})
    return _check_digit(digits)


def _upce_body_to_upca_body(body: str) -> str:
    """Expand "number system + 6 digits" to the 11-digit UPC-A body (GS1 General Specifications 5.2.2.4.2)."""
    system, d = body[0], body[1:]
    last = d[5]
    if last in "012":
        # Manufacturer d1 d2 last 0 0, item 0 0 d3 d4 d5.
        return f"{system}{d[0:2]}{last}0000{d[2:5]}"
    if last == "3":
        # Manufacturer d1 d2 d3 0 0, item 0 0 0 d4 d5.
        return f"{system}{d[0:3]}00000{d[3:5]}"
    if last == "4":
        # Manufacturer d1 d2 d3 d4 0, item 0 0 0 0 d5.
        return f"{system}{d[0:4]}00000{d[4]}"
    # 5-9: manufacturer d1 … d5, item 0 0 0 0 last.
    return f"{system}{d[0:5]}0000{last}"


def _require_upce_system(digits: str) -> None:
    if digits[0] not in "01":
        # Not a length or check problem: this leading digit is simply not allowed in a UPC-E.
        raise InvalidBarcodeCharacters("A UPC-E starts with number system 0 or 1.")


def _upce_is_valid(digits: str) -> bool:
    return digits[0] in "01" and _check_digit(_upce_body_to_upca_body(digits[:7])) == int(digits[7])


def expand_upce(code: str) -> str:
    """The 12-digit UPC-A of an 8-digit UPC-E (number system, six digits, check digit)."""
    digits = _digits(code)
    if len(digits) != 8:
        raise InvalidBarcodeLength(details={"length": len(digits)})
    _require_upce_system(digits)
    if not _upce_is_valid(digits):
        raise InvalidCheckDigit()
    return _upce_body_to_upca_body(digits[:7]) + digits[7]


def _require_check_digit(digits: str) -> None:
    if _check_digit(digits[:-1]) != int(digits[-1]):
        raise InvalidCheckDigit()


def _read(digits: str, expected: BarcodeFormat | None) -> tuple[str, BarcodeFormat]:
    """Check `digits` and return (GTIN-14, format)."""
    length = len(digits)
    if expected is not None and _LENGTH_OF[expected] != length:
        raise InvalidBarcodeLength(details={"length": length, "expected": expected.value})
    if length == 8:
        if expected is BarcodeFormat.UPC_E or (expected is None and _upce_is_valid(digits)):
            return expand_upce(digits).zfill(14), BarcodeFormat.UPC_E
        _require_check_digit(digits)
        return digits.zfill(14), BarcodeFormat.EAN_8
    if length not in _FORMAT_OF_LENGTH:
        raise InvalidBarcodeLength(details={"length": length})
    _require_check_digit(digits)
    return digits.zfill(14), _FORMAT_OF_LENGTH[length]


def classify(gtin14: str) -> BarcodeKind:
    """The kind of a stored GTIN-14 (see `BarcodeKind`)."""
    digits = _gtin14(gtin14)
    if digits[0] == "9":
        # Indicator 9: a variable-measure trade item; its weight or count travels outside the GTIN.
        return BarcodeKind.IN_STORE
    if digits[0] != "0":
        return BarcodeKind.PRODUCT
    if digits.startswith("000000"):
        # GTIN-8: GS1-8 prefixes 0xx and 2xx are restricted-circulation numbers within a company.
        return BarcodeKind.IN_STORE if digits[6] in "02" else BarcodeKind.PRODUCT
    gtin13 = digits[1:]
    # EAN-13 "0x" is UPC-A number system x: 02 and 04 are UPC-A systems 2 and 4, 05 is UPC-A system 5.
    if gtin13.startswith(("02", "04", "2")):
        return BarcodeKind.IN_STORE
    if gtin13.startswith(("05", "98", "99")):
        return BarcodeKind.COUPON
    return BarcodeKind.PRODUCT


def parse(code: str, *, expected: BarcodeFormat | None = None) -> Barcode:
    """Validate a scanned or typed code.

    `expected` pins the format when the caller knows it (a scanner reporting EAN-8 or UPC-E); its length
    must match.
    """
    # BarcodeFormat(...) lets a plain "ean_8" from a settings file compare by identity below.
    gtin14, found = _read(_digits(code), None if expected is None else BarcodeFormat(expected))
    return Barcode(gtin14=gtin14, format=found, kind=classify(gtin14))


def normalize(code: str, *, expected: BarcodeFormat | None = None) -> str:
    """The stored form of a code: its GTIN-14, zero-padded."""
    return parse(code, expected=expected).gtin14


def is_valid(code: str, *, expected: BarcodeFormat | None = None) -> bool:
    try:
        parse(code, expected=expected)
    except BarcodeError:
        return False
    return True


def _gtin14(gtin14: str) -> str:
    digits = _digits(gtin14)
    if len(digits) != 14:
        raise InvalidBarcodeLength(details={"length": len(digits), "expected": BarcodeFormat.GTIN_14.value})
    _require_check_digit(digits)
    return digits


def display_form(gtin14: str) -> str:
    """The shortest GS1 form of a stored GTIN-14, for receipts and screens (rule in the module docstring)."""
    digits = _gtin14(gtin14)
    if digits.startswith("000000"):
        return digits[6:]
    if digits.startswith("00"):
        return digits[2:]
    if digits.startswith("0"):
        return digits[1:]
    return digits


def make_code(body: str, fmt: BarcodeFormat) -> str:
    """A valid code of format `fmt` from its body (the code without check digit), e.g. for seed data.

    A UPC-E body is the number system (0 or 1) and six digits; its check digit comes from its UPC-A.
    """
    digits = _digits(body)
    fmt = BarcodeFormat(fmt)
    if len(digits) != _LENGTH_OF[fmt] - 1:
        raise InvalidBarcodeLength(details={"length": len(digits), "expected": fmt.value})
    if fmt is BarcodeFormat.UPC_E:
        _require_upce_system(digits)
        return digits + str(_check_digit(_upce_body_to_upca_body(digits)))
    return digits + str(_check_digit(digits))
