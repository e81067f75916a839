"""A stateful fake of the Stripe API that speaks real HTTP, so tests drive it with the real `stripe` SDK.

It decodes form bodies in Stripe's bracket notation, answers with Stripe's JSON objects and error shape
(`{"error": {"type", "code", "decline_code", "message", "param"}}` plus a `Request-Id` header), replays
idempotent requests, records every request, emits events (delivered as signed webhooks when a URL is
configured) and injects the faults a payment adapter must survive:

    with running_fake_stripe() as fake:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": fake.base_url}, ...)
        fake.lose_response_next(path="/v1/payment_intents")   # processed, then the connection drops
        ...
        assert fake.count_requests("POST", "/v1/payment_intents") == 2
        assert len(fake.charges()) == 1

Behaviour follows the API version in each request's `Stripe-Version` header where it matters (the SDK
pins one): from 2026-09-30 `payment_method_types` is refused and `allowed_payment_method_types` is the way
to restrict an intent to `card` or `card_present`.

All amounts are integers in the currency's smallest unit (cents), as in Stripe.
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import hashlib
import hmac
import json
import queue
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from .http_server import BackgroundServer

JSON = dict[str, Any]

# The account's default API version, used when a request sends no Stripe-Version (stripe 16.x pins this one).
DEFAULT_API_VERSION = "2026-10-28.endive"
TEST_API_KEY = "sk_test_fake_posomni"

_ID_ALPHABET = string.ascii_letters + string.digits
_MIN_AMOUNT = {"usd": 50, "cad": 50, "eur": 50, "gbp": 30}
_MAX_AMOUNT = 99_999_999
_CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")
_CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


# --------------------------------------------------------------------------------------------------------
# Test cards
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str
    message: str
    param: str | None = None


@dataclass(frozen=True)
class SimulatedCard:
    brand: str
    last4: str
    funding: str = "credit"
    decline: Decline | None = None


_GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")
_INSUFFICIENT = Decline("card_declined", "insufficient_funds", "Your card has insufficient funds.")
_LOST = Decline("card_declined", "lost_card", "Your card was declined.")
_STOLEN = Decline("card_declined", "stolen_card", "Your card was declined.")
_FRAUD = Decline("card_declined", "fraudulent", "Your card was declined.")
_EXPIRED = Decline("expired_card", "expired_card", "Your card has expired.", param="exp_month")
_CVC = Decline("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect.", param="cvc")
_PROCESSING = Decline(
    "processing_error", "processing_error", "An error occurred while processing your card. Try again in a little bit."
)
_VELOCITY = Decline("card_declined", "card_velocity_exceeded", "Your card was declined.")

# Stripe's test PaymentMethod tokens (https://docs.stripe.com/testing).
TEST_PAYMENT_METHODS: dict[str, SimulatedCard] = {
    "pm_card_visa": SimulatedCard("visa", "4242"),
    "pm_card_visa_debit": SimulatedCard("visa", "5556", funding="debit"),
    "pm_card_mastercard": SimulatedCard("mastercard", "4444"),
    "pm_card_mastercard_debit": SimulatedCard("mastercard", "8210", funding="debit"),
    "pm_card_amex": SimulatedCard("amex", "8431"),
    "pm_card_discover": SimulatedCard("discover", "1117"),
    "pm_card_chargeDeclined": SimulatedCard("visa", "0002", decline=_GENERIC),
    "pm_card_chargeDeclinedInsufficientFunds": SimulatedCard("visa", "9995", decline=_INSUFFICIENT),
    "pm_card_chargeDeclinedLostCard": SimulatedCard("visa", "9987", decline=_LOST),
    "pm_card_chargeDeclinedStolenCard": SimulatedCard("visa", "9979", decline=_STOLEN),
    "pm_card_chargeDeclinedFraudulent": SimulatedCard("visa", "0019", decline=_FRAUD),
    "pm_card_chargeDeclinedExpiredCard": SimulatedCard("visa", "0069", decline=_EXPIRED),
    "pm_card_chargeDeclinedIncorrectCvc": SimulatedCard("visa", "0127", decline=_CVC),
    "pm_card_chargeDeclinedProcessingError": SimulatedCard("visa", "0119", decline=_PROCESSING),
    "pm_card_chargeDeclinedVelocityLimitExceeded": SimulatedCard("visa", "6975", decline=_VELOCITY),
}

# Card numbers accepted by `present_payment_method` (`card_present[number]`) on a simulated reader.
TEST_CARD_PRESENT_NUMBERS: dict[str, SimulatedCard] = {
    "4242424242424242": SimulatedCard("visa", "4242"),
    "4000056655665556": SimulatedCard("visa", "5556", funding="debit"),
    "5555555555554444": SimulatedCard("mastercard", "4444"),
    "378282246310005": SimulatedCard("amex", "0005"),
    "6011111111111117": SimulatedCard("discover", "1117"),
    "4000000000000002": SimulatedCard("visa", "0002", decline=_GENERIC),
    "4000000000009995": SimulatedCard("visa", "9995", decline=_INSUFFICIENT),
    "4000000000009987": SimulatedCard("visa", "9987", decline=_LOST),
    "4000000000009979": SimulatedCard("visa", "9979", decline=_STOLEN),
    "4000000000000069": SimulatedCard("visa", "0069", decline=_EXPIRED),
    "4000000000000119": SimulatedCard("visa", "0119", decline=_PROCESSING),
}
_DEFAULT_CARD_PRESENT = TEST_CARD_PRESENT_NUMBERS["4242424242424242"]


def _card_for_number(number: str) -> SimulatedCard:
    if number in TEST_CARD_PRESENT_NUMBERS:
        return TEST_CARD_PRESENT_NUMBERS[number]
    brand = {"4": "visa", "5": "mastercard", "3": "amex", "6": "discover"}.get(number[:1], "unknown")
    return SimulatedCard(brand, number[-4:])


# --------------------------------------------------------------------------------------------------------
# Errors and parameters
# --------------------------------------------------------------------------------------------------------


class StripeApiError(Exception):
    """An error answered in Stripe's shape: `{"error": {"type", "code", "decline_code", "message", "param"}}`.

    `stored` says whether Stripe would save it as the result of an idempotent request: errors raised while
    the request executed are saved and replayed; parameter validation failures are not.
    """

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        decline_code: str | None = None,
        param: str | None = None,
        extra: JSON | None = None,
        stored: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.decline_code = decline_code
        self.param = param
        self.extra = extra or {}
        self.stored = stored

    def error_object(self) -> JSON:
        error: JSON = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        return error

    def body(self) -> JSON:
        return {"error": self.error_object()}


def _invalid(
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    stored: bool = False,
    extra: JSON | None = None,
) -> StripeApiError:
    return StripeApiError(400, "invalid_request_error", message, param=param, code=code, stored=stored, extra=extra)


def _no_such(kind: str, object_id: str, *, param: str | None = None) -> StripeApiError:
    return StripeApiError(
        404, "invalid_request_error", f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT_RE = re.compile(r"\[([^\[\]]*)\]")


def parse_form(pairs: Iterable[tuple[str, str]]) -> JSON:
    """Decode Stripe's bracket notation: `metadata[sale_id]=7`, `expand[]=x`, `expand[0]=x`, `a[b][c]=1`."""
    root: JSON = {}
    append_counters: dict[tuple[str, ...], int] = {}
    for key, value in pairs:
        match = _KEY_RE.match(key)
        if match is None:
            raise _invalid(f"Invalid parameter name: {key}", code="parameter_unknown", param=key)
        parts = [match.group(1), *_SEGMENT_RE.findall(match.group(2))]
        node: JSON = root
        for depth, part in enumerate(parts):
            if part == "":
                # `x[]` appends: give each occurrence the next index so it becomes a list below.
                path = tuple(parts[:depth])
                part = str(append_counters.get(path, 0))
                append_counters[path] = int(part) + 1
            if depth == len(parts) - 1:
                node[part] = value
                break
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise _invalid(f"Invalid parameter: {key}", param=key)
            node = child
    converted = _listify(root, None)
    assert isinstance(converted, dict)
    return converted


def _listify(node: Any, key: str | None) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v, k) for k, v in node.items()}
    # Metadata keys are free text, so "0" there is a key, not a list index.
    if converted and key != "metadata" and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


