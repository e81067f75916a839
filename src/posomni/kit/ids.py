"""Identifiers: request ids and opaque random tokens."""

from __future__ import annotations

import re
import secrets
import uuid

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_valid_request_id(value: str) -> bool:
    """A client-supplied X-Request-ID is kept only when it is short and plain (no log injection)."""
    return bool(_REQUEST_ID.fullmatch(value))


def token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
