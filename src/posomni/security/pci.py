"""Card numbers never reach the server: a guard that refuses them in requests, and a scrubber for logs.

Cards are read by the processor's reader or form; the server only ever sees a reference, the brand and the
last four digits. Anything that looks like a card number in a request is therefore a mistake (a number typed
into a note, a pasted card) and is refused before any route, log line or error report sees it.

What looks like a card number (`find_card_numbers`):

* 13 to 19 digits whose Luhn check passes and whose first digit is 2–6 — the major industry identifiers of
  the payment card networks (Mastercard 2 and 5; Amex, JCB and Diners 3; Visa 4; Discover, UnionPay and
  Maestro 6). Numbers starting 0, 1, 7, 8 or 9 are not payment cards, and excluding them keeps millisecond
  timestamps (1…), GTIN-14s with indicator 0, 1, 7–9 and national ID numbers from being refused by chance;
* written contiguously or in groups joined by a single space or dash ("4242 4242 4242 4242",
  "3782-822463-10005"); in grouped writing every group has at least 3 digits (card layouts group 4, 5 or 6)
  and any run of consecutive groups is a candidate, so a number followed by its CVV is still caught;
* a whole value or inside longer text, but never a slice of a longer digit run: "12345678901234567890123"
  holds no card number, and neither does a 20-digit reference.

Where the guard looks: every JSON string, number and object key at any depth, every form field (not
uploaded files), other text bodies as text, query-string values, and each segment of the URL path (text path
parameters: a receipt number, a barcode, a reader id).

Not refused, by rule:

* barcodes in barcode fields. A field named `code`, `barcode`, `gtin`, `upc`, `ean` (or ending `_code`,
  `_barcode`, `_gtin`, `_upc`, `_ean`, or a list under `barcodes`, `codes`, `gtins`) whose value is a valid
  GS1 code (check digit verified by `catalog.barcodes.is_valid`) is a scanned product. Only 13- and 14-digit
  card numbers can collide with a GTIN; a 15- to 19-digit card number in those fields is still refused. A
  path segment is judged the same way (`/catalog/lookup/{code}` takes scanned barcodes);
* ID scans: a string carrying an AAMVA header (`ANSI ` or `AAMVA` followed by the six-digit issuer number)
  is a driver's licence barcode for the age check, not card data. Its document numbers can be long digit runs
  that pass Luhn by chance;
* the Stripe webhook, whose body is verified by its signature and stored only through a field whitelist.

The refusal is 422 `card_data_refused` naming the field (masked), never the value; the log line says the
same. `scrub(text)` masks card-like numbers for log processors and error reports (structlog and Sentry).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from posomni.catalog import barcodes
from posomni.logging import get_logger

log = get_logger(__name__)

MIN_DIGITS: Final = 13
MAX_DIGITS: Final = 19
CARD_FIRST_DIGITS: Final = frozenset("23456")
REFUSAL_CODE: Final = "card_data_refused"
REFUSAL_MESSAGE: Final = "Card numbers must never be sent to the server: take cards on the card reader."

# Digit groups joined by one space or dash; the longest such stretch is one "run".
_RUN = re.compile(r"\d+(?:[ -]\d+)*")
_AAMVA_HEADER = re.compile(r"(?:ANSI |AAMVA)\d{6}")
_BARCODE_KEYS: Final = frozenset({"code", "barcode", "gtin", "gtin14", "upc", "ean", "barcodes", "codes", "gtins"})
_BARCODE_SUFFIXES: Final = ("_code", "_barcode", "_gtin", "_upc", "_ean")
_MAX_GS1_LENGTH: Final = 14
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_card_number(digits: str) -> bool:
    return MIN_DIGITS <= len(digits) <= MAX_DIGITS and digits[0] in CARD_FIRST_DIGITS and luhn_valid(digits)


def find_card_numbers(text: str) -> list[tuple[int, int]]:
    """(start, end) of every card-like number in `text` (rule in the module docstring)."""
    found: list[tuple[int, int]] = []
    for run in _RUN.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start()) for m in re.finditer(r"\d+", run.group())]
        if len(groups) == 1:
            start, end = groups[0]
            if _is_card_number(text[start:end]):
                found.append((start, end))
            continue
        # Grouped writing: any stretch of consecutive groups of 3+ digits is a candidate.
        for i in range(len(groups)):
            digits = ""
            for start, end in groups[i:]:
                if end - start < 3:
                    break
                digits += text[start:end]
                if len(digits) > MAX_DIGITS:
                    break
                if _is_card_number(digits):
                    found.append((groups[i][0], end))
    return _merge(found)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def contains_card_number(text: str) -> bool:
    return bool(find_card_numbers(text))


def scrub(text: str) -> str:
    """`text` with every card-like number masked except its last four digits: "4242 4242 4242 4242" becomes
    "[card ****4242]". For log processors and error reports."""
    spans = find_card_numbers(text)
    if not spans:
        return text
    pieces: list[str] = []
    last = 0
    for start, end in spans:
        digits = re.sub(r"\D", "", text[start:end])
        pieces.append(text[last:start])
        pieces.append(f"[card ****{digits[-4:]}]")
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def scrub_value(value: Any) -> Any:
    """`scrub` applied to every string (and integer) inside a JSON-like value, keys included."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        text = str(value)
        return scrub(text) if contains_card_number(text) else value
    if isinstance(value, Mapping):
        return {scrub(str(k)): scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v) for v in value]
    return value