class _Params:
    """Typed access to one request's decoded parameters, with Stripe's validation errors."""

    def __init__(self, data: JSON, allowed: Iterable[str]) -> None:
        allowed_set = set(allowed) | {"expand"}
        for name in data:
            if name not in allowed_set:
                raise _invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")
        self.data = data

    def has(self, name: str) -> bool:
        return name in self.data

    def string(self, name: str, *, required: bool = False, choices: Iterable[str] | None = None) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise _invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")
            return None
        if not isinstance(value, str):
            raise _invalid(f"Invalid string: {value!r}", param=name, code="parameter_invalid_string")
        if choices is not None and value not in choices:
            options = ", ".join(choices)
            raise _invalid(f"Invalid {name}: must be one of {options}", param=name)
        return value

    def integer(self, name: str, *, required: bool = False, minimum: int | None = None) -> int | None:
        value = self.string(name, required=required)
        if value is None:
            return None
        return _to_int(value, name, minimum=minimum)

    def boolean(self, name: str) -> bool | None:
        value = self.string(name)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise _invalid(f"Invalid boolean: {value}", param=name, code="parameter_invalid_boolean")
        return value == "true"

    def mapping(self, name: str) -> JSON | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise _invalid(f"Invalid object for {name}", param=name)
        return value

    def strings(self, name: str) -> list[str] | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _invalid(f"Invalid array for {name}", param=name)
        return value

    def expand(self) -> list[str]:
        return self.strings("expand") or []

    def metadata(self) -> dict[str, str] | None:
        value = self.data.get("metadata")
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise _invalid("Invalid metadata: must be a hash of string keys and values", param="metadata")
        if len(value) > 50:
            raise _invalid("Invalid metadata: only 50 keys are allowed", param="metadata")
        for key, item in value.items():
            if len(key) > 40:
                raise _invalid("Metadata keys must be at most 40 characters.", param=f"metadata[{key}]")
            if len(item) > 500:
                raise _invalid("Metadata values must be at most 500 characters.", param=f"metadata[{key}]")
        return dict(value)


