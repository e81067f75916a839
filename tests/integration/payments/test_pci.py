"""No card data on the server: the guard refuses card numbers in every request, and never logs them."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from posomni.catalog import barcodes
from posomni.database import Database
from posomni.security.pci import card_data_location, find_card_numbers, luhn_valid, scrub
from tests.conftest import make_settings
from tests.support import running_app

VISA = "4242424242424242"
AMEX = "378282246310005"
MASTERCARD = "5555555555554444"
# How a card number may be written into a field.
WRITTEN = [
    VISA,
    "4242 4242 4242 4242",
    "4242-4242-4242-4242",
    AMEX,
    "3782 822463 10005",
    MASTERCARD,
    f"card {VISA} exp 12/29",
    f"please charge {MASTERCARD}, thanks",
]
AAMVA_DIR = Path(__file__).resolve().parents[2] / "data" / "aamva"
AAMVA_SAMPLES = {p.name: p.read_bytes().decode("latin-1") for p in sorted(AAMVA_DIR.glob("*.txt"))}
REFUSED = "card_data_refused"


# ---- the rule -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", WRITTEN)
def test_card_numbers_are_found_however_they_are_written(text: str) -> None:
    assert find_card_numbers(text)
    assert card_data_location({"note": text}) == "/note"


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424241",  # Luhn fails
        "42424242424242424242",  # 20 digits: a longer run, not a card
        "1764369594123",  # a millisecond timestamp (first digit 1)
        "0012345678905",  # a GTIN-13 of a US product
        "12345678901234567890123 4242",
        "2026-11-28 12:30",
        "555-123-4567",
        "Order 4242 4242",  # too short
    ],
)
def test_what_is_not_a_card_number(text: str) -> None:
    assert find_card_numbers(text) == []


def test_scrub_masks_all_but_the_last_four_digits() -> None:
    text = f"paid with {VISA} and 3782-822463-10005 at 12:30"
    assert scrub(text) == "paid with [card ****4242] and [card ****0005] at 12:30"
    assert scrub("nothing here 12345") == "nothing here 12345"


def luhn_passing_gtins() -> list[str]:
    """A GTIN-13 and a GTIN-14 that also pass Luhn and start like a Visa card: only the field name tells."""
    found = []
    for fmt, length in ((barcodes.BarcodeFormat.EAN_13, 13), (barcodes.BarcodeFormat.GTIN_14, 14)):
        for serial in range(10_000):
            code = barcodes.make_code("4" + str(serial).zfill(length - 2), fmt)
            if luhn_valid(code):
                found.append(code)
                break
    return found


@pytest.mark.parametrize("code", luhn_passing_gtins())
def test_valid_barcodes_in_barcode_fields_are_not_card_data(code: str) -> None:
    assert find_card_numbers(code)
    for body in ({"barcode": code}, {"gtin": code}, {"code": f" {code} "}, {"item_barcode": code}):
        assert card_data_location(body) is None
    assert card_data_location({"barcodes": [code, "0012345678905"]}) is None
    assert card_data_location({"note": code}) == "/note"
    # A 16-digit card number is never a GS1 barcode, whatever the field is called.
    assert card_data_location({"barcode": VISA}) == "/barcode"


@pytest.mark.parametrize("name", sorted(AAMVA_SAMPLES))
def test_driver_licence_scans_are_not_card_data(name: str) -> None:
    assert card_data_location({"raw": AAMVA_SAMPLES[name]}) is None


def test_a_licence_scan_whose_document_number_passes_luhn_is_still_accepted() -> None:
    discriminator = "4111111111111111"  # 16 digits, Luhn-valid: looks like a Visa on its own
    scan = (
        "@\n\x1e\rANSI 636010100102DL00410250ZF02910034DLDAQD123456789012\nDCSDOE\nDACJANE\nDBB01152000\n"
        f"DBA01152030\nDCF{discriminator}\nDAJFL\r"
    )
    assert find_card_numbers(scan)
    assert card_data_location({"raw": scan}) is None
    assert card_data_location({"raw": scan.replace("ANSI 636010", "")}) == "/raw"


# ---- the guard in the app ---------------------------------------------------------------------------------


@pytest.fixture
async def app_client(sqlite_url: str, tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    database = Database(sqlite_url)
    settings = make_settings(DATABASE_URL=sqlite_url, POSOMNI_DATA_DIR=str(tmp_path), CARD_PROCESSOR="simulated")
    try:
        async with running_app(settings, database) as (app, http):
            yield app, http
    finally:
        await database.dispose()


def body_routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    routes = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or context.path is None:
            continue
        for method in sorted(context.methods or ()):
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                routes.append((method, context.path, route))
    return routes


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        resolved: dict[str, Any] = defs.get(ref.rsplit("/", 1)[-1], {})
        return resolved
    for combined in ("anyOf", "allOf", "oneOf"):
        for option in schema.get(combined, []):
            if "$ref" in option or "properties" in option:
                return _resolve(option, defs)
    return schema


def field_paths(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> Iterator[list[str | int]]:
    """Every field position of a body schema, nested objects and lists included."""
    schema = _resolve(schema, defs)
    if depth > 4:
        return
    for name, child in (schema.get("properties") or {}).items():
        yield [name]
        child = _resolve(child, defs)
        if child.get("type") == "array":
            for rest in field_paths(_resolve(child.get("items") or {}, defs), defs, depth + 1):
                yield [name, 0, *rest]
            yield [name, 0]
        else:
            for rest in field_paths(child, defs, depth + 1):
                yield [name, *rest]


def place(path: list[str | int], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        return [place(rest, value)]
    return {head: place(rest, value)}


def payloads_for(route: APIRoute) -> list[Any]:
    """Bodies with a card number in every field position of the route's schema, plus generic positions."""
    bodies: list[Any] = [
        {"note": VISA},
        {"a": {"b": [{"c": "4242 4242 4242 4242"}]}},
        ["3782-822463-10005"],
        {"amount": int(VISA)},
        {"text": f"customer's card is {MASTERCARD}, exp 12/29"},
        {MASTERCARD: "as a key"},
    ]
    if route.body_field is not None:
        annotation = route.body_field.field_info.annotation
        schema_of = getattr(annotation, "model_json_schema", None)
        if schema_of is not None:
            schema = schema_of()
            defs = schema.get("$defs", {})
            for path in field_paths(schema, defs):
                bodies.append(place(path, VISA))
                bodies.append(place(path, "4242-4242-4242-4242"))
    return bodies