def scrub_event_dict(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor: masks card-like numbers in every field of a log event."""
    return {key: scrub_value(value) for key, value in event_dict.items()}


class ScrubFilter(logging.Filter):
    """A stdlib logging filter masking card-like numbers (for uvicorn's access log, which prints query strings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# --- finding card data in a request -------------------------------------------------------------------


def _is_barcode_key(key: str | None) -> bool:
    if key is None:
        return False
    name = key.lower()
    return name in _BARCODE_KEYS or name.endswith(_BARCODE_SUFFIXES)


def _exempt_text(text: str, key: str | None) -> bool:
    if _is_barcode_key(key):
        stripped = text.strip()
        if len(stripped) <= _MAX_GS1_LENGTH and barcodes.is_valid(stripped):
            return True
    return _AAMVA_HEADER.search(text) is not None


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e20:
        return str(int(value))
    return None


def _walk(value: Any, path: str, key: str | None) -> Iterator[str]:
    """Paths (JSON-pointer style) of the values that hold a card number."""
    if isinstance(value, Mapping):
        for child_key, child in value.items():
            child_path = f"{path}/{child_key}"
            if contains_card_number(str(child_key)):
                yield path + "/(key)"
            yield from _walk(child, child_path, str(child_key))
        return
    if isinstance(value, list):
        for index, child in enumerate(value):
            # Items of a list inherit its name, so ["barcodes"][0] is still a barcode field.
            yield from _walk(child, f"{path}/{index}", key)
        return
    text = _scalar_text(value)
    if text is not None and contains_card_number(text) and not _exempt_text(text, key):
        yield path or "/"


def card_data_location(fields: Any) -> str | None:
    """Where the first card number is in decoded request data (JSON, or form fields as a mapping), else None."""
    return next(_walk(fields, "", None), None)


def _query_location(query: str) -> str | None:
    fields: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        fields.setdefault(name, []).append(value)
    found = card_data_location(fields)
    return None if found is None else "query:" + found


def _path_location(path: str) -> str | None:
    """`path:/<n>` for the first segment of the (decoded) URL path holding a card number, else None."""
    for index, segment in enumerate(path.split("/")):
        if segment and contains_card_number(segment) and not _exempt_text(segment, "code"):
            return f"path:/{index}"
    return None


def _is_json(content_type: str) -> bool:
    main = content_type.split(";", 1)[0].strip().lower()
    return main == "" or main == "application/json" or main.endswith("+json")


class CardDataGuardMiddleware:
    """Refuses, with 422 `card_data_refused`, any request carrying a card number (see the module docstring).

    The body is read once here and replayed to the app unchanged."""

    def __init__(self, app: ASGIApp, *, exempt_paths: frozenset[str] = frozenset({"/webhooks/stripe"})) -> None:
        self.app = app
        self.exempt_paths = exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        location = _path_location(scope["path"]) or _query_location(scope.get("query_string", b"").decode("latin-1"))
        replay = receive
        if location is None and scope["method"] in _BODY_METHODS:
            messages, body = await _read_body(receive)
            replay = _replayer(messages, receive)
            if body:
                location = await _body_location(scope, body, _replayer(messages, receive))
        if location is None:
            await self.app(scope, replay, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        # Neither the value nor the body is logged: only where it was.
        log.warning(
            "card_data_refused",
            method=scope["method"],
            path=scrub(scope["path"]),
            field=scrub(location),
            request_id=request_id,
        )
        response = JSONResponse(
            {"error": {"code": REFUSAL_CODE, "message": REFUSAL_MESSAGE, "details": {"field": scrub(location)}}},
            status_code=422,
        )
        await response(scope, replay, send)


async def _read_body(receive: Receive) -> tuple[list[Message], bytes]:
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return messages, b"".join(chunks)


def _replayer(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _body_location(scope: Scope, body: bytes, receive: Receive) -> str | None:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    content_type = headers.get("content-type", "")
    main = content_type.split(";", 1)[0].strip().lower()
    if _is_json(content_type):
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            # Not JSON after all: the route will refuse it; still look at it as text.
            return _text_location(body)
        return card_data_location(document)
    if main in ("application/x-www-form-urlencoded", "multipart/form-data"):
        request = Request(scope, receive)
        try:
            form = await request.form()
        except Exception:
            # A malformed form is the route's to refuse; still look at it as text.
            return _text_location(body)
        try:
            fields: dict[str, list[str]] = {}
            for name, value in form.multi_items():
                # Uploaded files are not fields anyone types into.
                if not isinstance(value, UploadFile):
                    fields.setdefault(name, []).append(value)
            return card_data_location(fields)
        finally:
            await form.close()
    return _text_location(body)


def _text_location(body: bytes) -> str | None:
    text = body.decode("utf-8", "replace")
    if contains_card_number(text) and not _exempt_text(text, None):
        return "/"
    return None