def _to_int(value: str, name: str, *, minimum: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise _invalid(f"Invalid integer: {value}", param=name, code="parameter_invalid_integer") from None
    if minimum is not None and number < minimum:
        raise _invalid(
            f"This value must be greater than or equal to {minimum}.",
            param=name,
            code="parameter_invalid_integer",
        )
    return number


def _format_amount(amount: int, currency: str) -> str:
    if currency == "usd":
        return f"${amount / 100:,.2f}"
    return f"{amount / 100:,.2f} {currency}"


# --------------------------------------------------------------------------------------------------------
# Records for tests: requests, faults, webhooks
# --------------------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    request_id: str
    method: str
    path: str
    params: JSON
    idempotency_key: str | None
    stripe_version: str | None
    api_key: str | None
    received_at: float
    status: int | None = None
    replayed: bool = False
    fault: str | None = None


FaultKind = Literal["error", "rate_limit", "delay", "lose_response"]
LoseMode = Literal["drop", "empty"]


@dataclass
class _Fault:
    kind: FaultKind
    remaining: int
    method: str | None
    path: str | None
    status: int = 500
    seconds: float = 0.0
    after_processing: bool = False
    retry_after: int | None = None
    should_retry: bool | None = None
    lose_mode: LoseMode = "drop"

    def matches(self, method: str, path: str) -> bool:
        return _request_matches(self.method, self.path, method, path)


def _request_matches(method_filter: str | None, path_filter: str | None, method: str, path: str) -> bool:
    """`path_filter` is an exact path or a glob such as `/v1/payment_intents/*/capture`."""
    if method_filter is not None and method_filter.upper() != method:
        return False
    return path_filter is None or fnmatch.fnmatchcase(path, path_filter)


@dataclass(frozen=True)
class WebhookDelivery:
    event_id: str
    event_type: str
    status_code: int | None
    error: str | None


@dataclass
class _Stored:
    method: str
    path: str
    params: JSON
    status: int
    body: bytes
    request_id: str


class _ResponseLostError(Exception):
    """Raised after the response headers went out, so the server closes the connection mid-response."""


def sign_webhook_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Build a `Stripe-Signature` header value: `t=<unix>,v1=HMAC-SHA256(secret, "<t>.<payload>")`."""
    ts = int(time.time()) if timestamp is None else timestamp
    signed = f"{ts}.".encode() + payload
    signature = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={ts},v1={signature}"


class _WebhookSender:
    """One background thread posting signed events in order; `close()` sends what is queued, then stops."""

    def __init__(self, on_result: Callable[[WebhookDelivery], None]) -> None:
        self._on_result = on_result
        self._queue: queue.Queue[tuple[str, str, JSON, str, bytes] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="fake-stripe-webhooks", daemon=True)
        self._thread.start()

    def submit(self, url: str, secret: str, event: JSON) -> None:
        payload = json.dumps(event, indent=2).encode()
        self._queue.put((url, secret, event, event["id"], payload))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while (item := self._queue.get()) is not None:
                url, secret, event, event_id, payload = item
                headers = {
                    "Content-Type": "application/json; charset=utf-8",
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                    "Stripe-Signature": sign_webhook_payload(payload, secret),
                }
                try:
                    response = client.post(url, content=payload, headers=headers)
                except httpx.HTTPError as exc:
                    self._on_result(WebhookDelivery(event_id, event["type"], None, repr(exc)))
                else:
                    self._on_result(WebhookDelivery(event_id, event["type"], response.status_code, None))


class FakeClock:
    """Unix seconds for `created` fields; frozen or shifted so tests can place objects in time."""

    def __init__(self, start: int | None = None) -> None:
        self._frozen = start
        self._offset = 0
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return int(time.time()) + self._offset

    def set(self, timestamp: int) -> None:
        with self._lock:
            self._frozen = timestamp

    def reset(self) -> None:
        with self._lock:
            self._frozen, self._offset = None, 0

    def advance(self, seconds: int) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds


# --------------------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------------------


@dataclass
class _Call:
    params: _Params
    raw: JSON
    args: tuple[str, ...]
    request: RecordedRequest
    # The request's Stripe-Version, else the account's default, as Stripe resolves it.
    api_version: str


Handler = Callable[["FakeStripe", _Call], JSON]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def _route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    compiled = re.compile("^" + pattern.replace("{id}", "([^/]+)") + "$")

    def register(handler: Handler) -> Handler:
        _ROUTES.append((method, compiled, handler))
        return handler

    return register


@dataclass
class _State:
    intents: dict[str, JSON] = field(default_factory=dict)
    charges: dict[str, JSON] = field(default_factory=dict)
    refunds: dict[str, JSON] = field(default_factory=dict)
    payment_methods: dict[str, JSON] = field(default_factory=dict)
    readers: dict[str, JSON] = field(default_factory=dict)
    disputes: dict[str, JSON] = field(default_factory=dict)
    events: dict[str, JSON] = field(default_factory=dict)
    # Outcome of authorising with each PaymentMethod; Stripe keeps this on its side of the wire.
    card_outcomes: dict[str, SimulatedCard] = field(default_factory=dict)


class FakeStripe:
    """The fake's state, its ASGI app (the instance itself) and the controller tests use.

    Every public method is safe to call from the test thread while the server thread handles requests.
    """

    def __init__(
        self,
        *,
        clock: FakeClock | None = None,
        api_version: str = DEFAULT_API_VERSION,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> None:
        self.clock = clock or FakeClock()
        self.api_version = api_version
        self._lock = threading.RLock()
        self._state = _State()
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._idempotency: dict[tuple[str, str], _Stored] = {}
        self._server: BackgroundServer | None = None
        self._webhook_url: str | None = None
        self._webhook_secret: str | None = None
        self._webhook_sender: _WebhookSender | None = None
        self._deliveries: list[WebhookDelivery] = []
        self._deliveries_changed = threading.Condition(self._lock)
        if webhook_url is not None:
            self.configure_webhook(webhook_url, webhook_secret or "whsec_test_fake")

    # ---- running ---------------------------------------------------------------------------------------

    @contextmanager
    def serve(self, *, port: int = 0) -> Iterator[str]:
        """Serve on 127.0.0.1 in a background thread; yields the base URL for `base_addresses["api"]`."""
        server = BackgroundServer(self, port=port)
        server.start()
        self._server = server
        try:
            yield server.base_url
        finally:
            server.stop()
            self._server = None
            self.close()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not being served; use `with fake.serve():`")
        return self._server.base_url

    def go_down(self) -> None:
        """Stop listening: clients get "connection refused" until `come_up()`."""
        if self._server is None:
            raise RuntimeError("the fake is not being served")
        self._server.stop()

    def come_up(self) -> None:
        if self._server is None:
            raise RuntimeError("the fake is not being served")
        self._server.start()

    @contextmanager
    def outage(self) -> Iterator[None]:
        self.go_down()
        try:
            yield
        finally:
            self.come_up()

    # ---- fault injection -------------------------------------------------------------------------------

    def fail_next(
        self, count: int = 1, *, status: int = 500, path: str | None = None, method: str | None = None
    ) -> None:
        """The next `count` matching requests get a Stripe `api_error` with `status`, before any processing.

        `path` is an exact path or a glob (`/v1/payment_intents/*/capture`).
        """
        self._add_fault(_Fault("error", count, method, path, status=status))

    def rate_limit_next(
        self,
        count: int = 1,
        *,
        retry_after: int | None = 1,
        should_retry: bool | None = None,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """The next `count` matching requests get 429 `rate_limit` with `Retry-After`, unprocessed.

        `should_retry` adds Stripe's `Stripe-Should-Retry` header, which is what makes the SDK retry a 429.
        """
        self._add_fault(_Fault("rate_limit", count, method, path, retry_after=retry_after, should_retry=should_retry))

    def delay_next(
        self,
        seconds: float,
        count: int = 1,
        *,
        after_processing: bool = False,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """Sleep before handling (or after handling, before answering) the next `count` matching requests."""
        self._add_fault(_Fault("delay", count, method, path, seconds=seconds, after_processing=after_processing))

    def lose_response_next(
        self, count: int = 1, *, mode: LoseMode = "drop", path: str | None = None, method: str | None = None
    ) -> None:
        """Process the next `count` matching requests fully (charges happen, results are stored for
        idempotent replay), then lose the answer: `drop` closes the connection mid-response, `empty`
        answers 502 with no body."""
        self._add_fault(_Fault("lose_response", count, method, path, lose_mode=mode))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # ---- introspection ---------------------------------------------------------------------------------

    def requests(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Requests received, oldest first; `path` may be a glob. Records are copies."""
        with self._lock:
            return [copy.copy(r) for r in self._requests if _request_matches(method, path, r.method, r.path)]

    def count_requests(self, method: str | None = None, path: str | None = None) -> int:
        return len(self.requests(method, path))

    def payment_intents(self) -> list[JSON]:
        with self._lock:
            return [copy.deepcopy(i) for i in self._state.intents.values()]

    def payment_intent(self, intent_id: str) -> JSON:
        with self._lock:
            return copy.deepcopy(self._state.intents[intent_id])

    def charges(self, *, status: str | None = None) -> list[JSON]:
        """Charges in creation order; each successful authorisation is one charge."""
        with self._lock:
            return [copy.deepcopy(c) for c in self._state.charges.values() if status is None or c["status"] == status]

    def refunds(self) -> list[JSON]:
        with self._lock:
            return [copy.deepcopy(r) for r in self._state.refunds.values()]

    def events(self, event_type: str | None = None) -> list[JSON]:
        with self._lock:
            return [
                copy.deepcopy(e) for e in self._state.events.values() if event_type is None or e["type"] == event_type
            ]

    def reader(self, reader_id: str) -> JSON:
        with self._lock:
            return copy.deepcopy(self._state.readers[reader_id])

    def reset(self) -> None:
        """Back to a fresh fake, keeping the server: forget objects, requests, stored idempotent results,
        faults, the webhook endpoint and any clock adjustment. Cheaper than a new server per test."""
        with self._lock:
            self._state = _State()
            self._requests.clear()
            self._faults.clear()
            self._idempotency.clear()
            self._deliveries.clear()
            self._webhook_url = self._webhook_secret = None
            self.clock.reset()

    # ---- seeding and simulation helpers ----------------------------------------------------------------

    def add_reader(
        self,
        label: str = "Register 1",
        *,
        reader_id: str | None = None,
        device_type: str = "simulated_wisepos_e",
        online: bool = True,
    ) -> str:
        """Register a Terminal reader (as if it had been paired in the Dashboard); returns its `tmr_` id."""
        rid = reader_id or new_id("tmr", 14)
        with self._lock:
            self._state.readers[rid] = {
                "id": rid,
                "object": "terminal.reader",
                "action": None,
                "device_sw_version": "2.37.2.0",
                "device_type": device_type,
                "ip_address": "192.0.2.10",
                "label": label,
                "last_seen_at": self.clock.now() * 1000,
                "livemode": False,
                "location": None,
                "metadata": {},
                "serial_number": new_id("SIM", 10),
                "status": "online" if online else "offline",
            }
        return rid

    def set_reader_online(self, reader_id: str, online: bool) -> None:
        with self._lock:
            self._state.readers[reader_id]["status"] = "online" if online else "offline"

    def create_dispute(self, payment_intent_id: str, *, reason: str = "fraudulent") -> JSON:
        """The cardholder disputes the captured charge: emits `charge.dispute.created`."""
        with self._lock:
            intent = self._state.intents[payment_intent_id]
            charge = self._state.charges[intent["latest_charge"]]
            if not charge["captured"]:
                raise ValueError("only a captured charge can be disputed")
            now = self.clock.now()
            dispute = {
                "id": new_id("dp"),
                "object": "dispute",
                "amount": charge["amount_captured"] - charge["amount_refunded"],
                "balance_transactions": [],
                "charge": charge["id"],
                "created": now,
                "currency": charge["currency"],
                "evidence_details": {
                    "due_by": now + 7 * 86_400,
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": {},
                "payment_intent": payment_intent_id,
                "reason": reason,
                "status": "needs_response",
            }
            self._state.disputes[dispute["id"]] = dispute
            charge["disputed"] = True
            self._emit("charge.dispute.created", dispute, None)
            return copy.deepcopy(dispute)

    # ---- webhooks --------------------------------------------------------------------------------------

    def configure_webhook(self, url: str, secret: str) -> None:
        """POST every event created from now on to `url`, signed with `secret`, from a background thread."""
        with self._lock:
            self._webhook_url, self._webhook_secret = url, secret
            if self._webhook_sender is None:
                self._webhook_sender = _WebhookSender(self._record_delivery)

    def deliver_event(self, event_id: str) -> None:
        """Send an existing event to the webhook URL again, as Stripe does when it retries a delivery."""
        with self._lock:
            if self._webhook_sender is None or self._webhook_url is None or self._webhook_secret is None:
                raise RuntimeError("no webhook endpoint is configured")
            self._webhook_sender.submit(self._webhook_url, self._webhook_secret, self._state.events[event_id])

    def signed_event(self, event_id: str, secret: str, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """The body and headers Stripe would POST for this event, for calling a webhook route directly."""
        with self._lock:
            payload = json.dumps(self._state.events[event_id], indent=2).encode()
        return payload, {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign_webhook_payload(payload, secret, timestamp),
        }

    def webhook_deliveries(self) -> list[WebhookDelivery]:
        with self._lock:
            return list(self._deliveries)

    def wait_for_webhook_deliveries(self, count: int, timeout: float = 5.0) -> list[WebhookDelivery]:
        deadline = time.monotonic() + timeout
        with self._deliveries_changed:
            while len(self._deliveries) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._deliveries)} of {count} webhook deliveries after {timeout}s")
                self._deliveries_changed.wait(remaining)
            return list(self._deliveries)

    def _record_delivery(self, delivery: WebhookDelivery) -> None:
        with self._deliveries_changed:
            self._deliveries.append(delivery)
            self._deliveries_changed.notify_all()

    def close(self) -> None:
        """Stop the webhook delivery thread; `serve()` does this when its block ends."""
        with self._lock:
            sender, self._webhook_sender = self._webhook_sender, None
        if sender is not None:
            sender.close()

    def _emit(self, event_type: str, obj: JSON, call: _Call | None, previous_attributes: JSON | None = None) -> JSON:
        data: JSON = {"object": copy.deepcopy(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        event: JSON = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": self.api_version,
            "created": self.clock.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1 if self._webhook_url else 0,
            "request": {
                "id": call.request.request_id if call else None,
                "idempotency_key": call.request.idempotency_key if call else None,
            },
            "type": event_type,
        }
        self._state.events[event["id"]] = event
        if self._webhook_sender is not None and self._webhook_url and self._webhook_secret:
            self._webhook_sender.submit(self._webhook_url, self._webhook_secret, event)
        return event

    # ---- ASGI ------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        method = request.method.upper()
        path = request.url.path
        raw_pairs = parse_qsl(
            body.decode("utf-8", "replace") if method == "POST" else request.url.query, keep_blank_values=True
        )
        parse_error: StripeApiError | None = None
        try:
            params = parse_form(raw_pairs)
        except StripeApiError as exc:
            params, parse_error = {}, exc
        auth = request.headers.get("authorization", "")
        record = RecordedRequest(
            request_id=new_id("req", 14),
            method=method,
            path=path,
            params=params,
            idempotency_key=request.headers.get("idempotency-key") if method == "POST" else None,
            stripe_version=request.headers.get("stripe-version"),
            api_key=auth.removeprefix("Bearer ").strip() or None,
            received_at=time.time(),
        )
        with self._lock:
            self._requests.append(record)
        headers = {"Request-Id": record.request_id, "Stripe-Version": record.stripe_version or self.api_version}
        if record.idempotency_key:
            headers["Idempotency-Key"] = record.idempotency_key

        fault = self._take_fault(method, path)
        if fault is not None:
            record.fault = fault.kind
        if fault is not None and fault.kind == "error":
            error = StripeApiError(
                fault.status, "api_error", "An unknown error occurred while processing the request (fault)."
            )
            await self._answer(send, record, fault.status, _dump(error.body()), headers)
            return
        if fault is not None and fault.kind == "rate_limit":
            error = StripeApiError(
                429,
                "invalid_request_error",
                "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
                code="rate_limit",
            )
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            if fault.should_retry is not None:
                headers["Stripe-Should-Retry"] = "true" if fault.should_retry else "false"
            await self._answer(send, record, 429, _dump(error.body()), headers)
            return
        if fault is not None and fault.kind == "delay" and not fault.after_processing:
            await asyncio.sleep(fault.seconds)

        status, payload, extra_headers = self._handle(record, auth, parse_error)
        headers.update(extra_headers)

        if fault is not None and fault.kind == "delay" and fault.after_processing:
            await asyncio.sleep(fault.seconds)
        if fault is not None and fault.kind == "lose_response":
            record.status = status
            if fault.lose_mode == "empty":
                await self._answer(send, record, 502, b"", {"Request-Id": record.request_id})
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                    ],
                }
            )
            raise _ResponseLostError("the fake dropped the connection after processing (injected fault)")
        await self._answer(send, record, status, payload, headers)

    async def _answer(
        self, send: Send, record: RecordedRequest, status: int, payload: bytes, headers: dict[str, str]
    ) -> None:
        record.status = status
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if payload:
            raw_headers.append((b"content-type", b"application/json"))
        raw_headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": payload})

    def _handle(
        self, record: RecordedRequest, auth: str, parse_error: StripeApiError | None
    ) -> tuple[int, bytes, dict[str, str]]:
        try:
            _check_api_key(auth)
            handler, args = _resolve_route(record.method, record.path)
            if parse_error is not None:
                raise parse_error
        except StripeApiError as exc:
            return exc.status, _dump(exc.body()), {}

        api_key = record.api_key or ""
        key = record.idempotency_key
        with self._lock:
            if key is not None:
                stored = self._idempotency.get((api_key, key))
                if stored is not None:
                    if (stored.method, stored.path, stored.params) != (record.method, record.path, record.params):
                        error = StripeApiError(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same parameters they were "
                            f"first used with. Try using a key other than '{key}' if you meant to execute a "
                            "different request.",
                        )
                        return 400, _dump(error.body()), {}
                    record.replayed = True
                    return (
                        stored.status,
                        stored.body,
                        {"Idempotent-Replayed": "true", "Original-Request": stored.request_id},
                    )
            version = record.stripe_version or self.api_version
            call = _Call(_Params({}, ()), record.params, args, record, version)
            try:
                status, payload, store = 200, _dump(handler(self, call)), True
            except StripeApiError as exc:
                status, payload, store = exc.status, _dump(exc.body()), exc.stored
            if key is not None and store:
                self._idempotency[(api_key, key)] = _Stored(
                    record.method, record.path, record.params, status, payload, record.request_id
                )
            return status, payload, {}

    # ---- rendering -------------------------------------------------------------------------------------

    def _store_for(self, object_id: str) -> dict[str, JSON] | None:
        prefix = object_id.split("_", 1)[0]
        return {
            "pi": self._state.intents,
            "ch": self._state.charges,
            "re": self._state.refunds,
            "pm": self._state.payment_methods,
            "tmr": self._state.readers,
            "dp": self._state.disputes,
        }.get(prefix)

    def _render(self, obj: JSON, expand: Iterable[str] = ()) -> JSON:
        rendered = copy.deepcopy(obj)
        for path in expand:
            self._expand(rendered, path.split("."), path)
        return rendered

    def _expand(self, node: JSON, parts: list[str], full_path: str) -> None:
        head, rest = parts[0], parts[1:]
        value = node.get(head)
        if isinstance(value, str):
            store = self._store_for(value)
            if store is None or value not in store:
                raise _invalid(f"This property cannot be expanded ({full_path}).", param="expand")
            value = node[head] = copy.deepcopy(store[value])
        if rest:
            if not isinstance(value, dict):
                raise _invalid(f"This property cannot be expanded ({full_path}).", param="expand")
            self._expand(value, rest, full_path)
        elif not isinstance(value, dict) and value is not None:
            raise _invalid(f"This property cannot be expanded ({full_path}).", param="expand")

    def _list(
        self,
        call: _Call,
        items: Iterable[JSON],
        url: str,
        kind: str,
    ) -> JSON:
        params = call.params
        limit = params.integer("limit", minimum=1)
        limit = 10 if limit is None else limit
        if limit > 100:
            raise _invalid("This value must be less than or equal to 100.", param="limit")
        created = _created_filter(call.raw.get("created"))
        # Newest first, as Stripe lists; among equal timestamps the later-created object comes first.
        ordered = list(items)[::-1]
        ordered.sort(key=lambda o: o["created"], reverse=True)
        ordered = [o for o in ordered if created(o["created"])]
        starting_after = params.string("starting_after")
        ending_before = params.string("ending_before")
        ids = [o["id"] for o in ordered]
        if starting_after is not None:
            if starting_after not in ids:
                raise _no_such(kind, starting_after, param="starting_after")
            rest = ordered[ids.index(starting_after) + 1 :]
            page, has_more = rest[:limit], len(rest) > limit
        elif ending_before is not None:
            if ending_before not in ids:
                raise _no_such(kind, ending_before, param="ending_before")
            before = ordered[: ids.index(ending_before)]
            page, has_more = before[-limit:], len(before) > limit
        else:
            page, has_more = ordered[:limit], len(ordered) > limit
        expand = [p.removeprefix("data.") for p in params.expand() if p.startswith("data.")]
        return {
            "object": "list",
            "data": [self._render(o, expand) for o in page],
            "has_more": has_more,
            "url": url,
        }

    # ---- domain logic ----------------------------------------------------------------------------------

    def _intent(self, intent_id: str, *, param: str | None = None) -> JSON:
        intent = self._state.intents.get(intent_id)
        if intent is None:
            raise _no_such("payment_intent", intent_id, param=param)
        return intent

    def _reader(self, reader_id: str) -> JSON:
        reader = self._state.readers.get(reader_id)
        if reader is None:
            raise _no_such("terminal.reader", reader_id)
        return reader

    def _unexpected_state(self, intent: JSON, message: str) -> StripeApiError:
        return _invalid(
            message,
            code="payment_intent_unexpected_state",
            stored=True,
            extra={"payment_intent": self._render(intent)},
        )

    def _resolve_payment_method(self, pm_ref: str) -> JSON:
        """A test token (`pm_card_visa`) becomes a fresh PaymentMethod, as in Stripe's test mode."""
        existing = self._state.payment_methods.get(pm_ref)
        if existing is not None:
            return existing
        card = TEST_PAYMENT_METHODS.get(pm_ref)
        if card is None:
            raise _no_such("PaymentMethod", pm_ref, param="payment_method")
        return self._new_payment_method("card", card)

    def _new_payment_method(self, pm_type: str, card: SimulatedCard) -> JSON:
        details: JSON = {
            "brand": card.brand,
            "country": "US",
            "exp_month": 12,
            "exp_year": time.gmtime().tm_year + 3,
            "funding": card.funding,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
        }
        if pm_type == "card":
            details["checks"] = {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": None}
            details["display_brand"] = card.brand
        else:
            details["read_method"] = "contactless_emv"
            details["cardholder_name"] = None
        pm: JSON = {
            "id": new_id("pm"),
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {"address": None, "email": None, "name": None, "phone": None},
            "created": self.clock.now(),
            "customer": None,
            "livemode": False,
            "metadata": {},
            "type": pm_type,
            pm_type: details,
        }
        self._state.payment_methods[pm["id"]] = pm
        self._state.card_outcomes[pm["id"]] = card
        return pm

    def _authorize(self, intent: JSON, pm: JSON, call: _Call | None) -> StripeApiError | None:
        """Confirm `intent` with `pm`: one charge, succeeded or failed. Returns the card error, if any."""
        card = self._state.card_outcomes[pm["id"]]
        pm_type = pm["type"]
        decline = card.decline
        now = self.clock.now()
        manual = intent["capture_method"] == "manual"
        details = {k: v for k, v in pm[pm_type].items() if k not in ("display_brand",)}
        details["network"] = card.brand
        if pm_type == "card_present":
            details["receipt"] = {
                "account_type": card.funding,
                "application_preferred_name": card.brand.upper(),
                "authorization_response_code": "3030" if decline is None else "3035",
            }
        charge: JSON = {
            "id": new_id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": 0 if manual or decline else intent["amount"],
            "amount_refunded": 0,
            "balance_transaction": None,
            "billing_details": pm["billing_details"],
            "calculated_statement_descriptor": "POS-OMNI",
            "captured": not manual and decline is None,
            "created": now,
            "currency": intent["currency"],
            "customer": None,
            "description": intent["description"],
            "disputed": False,
            "failure_code": decline.code if decline else None,
            "failure_message": decline.message if decline else None,
            "livemode": False,
            "metadata": dict(intent["metadata"]),
            "outcome": {
                "network_status": "approved_by_network" if decline is None else "declined_by_network",
                "reason": None if decline is None else decline.decline_code,
                "risk_level": "normal",
                "seller_message": "Payment complete."
                if decline is None
                else "The bank did not return any further details with this decline.",
                "type": "authorized" if decline is None else "issuer_declined",
            },
            "paid": decline is None,
            "payment_intent": intent["id"],
            "payment_method": pm["id"],
            "payment_method_details": {"type": pm_type, pm_type: details},
            "receipt_url": None,
            "refunded": False,
            "status": "succeeded" if decline is None else "failed",
        }
        self._state.charges[charge["id"]] = charge
        intent["latest_charge"] = charge["id"]

        if decline is not None:
            error = StripeApiError(
                402,
                "card_error",
                decline.message,
                code=decline.code,
                decline_code=decline.decline_code,
                param=decline.param,
                extra={"charge": charge["id"], "payment_method": copy.deepcopy(pm)},
                stored=True,
            )
            intent["status"] = "requires_payment_method"
            intent["payment_method"] = None
            intent["last_payment_error"] = error.error_object()
            self._emit("charge.failed", charge, call)
            self._emit("payment_intent.payment_failed", intent, call)
            error.extra["payment_intent"] = self._render(intent)
            return error

        intent["payment_method"] = pm["id"]
        intent["last_payment_error"] = None
        self._emit("charge.succeeded", charge, call)
        if manual:
            intent["status"] = "requires_capture"
            intent["amount_capturable"] = intent["amount"]
            self._emit("payment_intent.amount_capturable_updated", intent, call)
        else:
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"]
            self._emit("payment_intent.succeeded", intent, call)
        return None

    def _confirm(self, intent: JSON, call: _Call, *, return_url: str | None) -> None:
        if intent["status"] not in _CONFIRMABLE:
            if intent["status"] in ("succeeded", "requires_capture"):
                message = (
                    "You cannot confirm this PaymentIntent because it has already succeeded after being "
                    "previously confirmed."
                )
            else:
                message = (
                    f"You cannot confirm this PaymentIntent because it has a status of {intent['status']}. "
                    "Only a PaymentIntent with one of the following statuses may be confirmed: "
                    + ", ".join(_CONFIRMABLE)
                    + "."
                )
            raise self._unexpected_state(intent, message)
        if intent["payment_method"] is None:
            raise self._unexpected_state(
                intent,
                "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the "
                "PaymentIntent with a PaymentMethod, pass the `payment_method` parameter.",
            )
        pm = self._state.payment_methods[intent["payment_method"]]
        if pm["type"] not in intent["payment_method_types"]:
            raise _invalid(
                f"The PaymentMethod provided ({pm['type']}) is not allowed for this PaymentIntent. Please "
                "attach a PaymentMethod of one of the following types: "
                + ", ".join(intent["payment_method_types"])
                + ".",
                param="payment_method",
                code="payment_intent_incompatible_payment_method",
                stored=True,
            )
        apm = intent["automatic_payment_methods"]
        if apm and apm.get("allow_redirects") != "never" and not return_url:
            # Real Stripe refuses this too; an adapter must set payment_method_types or allow_redirects=never.
            raise _invalid(
                "This PaymentIntent is configured to accept payment methods enabled in your Dashboard, some "
                "of which may require a full page redirect to succeed. If you do not want to accept "
                "redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and "
                "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and "
                "Payment Intents. If you do want to accept redirect-based payment methods, set the "
                "`return_url` parameter when confirming a PaymentIntent.",
                stored=True,
            )
        error = self._authorize(intent, pm, call)
        if error is not None:
            raise error

    def _attach_payment_method(self, intent: JSON, pm: JSON) -> None:
        intent["payment_method"] = pm["id"]
        if intent["status"] == "requires_payment_method":
            intent["status"] = "requires_confirmation"


# --------------------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------------------


def _check_api_key(auth: str) -> None:
    if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
        raise StripeApiError(
            401,
            "invalid_request_error",
            "You did not provide an API key. You need to provide your API key in the Authorization header, "
            "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api"
            "#authentication for details, or we can help at https://support.stripe.com/.",
        )
    key = auth.removeprefix("Bearer ").strip()
    if not key.startswith(("sk_test_", "rk_test_")):
        raise StripeApiError(
            401,
            "invalid_request_error",
            f"Invalid API Key provided: {key[:8]}{'*' * max(len(key) - 12, 0)}{key[-4:]}",
            code="api_key_invalid",
        )


def _resolve_route(method: str, path: str) -> tuple[Handler, tuple[str, ...]]:
    for route_method, pattern, handler in _ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            return handler, match.groups()
    raise StripeApiError(
        404,
        "invalid_request_error",
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at "
        "https://support.stripe.com/.",
    )


def _dump(body: JSON) -> bytes:
    return json.dumps(body, indent=2).encode()


def _created_filter(value: Any) -> Callable[[int], bool]:
    if value is None:
        return lambda _: True
    if isinstance(value, str):
        exact = _to_int(value, "created")
        return lambda ts: ts == exact
    if not isinstance(value, dict):
        raise _invalid("Invalid created filter", param="created")
    bounds: dict[str, int] = {}
    for op, raw in value.items():
        if op not in ("gt", "gte", "lt", "lte") or not isinstance(raw, str):
            raise _invalid(f"Received unknown parameter: created[{op}]", param=f"created[{op}]")
        bounds[op] = _to_int(raw, f"created[{op}]")

    def accept(ts: int) -> bool:
        return (
            ts > bounds.get("gt", ts - 1)
            and ts >= bounds.get("gte", ts)
            and ts < bounds.get("lt", ts + 1)
            and ts <= bounds.get("lte", ts)
        )

    return accept


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Writable parameters as the SDK's pinned API version lists them. `payment_method_types` is handled apart:
# whether it is accepted depends on the request's API version.
_INTENT_CREATE_PARAMS = _names(
    "allowed_payment_method_types amount amount_details application_fee_amount automatic_payment_methods "
    "capture_method confirm confirmation_method confirmation_token currency customer customer_account "
    "description error_on_requires_action excluded_payment_method_types hooks mandate mandate_data metadata "
    "off_session on_behalf_of payment_details payment_method payment_method_configuration "
    "payment_method_data payment_method_options radar_options receipt_email return_url setup_future_usage "
    "shipping statement_descriptor statement_descriptor_suffix transfer_data transfer_group use_stripe_sdk "
    "payment_method_types"
)
_INTENT_UPDATE_PARAMS = _names(
    "allowed_payment_method_types amount amount_details application_fee_amount capture_method currency "
    "customer customer_account description excluded_payment_method_types hooks metadata payment_details "
    "payment_method payment_method_configuration payment_method_data payment_method_options receipt_email "
    "setup_future_usage shipping statement_descriptor statement_descriptor_suffix transfer_data "
    "transfer_group payment_method_types"
)
_INTENT_CONFIRM_PARAMS = _names(
    "allowed_payment_method_types amount_details amount_to_confirm capture_method confirmation_token "
    "error_on_requires_action excluded_payment_method_types hooks mandate mandate_data off_session "
    "payment_details payment_method payment_method_data payment_method_options radar_options receipt_email "
    "return_url setup_future_usage shipping use_stripe_sdk payment_method_types"
)
_INTENT_CAPTURE_PARAMS = _names(
    "amount_details amount_to_capture application_fee_amount final_capture hooks metadata payment_details "
    "statement_descriptor statement_descriptor_suffix transfer_data"
)
_CAPTURE_METHODS = ("automatic", "automatic_async", "manual")

# API versions (date part) where the way to choose payment method types changed.
_ALLOWED_TYPES_SINCE = "2026-07-29"  # dahlia adds `allowed_payment_method_types`
_TYPES_REMOVED_SINCE = "2026-09-30"  # endive refuses `payment_method_types` as a parameter
_DYNAMIC_TYPES = ("card", "link")


def _compatible(pm_type: str, currency: str) -> bool:
    if pm_type == "interac_present":
        return currency == "cad"
    return pm_type in ("card", "card_present", "link")


def _dynamic_types(apm: JSON | None, excluded: list[str] | None) -> JSON:
    enabled = apm is None or apm.get("enabled", "true") == "true"
    redirects = (apm or {}).get("allow_redirects", "always")
    return {
        "allowed_payment_method_types": None,
        "automatic_payment_methods": {"allow_redirects": redirects, "enabled": True} if enabled else None,
        "excluded_payment_method_types": excluded,
        "payment_method_types": [t for t in _DYNAMIC_TYPES if t not in (excluded or [])],
    }


def _choose_payment_method_types(call: _Call, currency: str) -> JSON | None:
    """The intent fields saying which payment methods it accepts; None when the request chose nothing."""
    p = call.params
    version = call.api_version[:10]
    legacy = p.strings("payment_method_types")
    allowed = p.strings("allowed_payment_method_types")
    excluded = p.strings("excluded_payment_method_types")
    apm = p.mapping("automatic_payment_methods")
    if legacy is not None and version >= _TYPES_REMOVED_SINCE:
        raise _invalid(
            "The `payment_method_types` parameter is no longer supported on this API version. Use dynamic "
            "payment methods, `excluded_payment_method_types` or `allowed_payment_method_types` instead.",
            param="payment_method_types",
            code="payment_method_types_no_longer_supported",
        )
    if allowed is not None and version < _ALLOWED_TYPES_SINCE:
        raise _invalid(
            "Received unknown parameter: allowed_payment_method_types",
            param="allowed_payment_method_types",
            code="parameter_unknown",
        )
    given = [
        name
        for name, present in (
            ("allowed_payment_method_types", allowed is not None),
            ("automatic_payment_methods", apm is not None),
            ("excluded_payment_method_types", excluded is not None),
            ("payment_method_configuration", p.has("payment_method_configuration")),
            ("payment_method_types", legacy is not None),
        )
        if present
    ]
    if len(given) > 1 and {"allowed_payment_method_types", "payment_method_types"} & set(given):
        raise _invalid("You may only specify one of these parameters: " + ", ".join(given) + ".", param=given[-1])
    if allowed is not None:
        # Unlike the old parameter, incompatible types are dropped silently.
        types = [t for t in allowed if _compatible(t, currency)]
        if not types:
            raise _invalid(
                "None of the allowed payment method types can be used with this PaymentIntent.",
                param="allowed_payment_method_types",
            )
        return {
            "allowed_payment_method_types": allowed,
            "automatic_payment_methods": None,
            "excluded_payment_method_types": None,
            "payment_method_types": types,
        }
    if legacy is not None:
        return {
            "allowed_payment_method_types": None,
            "automatic_payment_methods": None,
            "excluded_payment_method_types": None,
            "payment_method_types": legacy,
        }
    if apm is None and excluded is None:
        return None
    return _dynamic_types(apm, excluded)


@_route("POST", "/v1/payment_intents")
def _create_intent(fake: FakeStripe, call: _Call) -> JSON:
    p = call.params = _Params(call.raw, _INTENT_CREATE_PARAMS)
    amount = p.integer("amount", required=True)
    currency = p.string("currency", required=True)
    assert amount is not None
    assert currency is not None
    currency = currency.lower()
    minimum = _MIN_AMOUNT.get(currency, 50)
    if amount < minimum:
        raise _invalid(
            f"Amount must be at least {_format_amount(minimum, currency)} {currency}",
            param="amount",
            code="amount_too_small",
        )
    if amount > _MAX_AMOUNT:
        raise _invalid(
            f"Amount must be no more than {_format_amount(_MAX_AMOUNT, currency)}",
            param="amount",
            code="amount_too_large",
        )
    capture_method = p.string("capture_method", choices=_CAPTURE_METHODS)
    # Without a choice, Stripe uses dynamic payment methods (automatic_payment_methods enabled).
    types = _choose_payment_method_types(call, currency) or _dynamic_types(None, None)
    metadata = p.metadata() or {}
    confirm = p.boolean("confirm") or False
    pm_ref = p.string("payment_method")
    if confirm and pm_ref is None:
        raise _invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the "
            "PaymentIntent with a PaymentMethod, pass the `payment_method` parameter.",
            param="payment_method",
            code="payment_intent_unexpected_state",
        )
    pm = fake._resolve_payment_method(pm_ref) if pm_ref else None
    intent_id = new_id("pi")
    intent: JSON = {
        "id": intent_id,
        "object": "payment_intent",
        "allowed_payment_method_types": types["allowed_payment_method_types"],
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": types["automatic_payment_methods"],
        "canceled_at": None,
        "cancellation_reason": None,
        # API version 2024-06-20 made automatic_async the default.
        "capture_method": capture_method or "automatic_async",
        "client_secret": f"{intent_id}_secret_{new_id('x', 25)[2:]}",
        "confirmation_method": p.string("confirmation_method", choices=("automatic", "manual")) or "automatic",
        "created": fake.clock.now(),
        "currency": currency,
        "customer": p.string("customer"),
        "description": p.string("description") or None,
        "excluded_payment_method_types": types["excluded_payment_method_types"],
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_options": {},
        "payment_method_types": types["payment_method_types"],
        "processing": None,
        "receipt_email": p.string("receipt_email"),
        "setup_future_usage": p.string("setup_future_usage"),
        "shipping": None,
        "statement_descriptor": p.string("statement_descriptor"),
        "statement_descriptor_suffix": p.string("statement_descriptor_suffix"),
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }
    if pm is not None:
        fake._attach_payment_method(intent, pm)
    fake._state.intents[intent_id] = intent
    fake._emit("payment_intent.created", intent, call)
    if confirm:
        fake._confirm(intent, call, return_url=p.string("return_url"))
    return fake._render(intent, p.expand())


