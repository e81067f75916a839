"""No request body, however odd, makes the compliance API fail with a 500 or echo a scanned barcode."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MARKER = "ZQXBARCODE"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=8,
)
DATES = st.dates().map(lambda d: d.isoformat()) | st.text(max_size=12) | st.integers()
IDS = st.integers(min_value=-(2**70), max_value=2**70)
BODIES = st.fixed_dictionaries(
    {"method": st.sampled_from(["scan", "manual", "profile", "door"])},
    optional={
        "raw": st.text(max_size=300).map(lambda t: MARKER + t)
        | st.binary(max_size=200).map(lambda b: MARKER + b.decode("latin-1")),
        "dob": DATES,
        "expires": DATES,
        "issued": DATES,
        "document_type": st.sampled_from(["passport", "military_id", "id_card", "library_card"]),
        "jurisdiction": st.text(max_size=4),
        "photo_compared": st.booleans() | st.integers(),
        "sale_id": IDS,
        "customer_id": IDS,
        "store_id": IDS,
        "min_age": IDS,
        "save_to_profile": st.booleans(),
    },
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=BODIES | JSON)
async def test_id_check_bodies_never_fail_with_500_or_echo_the_barcode(
    http: httpx.AsyncClient, cashier: dict[str, str], body: Any
) -> None:
    response = await http.post("/compliance/id-checks", headers=cashier, json=body)
    assert response.status_code < 500, response.text
    assert MARKER not in response.text


@FUZZ
@given(body=JSON, event_id=st.integers(min_value=-5, max_value=2**64))
async def test_override_bodies_never_fail_with_500(
    http: httpx.AsyncClient, cashier: dict[str, str], body: Any, event_id: int
) -> None:
    response = await http.post(f"/compliance/id-checks/{event_id}/override", headers=cashier, json=body)
    assert response.status_code < 500, response.text