def fill(path: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", "999999", path)


def everything_logged(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    captured = capsys.readouterr()
    return captured.out + captured.err + caplog.text


async def test_every_route_that_takes_a_body_refuses_card_numbers_in_every_field(
    app_client: tuple[FastAPI, httpx.AsyncClient],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, http = app_client
    caplog.set_level("DEBUG")
    routes = [r for r in body_routes(app) if r[1] != "/webhooks/stripe"]
    assert len(routes) >= 5
    sent = 0
    for method, path, route in routes:
        for body in payloads_for(route):
            response = await http.request(method, fill(path), json=body)
            assert response.status_code == 422, f"{method} {path} {body!r}: {response.status_code}"
            assert response.json()["error"]["code"] == REFUSED
            sent += 1
        form = await http.request(method, fill(path), data={"note": "4242 4242 4242 4242"})
        assert form.json()["error"]["code"] == REFUSED
    assert sent > 100

    logged = everything_logged(capsys, caplog)
    assert "card_data_refused" in logged
    # Whole numbers in every written form (a bare 6-digit fragment could occur in a random request id).
    for number in (
        VISA,
        AMEX,
        MASTERCARD,
        "4242 4242 4242 4242",
        "4242-4242-4242-4242",
        "3782-822463-10005",
        "3782 822463 10005",
    ):
        assert number not in logged


async def test_the_refusal_names_the_field_never_the_value(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, http = app_client
    response = await http.post("/auth/login", json={"username": "x", "password": f"my card {VISA}"})

    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"field": "/password"}
    assert VISA not in response.text
    keyed = await http.post("/auth/login", json={VISA: "x"})
    assert VISA not in keyed.text


async def test_card_numbers_in_the_query_string_are_refused_too(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, http = app_client
    response = await http.get("/health", params={"q": "4242 4242 4242 4242"})
    assert (response.status_code, response.json()["error"]["code"]) == (422, REFUSED)
    assert response.json()["error"]["details"]["field"] == "query:/q/0"


async def test_ordinary_requests_pass_untouched(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, http = app_client
    [ean, gtin] = luhn_passing_gtins()
    bodies: list[Any] = [
        {"username": "cashier", "password": "wrong-password-123"},
        {"barcode": ean, "quantity": 1},
        {"lines": [{"gtin": gtin}], "client_time": 1764369594123},
        {"raw": next(iter(AAMVA_SAMPLES.values()))},
    ]
    for body in bodies:
        response = await http.post("/auth/login", json=body)
        assert response.status_code != 422 or response.json()["error"]["code"] != REFUSED, body
    raw_json = json.dumps({"username": "cashier", "password": "x" * 12}).encode()
    response = await http.post("/auth/login", content=raw_json, headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    # Uploaded files are not fields anyone types into.
    upload = await http.post("/auth/login", files={"file": ("cards.csv", VISA.encode())}, data={"note": "ok"})
    assert upload.json()["error"]["code"] != REFUSED


async def test_the_stripe_webhook_is_left_to_its_signature(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, http = app_client
    response = await http.post("/webhooks/stripe", json={"id": VISA}, headers={"Stripe-Signature": "t=1,v1=x"})
    assert response.json()["error"]["code"] != REFUSED


def text_parameter_routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    """Every route that takes text outside its body: a query parameter or a text path parameter."""
    routes = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or context.path is None:
            continue
        text_path = any(p.field_info.annotation is str for p in route.dependant.path_params)
        if route.dependant.query_params or text_path:
            routes.extend((method, context.path, route) for method in sorted(context.methods or ()))
    return routes


def with_card_in_path(path: str, route: APIRoute, number: str) -> str:
    text_params = {p.name for p in route.dependant.path_params if p.field_info.annotation is str}

    def value(match: Any) -> str:
        name = match.group(1).split(":")[0]
        return number if name in text_params else "999999"

    return re.sub(r"\{([^}]+)\}", value, path)


async def test_every_query_and_text_path_parameter_refuses_card_numbers(
    app_client: tuple[FastAPI, httpx.AsyncClient],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, http = app_client
    caplog.set_level("DEBUG")
    caplog.set_level("WARNING", logger="httpx")  # the test's own client logs the URLs it sends
    routes = text_parameter_routes(app)
    in_path = [r for r in routes if any(p.field_info.annotation is str for p in r[2].dependant.path_params)]
    assert len(routes) >= 20
    assert len(in_path) >= 3  # a receipt number, a barcode, a reader id
    sent = 0
    for method, path, route in routes:
        for number in (VISA, "4242 4242 4242 4242", "3782-822463-10005"):
            for param in route.dependant.query_params:
                response = await http.request(method, fill(path), params={param.alias or param.name: number})
                assert response.status_code == 422, f"{method} {path} ?{param.name}: {response.status_code}"
                assert response.json()["error"]["code"] == REFUSED
                assert number not in response.text
                sent += 1
            if (method, path, route) in in_path:
                response = await http.request(method, with_card_in_path(path, route, number))
                assert response.status_code == 422, f"{method} {path} with a card: {response.status_code}"
                assert response.json()["error"]["code"] == REFUSED
                assert response.json()["error"]["details"]["field"].startswith("path:")
                assert number not in response.text
                sent += 1
    assert sent > 60

    logged = everything_logged(capsys, caplog)
    assert "card_data_refused" in logged
    for number in (VISA, AMEX, "4242 4242 4242 4242", "4242-4242-4242-4242", "3782-822463-10005", "3782 822463 10005"):
        assert number not in logged


async def test_a_scanned_barcode_in_the_path_is_not_card_data(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, http = app_client
    for code in luhn_passing_gtins():
        assert find_card_numbers(code)  # a card number by shape alone
        response = await http.get(f"/catalog/lookup/{code}")
        assert response.json().get("error", {}).get("code") != REFUSED, code