@_route("GET", "/v1/payment_intents")
def _list_intents(fake: FakeStripe, call: _Call) -> JSON:
    call.params = _Params(
        call.raw, ("created", "limit", "starting_after", "ending_before", "customer", "customer_account")
    )
    customer = call.params.string("customer")
    items = [i for i in fake._state.intents.values() if customer is None or i["customer"] == customer]
    return fake._list(call, items, "/v1/payment_intents", "payment_intent")


@_route("GET", "/v1/payment_intents/{id}")
def _retrieve_intent(fake: FakeStripe, call: _Call) -> JSON:
    call.params = _Params(call.raw, ("client_secret",))
    return fake._render(fake._intent(call.args[0]), call.params.expand())


@_route("POST", "/v1/payment_intents/{id}")
def _update_intent(fake: FakeStripe, call: _Call) -> JSON:
    p = call.params = _Params(call.raw, _INTENT_UPDATE_PARAMS)
    intent = fake._intent(call.args[0])
    # Validate everything before changing anything: a refused request leaves the intent as it was.
    amount = p.integer("amount", minimum=1)
    currency = (p.string("currency") or intent["currency"]).lower()
    types = _choose_payment_method_types(call, currency)
    metadata = p.metadata()
    pm = fake._resolve_payment_method(ref) if (ref := p.string("payment_method")) else None
    changes_money = amount is not None or p.has("currency") or types is not None or pm is not None
    if changes_money and intent["status"] not in ("requires_payment_method", "requires_confirmation"):
        raise fake._unexpected_state(
            intent,
            f"This PaymentIntent's amount could not be updated because it has a status of {intent['status']}.",
        )
    previous: JSON = {}
    if amount is not None:
        previous["amount"], intent["amount"] = intent["amount"], amount
    if currency != intent["currency"]:
        previous["currency"], intent["currency"] = intent["currency"], currency
    if types is not None:
        previous["payment_method_types"] = intent["payment_method_types"]
        intent.update(types)
    if p.has("description"):
        previous["description"], intent["description"] = intent["description"], p.string("description") or None
    if p.has("receipt_email"):
        intent["receipt_email"] = p.string("receipt_email") or None
    if metadata is not None:
        previous["metadata"] = dict(intent["metadata"])
        merged = {**intent["metadata"], **metadata}
        intent["metadata"] = {k: v for k, v in merged.items() if v != ""}
    if pm is not None:
        previous["payment_method"] = intent["payment_method"]
        fake._attach_payment_method(intent, pm)
    if previous:
        fake._emit("payment_intent.updated", intent, call, previous)
    return fake._render(intent, p.expand())


