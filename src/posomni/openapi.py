"""The OpenAPI document tells the whole truth about responses, so a client generated from it (or a fuzzer checking
the server against it) sees what the server really answers:

- every error has the one shape `errors.py` renders, `{"error": {"code", "message", "details"}}` — also the
  422 of a request that fails validation, where FastAPI would document its own `{"detail": [...]}`;
- every operation lists the error statuses the shared machinery can answer: 429 (the per-client rate limit) and
  503 (database or Redis down) anywhere; 404, 409 and 422 where the request names or sends anything (an id, a
  query, a body); 400 and 413 with a body; 401 and 403 behind a permission; 402 and 502 where the card processor is
  called; 423 where a manager's PIN is checked;
- a `format` query parameter (`csv`, `html`, `text`, `escpos`) adds its media type to the success response.

Routers still declare what is special to them (`responses=` on the route); this only adds what is missing. Done
once, on the first request for the document, and cached by FastAPI.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant

from posomni.payments.dependencies import get_card_gateway, require_card_gateway
from posomni.sales.dependencies import get_checkout, get_reader_payments, get_refunds

ERROR_SCHEMA_NAME = "ErrorResponse"
ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "Stable, machine-readable (`insufficient_stock` …)"},
                "message": {"type": "string", "description": "For the person at the screen"},
                "details": {"type": "object", "description": "What the code needs to say more (ids, fields …)"},
            },
        }
    },
}

DESCRIPTIONS = {
    400: "The body could not be parsed (not JSON, or not the declared media type)",
    401: "Not signed in, or the session has ended or was revoked",
    402: "Card declined",
    403: "The role, store or manager approval does not allow this",
    404: "Something the request names does not exist (or belongs to another store)",
    409: "Refused in the current state (stock, shift, sale status, a concurrent change …)",
    413: "The request body is too large",
    422: "A field is not valid, or a rule refuses the values",
    423: "The manager's PIN is locked after too many wrong tries",
    429: "Too many requests (see Retry-After)",
    502: "The card processor refused or failed",
    503: "The database, Redis or the card processor is unavailable; try again shortly",
}

MEDIA_TYPES = {"csv": "text/csv", "html": "text/html", "text": "text/plain", "escpos": "application/octet-stream"}
# The dependencies through which a route reaches the card processor.
_PROCESSOR_DEPENDENCIES: frozenset[Callable[..., Any]] = frozenset(
    {get_checkout, get_refunds, get_reader_payments, get_card_gateway, require_card_gateway}
)
_MANAGER_FIELDS = frozenset({"manager", "manager_username", "manager_pin"})


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _statuses(dependant: Dependant, operation: dict[str, Any], components: dict[str, Any]) -> set[int]:
    calls = list(_calls(dependant))
    statuses = {429, 503}
    body = operation.get("requestBody")
    if operation.get("parameters") or body:
        statuses |= {404, 409, 422}
    if body:
        statuses |= {400, 413}
    if any(hasattr(call, "__posomni_permission__") for call in calls):
        statuses |= {401, 403}
    if any(call in _PROCESSOR_DEPENDENCIES for call in calls):
        statuses |= {402, 502}
    if body and _MANAGER_FIELDS & _body_fields(body, components):
        statuses |= {403, 423}
    return statuses


def _body_fields(body: dict[str, Any], components: dict[str, Any]) -> set[str]:
    fields: set[str] = set()
    for content in body.get("content", {}).values():
        schema = content.get("schema", {})
        reference = schema.get("$ref", "")
        if reference.startswith("#/components/schemas/"):
            schema = components.get(reference.rsplit("/", 1)[1], {})
        fields |= set(schema.get("properties", {}))
    return fields


def _add_media_types(operation: dict[str, Any]) -> None:
    formats: set[str] = set()
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "query" and parameter.get("name") == "format":
            formats |= set(parameter.get("schema", {}).get("enum", []))
    success = next((r for code, r in operation.get("responses", {}).items() if code.startswith("2")), None)
    if success is None:
        return
    content = success.setdefault("content", {})
    for name in sorted(formats):
        if name in MEDIA_TYPES:
            content.setdefault(MEDIA_TYPES[name], {"schema": {"type": "string"}})


def complete_responses(document: dict[str, Any], app: FastAPI) -> None:
    """Adds the error schema, the error statuses and the `format` media types to `document`, in place."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}}
    # Routes as FastAPI itself walks them for the document (included routers with their prefixes).
    for context in routing.iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, routing.APIRoute) or not route.include_in_schema:
            continue
        path = document.get("paths", {}).get(context.path_format, {})
        for method in context.methods or ():
            operation = path.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(_statuses(route.dependant, operation, components)):
                responses.setdefault(str(status), {"description": DESCRIPTIONS[status]})
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    # Every error is rendered by errors.py in the one shape, whatever the route declared.
                    response["content"] = error
                    if response.get("description") == "Validation Error":
                        response["description"] = DESCRIPTIONS[422]
            _add_media_types(operation)
    # FastAPI's validation-error schemas, unless something else still refers to them.
    for name in ("HTTPValidationError", "ValidationError"):
        others = {key: value for key, value in components.items() if key != name}
        if f'"#/components/schemas/{name}"' not in json.dumps([document.get("paths"), others]):
            components.pop(name, None)


def document_error_responses(app: FastAPI) -> None:
    """Makes `app.openapi()` return the completed document (call once, in the app factory)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            complete_responses(document, app)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
