"""The NAXML POS–Back Office words this package reads and writes, and the mappings between them and the catalog.

The XSDs are members-only (Conexxus); the element names follow the vocabulary as back-office vendors publish
it in their import guides. docs/back-office.md lists every element emitted and read.
"""

from __future__ import annotations

import re
from typing import Final

from posomni.catalog.barcodes import display_form

NAMESPACE: Final = "http://www.naxml.org/POSBO/Vocabulary/2003-10-16"
VERSION: Final = "3.4"
VENDOR_NAME: Final = "POS-Omni"

# Length of the shortest GS1 form (`display_form`) → NAXML POSCodeFormat.
_FORMAT_OF_LENGTH: Final = {8: "ean8", 12: "upcA", 13: "ean13", 14: "gtin"}
# Items without a barcode are reported under their SKU.
PLU_FORMAT: Final = "plu"

# Category codes are slugs (lower-case letter first). A numeric merchandise code — what most back offices use
# ("1001") — is kept as the category "mc_1001" and reported as "1001" again, so the mapping round-trips.
_NUMERIC_PREFIX: Final = "mc_"
_SLUG: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_DIGITS: Final = re.compile(r"^[0-9]{1,29}$")


def pos_code(gtin14: str) -> tuple[str, str]:
    """(POSCodeFormat, POSCode) of a stored GTIN-14: UPC-A for US items, EAN-13/EAN-8 abroad, else GTIN-14."""
    code = display_form(gtin14)
    return _FORMAT_OF_LENGTH[len(code)], code


def merchandise_code(category_code: str) -> str:
    if category_code.startswith(_NUMERIC_PREFIX) and _DIGITS.match(category_code[len(_NUMERIC_PREFIX) :]):
        return category_code[len(_NUMERIC_PREFIX) :]
    return category_code


def category_code(merchandise: str) -> str | None:
    """The category a merchandise code is kept as; None when it can be neither (a code with spaces, say)."""
    text = merchandise.strip()
    if _DIGITS.match(text):
        return _NUMERIC_PREFIX + text
    lowered = text.lower()
    return lowered if _SLUG.match(lowered) else None


def dollars(cents: int) -> str:
    """Money as NAXML carries it: decimal dollars with two places ("21.99"); input is integer cents."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"