@_route("POST", "/v1/payment_intents/{id}/confirm")
def _confirm_intent(fake: FakeStripe, call: _Call) -> JSON:
    p = call.params = _Params(call.raw, _INTENT_CONFIRM_PARAMS)
    intent = fake._intent(call.args[0])
    capture_method = p.string("capture_method", choices=_CAPTURE_METHODS)
    types = _choose_payment_method_types(call, intent["currency"])
    pm = fake._resolve_payment_method(ref) if (ref := p.string("payment_method")) else None
    return_url = p.string("return_url")
    if intent["status"] in _CONFIRMABLE:
        if capture_method is not None:
            intent["capture_method"] = capture_method
        if types is not None:
            intent.update(types)
        if pm is not None:
            fake._attach_payment_method(intent, pm)
    fake._confirm(intent, call, return_url=return_url)
    return fake._render(intent, p.expand())


@_route("POST", "/v1/payment_intents/{id}/capture")
def _capture_intent(fake: FakeStripe, call: _Call) -> JSON:
    p = call.params = _Params(call.raw, _INTENT_CAPTURE_PARAMS)
    intent = fake._intent(call.args[0])
    amount = p.integer("amount_to_capture", minimum=1)
    if intent["status"] != "requires_capture":
        raise fake._unexpected_state(
            intent,
            f"This PaymentIntent could not be captured because it has a status of {intent['status']}. Only a "
            "PaymentIntent with one of the following statuses may be captured: requires_capture.",
        )
    capturable = intent["amount_capturable"]
    amount = capturable if amount is None else amount
    if amount > capturable:
        raise _invalid(
            f"The amount to capture ({amount}) must be less than or equal to the amount capturable ({capturable}).",
            param="amount_to_capture",
            code="amount_too_large",
            stored=True,
        )
    if (metadata := p.metadata()) is not None:
        intent["metadata"] = {k: v for k, v in {**intent["metadata"], **metadata}.items() if v != ""}
    charge = fake._state.charges[intent["latest_charge"]]
    charge["captured"] = True
    charge["amount_captured"] = amount
    intent["status"] = "succeeded"
    intent["amount_received"] = amount
    intent["amount_capturable"] = 0
    fake._emit("charge.captured", charge, call, {"amount_captured": 0, "captured": False})
    fake._emit("payment_intent.succeeded", intent, call)
    return fake._render(intent, p.expand())


@_route("POST", "/v1/payment_intents/{id}/cancel")
def _cancel_intent(fake: FakeStripe, call: _Call) -> JSON:
    p = call.params = _Params(call.raw, ("cancellation_reason",))
    intent = fake._intent(call.args[0])
    reason = p.string("cancellation_reason", choices=("duplicate", "fraudulent", "requested_by_customer", "abandoned"))
    if intent["status"] not in _CANCELABLE:
        raise fake._unexpected_state(
            intent,
            f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. Only a "
            "PaymentIntent with one of the following statuses may be canceled: " + ", ".join(_CANCELABLE) + ".",
        )
    if intent["status"] == "requires_capture":
        # Voiding an authorisation releases the hold: the uncaptured charge shows as fully refunded.
        charge = fake._state.charges[intent["latest_charge"]]
        charge["amount_refunded"] = charge["amount"]
        charge["refunded"] = True
    intent["status"] = "canceled"
    intent["canceled_at"] = fake.clock.now()
    intent["cancellation_reason"] = reason
    intent["amount_capturable"] = 0
    for reader in fake._state.readers.values():
        action = reader["action"]
        in_progress = action is not None and action["status"] == "in_progress"
        if in_progress and action["process_payment_intent"]["payment_intent"] == intent["id"]:
            action.update(
                status="failed",
                failure_code="payment_intent_canceled",
                failure_message="The PaymentIntent was canceled.",
            )
    fake._emit("payment_intent.canceled", intent, call)
    return fake._render(intent, p.expand())


@_route("GET", "/v1/charges")
def _list_charges(fake: FakeStripe, call: _Call) -> JSON:
    call.params = _Params(
        call.raw,
        ("created", "limit", "starting_after", "ending_before", "payment_intent", "customer", "transfer_group"),
    )
    pi = call.params.string("payment_intent")
    items = [c for c in fake._state.charges.values() if pi is None or c["payment_intent"] == pi]
    return fake._list(call, items, "/v1/charges", "charge")


@_route("GET", "/v1/charges/{id}")
def _retrieve_charge(fake: FakeStripe, call: _Call) -> JSON:
    call.params = _Params(call.raw, ())
    charge = fake._state.charges.get(call.args[0])
    if charge is None:
        raise _no_such("charge", call.args[0])
    return fake._render(charge, call.params.expand())


@_route("GET", "/v1/payment_methods/{id}")
def _retrieve_payment_method(fake: FakeStripe, call: _Call) -> JSON:
    call.params = _Params(call.raw, ())
    pm = fake._state.payment_methods.get(call.args[0])
    if pm is None:
        raise _no_such("PaymentMethod", call.args[0])
    return fake._render(pm, call.params.expand())


@_route("POST", "/v1/refunds")
def _create_refund(fake: FakeStripe, call: _Call) -> JSON:
    p = call.params = _Params(
        call.raw,
        _names(
            "amount charge currency customer instructions_email metadata origin payment_intent reason "
            "refund_application_fee reverse_transfer"
        ),
    )
    pi_id, charge_id = p.string("payment_intent"), p.string("charge")
    amount = p.integer("amount", minimum=1)
    reason = p.string("reason", choices=("duplicate", "fraudulent", "requested_by_customer"))
    metadata = p.metadata() or {}
    if pi_id is None and charge_id is None:
        raise _invalid(
            "One of the following params should be provided for this request: payment_intent or charge.",
            code="parameter_missing",
        )
    if pi_id is not None:
        intent = fake._intent(pi_id, param="payment_intent")
        if intent["status"] != "succeeded":
            raise _invalid(
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
                code="payment_intent_unexpected_state",
                stored=True,
            )
        charge = fake._state.charges[intent["latest_charge"]]
    else:
        assert charge_id is not None
        found = fake._state.charges.get(charge_id)
        if found is None:
            raise _no_such("charge", charge_id, param="charge")
        charge = found
    if not charge["captured"] or charge["status"] != "succeeded":
        raise _invalid(
            f"Charge {charge['id']} has not been captured and cannot be refunded.",
            param="charge",
            code="charge_not_refundable",
            stored=True,
        )
    remaining = charge["amount_captured"] - charge["amount_refunded"]
    if remaining <= 0:
        raise _invalid(f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded", stored=True)
    amount = remaining if amount is None else amount
    if amount > remaining:
        currency = charge["currency"]
        raise _invalid(
            f"Refund amount ({_format_amount(amount, currency)}) is greater than unrefunded amount on charge "
            f"({_format_amount(remaining, currency)})",
            param="amount",
            code="amount_too_large",
            stored=True,
        )
    refund: JSON = {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn"),
        "charge": charge["id"],
        "created": fake.clock.now(),
        "currency": charge["currency"],
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": metadata,
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "status": "succeeded",
    }
    fake._state.refunds[refund["id"]] = refund
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
    fake._emit("refund.created", refund, call)
    fake._emit("charge.refunded", charge, call, previous)
    return fake._render(refund, p.expand())


@_route("GET", "/v1/refunds")
def _list_refunds(fake: FakeStripe, call: _Call) -> JSON:
    call.params = _Params(call.raw, ("created", "limit", "starting_after", "ending_before", "payment_intent", "charge"))
    pi, charge = call.params.string("payment_intent"), call.params.string("charge")
    items = [
        r
        for r in fake._state.refunds.values()
        if (pi is None or r["payment_intent"] == pi) and (charge is None or r["charge"] == charge)
    ]
    return fake._list(call, items, "/v1/refunds", "refund")


@_route("GET", "/v1/refunds/{id}")
def _retrieve_refund(fake: FakeStripe, call: _Call) -> JSON:
    call.params = _Params(call.raw, ())
    refund = fake._state.refunds.get(call.args[0])
    if refund is None:
        raise _no_such("refund", call.args[0])
    return fake._render(refund, call.params.expand())


@_route("GET", "/v1/terminal/readers")
def _list_readers(fake: FakeStripe, call: _Call) -> JSON:
    call.params = _Params(call.raw, ("limit", "starting_after", "ending_before", "status", "device_type"))
    status = call.params.string("status", choices=("online", "offline"))
    items = [{**r, "created": 0} for r in fake._state.readers.values() if status is None or r["status"] == status]
    page = fake._list(call, items, "/v1/terminal/readers", "terminal.reader")
    for reader in page["data"]:
        reader.pop("created")
    return page


@_route("GET", "/v1/terminal/readers/{id}")
def _retrieve_reader(fake: FakeStripe, call: _Call) -> JSON:
    call.params = _Params(call.raw, ())
    return fake._render(fake._reader(call.args[0]), call.params.expand())


@_route("POST", "/v1/terminal/readers/{id}/process_payment_intent")
def _process_payment_intent(fake: FakeStripe, call: _Call) -> JSON:
    p = call.params = _Params(call.raw, ("payment_intent", "process_config"))
    reader = fake._reader(call.args[0])
    pi_id = p.string("payment_intent", required=True)
    assert pi_id is not None
    intent = fake._intent(pi_id, param="payment_intent")
    if reader["status"] != "online":
        raise _invalid(
            "Reader is currently offline, please ensure the reader is powered on and connected to the internet "
            "before retrying your request.",
            code="terminal_reader_offline",
            stored=True,
        )
    if reader["action"] is not None and reader["action"]["status"] == "in_progress":
        raise _invalid(
            "Reader is currently busy processing another request. Please reference the integration guide at "
            "https://stripe.com/docs/terminal/payments/collect-payment?terminal-sdk-platform=server-driven for "
            "details on how to handle this error.",
            code="terminal_reader_busy",
            stored=True,
        )
    if "card_present" not in intent["payment_method_types"] and "interac_present" not in intent["payment_method_types"]:
        raise _invalid(
            "This PaymentIntent does not allow card_present payments; include card_present in payment_method_types.",
            param="payment_intent",
            stored=True,
        )
    if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
        raise fake._unexpected_state(
            intent,
            f"This PaymentIntent could not be processed because it has a status of {intent['status']}.",
        )
    config = p.mapping("process_config")
    reader["action"] = {
        "failure_code": None,
        "failure_message": None,
        "process_payment_intent": {
            "payment_intent": pi_id,
            **({"process_config": config} if config is not None else {}),
        },
        "status": "in_progress",
        "type": "process_payment_intent",
    }
    return fake._render(reader, p.expand())


@_route("POST", "/v1/terminal/readers/{id}/cancel_action")
def _cancel_reader_action(fake: FakeStripe, call: _Call) -> JSON:
    call.params = _Params(call.raw, ())
    reader = fake._reader(call.args[0])
    if reader["action"] is not None and reader["action"]["status"] == "in_progress":
        reader["action"] = None
    return fake._render(reader, call.params.expand())


@_route("POST", "/v1/test_helpers/terminal/readers/{id}/present_payment_method")
def _present_payment_method(fake: FakeStripe, call: _Call) -> JSON:
    p = call.params = _Params(call.raw, ("amount_tip", "card_present", "interac_present", "type", "card"))
    reader = fake._reader(call.args[0])
    if not reader["device_type"].startswith("simulated"):
        raise _invalid("This endpoint can only be used with simulated readers.", stored=True)
    action = reader["action"]
    if action is None or action["status"] != "in_progress" or action["type"] != "process_payment_intent":
        raise _invalid(
            "The reader has no in-progress process_payment_intent action to present a payment method to.",
            stored=True,
        )
    pm_type = p.string("type", choices=("card_present", "interac_present", "card")) or "card_present"
    details = p.mapping(pm_type) or {}
    number = details.get("number")
    card = _DEFAULT_CARD_PRESENT if not isinstance(number, str) else _card_for_number(number)
    if pm_type == "interac_present":
        card = SimulatedCard("interac", card.last4, funding="debit", decline=card.decline)
    intent = fake._state.intents[action["process_payment_intent"]["payment_intent"]]
    if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
        action.update(
            status="failed",
            failure_code="intent_invalid_state",
            failure_message=f"The PaymentIntent has a status of {intent['status']}.",
        )
        fake._emit("terminal.reader.action_failed", reader, call)
        return fake._render(reader, p.expand())
    if (tip := p.integer("amount_tip", minimum=0)) is not None and tip > 0:
        intent["amount"] += tip
        intent["amount_details"] = {"tip": {"amount": tip}}
    # On a real reader the card never reaches the server: only brand and last 4 digits are kept.
    pm = fake._new_payment_method("card_present" if pm_type == "card" else pm_type, card)
    error = fake._authorize(intent, pm, call)
    if error is None:
        action.update(status="succeeded")
        fake._emit("terminal.reader.action_succeeded", reader, call)
    else:
        action.update(status="failed", failure_code=error.code, failure_message=error.message)
        fake._emit("terminal.reader.action_failed", reader, call)
    return fake._render(reader, p.expand())


@_route("GET", "/v1/events")
def _list_events(fake: FakeStripe, call: _Call) -> JSON:
    call.params = _Params(
        call.raw, ("created", "limit", "starting_after", "ending_before", "type", "types", "delivery_success")
    )
    event_type = call.params.string("type")
    types = call.params.strings("types")

    def wanted(event: JSON) -> bool:
        if types is not None and event["type"] not in types:
            return False
        return event_type is None or fnmatch.fnmatchcase(event["type"], event_type)

    return fake._list(call, [e for e in fake._state.events.values() if wanted(e)], "/v1/events", "event")


@_route("GET", "/v1/events/{id}")
def _retrieve_event(fake: FakeStripe, call: _Call) -> JSON:
    call.params = _Params(call.raw, ())
    event = fake._state.events.get(call.args[0])
    if event is None:
        raise _no_such("event", call.args[0])
    return copy.deepcopy(event)


@contextmanager
def running_fake_stripe(
    *,
    clock: FakeClock | None = None,
    api_version: str = DEFAULT_API_VERSION,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    port: int = 0,
) -> Iterator[FakeStripe]:
    """A fresh fake served on 127.0.0.1 for the duration of the block; `fake.base_url` is its address."""
    fake = FakeStripe(clock=clock, api_version=api_version, webhook_url=webhook_url, webhook_secret=webhook_secret)
    with fake.serve(port=port):
        yield fake
