"""Removing secrets and personal data from log lines and error reports (structlog and Sentry share this).

What is removed:

* the value of any field whose *name* says it is secret or personal (`is_sensitive_key`): passwords, PINs,
  secrets, tokens, API and encryption keys, authorization headers, cookies, sessions, CSRF tokens, DSNs,
  signatures, card numbers and security codes, and dates of birth (`dob`, `date_of_birth`, `birth_date`);
* in free text: `name=value` and `"name": "value"` pairs with such a name, bearer tokens, JWTs, Stripe keys,
  passwords in URLs (`scheme://user:password@host`), dates of birth written out ("date of birth 1990-01-15")
  and AAMVA `DBB` elements; in a whole AAMVA ID scan, every personal element (name, address, ID number);
* card-like numbers, by `security.pci.scrub` (13–19 digits passing Luhn, last four kept).

Masking is by name and shape, so it over-masks rather than under-masks: `token_expired=true` loses its value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

from posomni.security import pci

REDACTED: Final = "[redacted]"
_MAX_DEPTH: Final = 12

_SENSITIVE_WORDS: Final = frozenset(
    {
        "password", "passwd", "pwd", "passphrase", "secret", "token", "authorization", "cookie", "cookies",
        "session", "csrf", "xsrf", "pin", "dsn", "credential", "credentials", "signature", "apikey", "dob",
        "birthdate", "birthday", "cvc", "cvv", "cvv2", "pan", "jwt", "bearer",
    }
)  # fmt: skip
_SENSITIVE_COMPOUNDS: Final = (
    "api_key", "access_key", "private_key", "secret_key", "signing_key", "encryption_key", "date_of_birth",
    "birth_date", "card_number", "set_cookie",
)  # fmt: skip
_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM: Final = re.compile(r"[^a-z0-9]+")

# Case-sensitive "Basic": in lower case it is an ordinary word ("basic settings"), not a credential's scheme.
_BEARER: Final = re.compile(r"\b([Bb]earer|BEARER|Basic)\s+[A-Za-z0-9\-._~+/]+=*")
_JWT: Final = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_STRIPE_KEY: Final = re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{6,}|\bwhsec_[A-Za-z0-9]{6,}")
_URL_PASSWORD: Final = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*):[^\s@/]+@")
_PAIR: Final = re.compile(
    r"""(?P<kq>["']?)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P=kq)(?P<sep>\s*[:=]\s*)"""
    r"""(?:(?P<q>["'])(?P<qv>[^"'\n]*)(?P=q)|(?P<v>[^\s,;&}\])"']+))"""
)
_DOB_PHRASE: Final = re.compile(
    r"(?i)\b(date of birth|birth ?date|dob|born(?: on)?)([\s:=]+)\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"
)
_AAMVA_HEADER: Final = re.compile(r"(?:ANSI |AAMVA)\d{6}")
_AAMVA_DOB: Final = re.compile(r"DBB\d{8}")
# Names, address, ID number, date of birth and physical description of an AAMVA DL/ID.
_AAMVA_PERSONAL: Final = re.compile(
    r"(DAA|DAB|DAC|DAD|DAE|DAF|DAG|DAH|DAI|DAK|DAQ|DBB|DBN|DBG|DBS|DCS|DCT|DCU|DAU|DAW|DAY|DAZ|DCL)"
    r"[^\n\r\x1e]*"
)


@functools.lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """Whether a field of this name holds a secret or personal data (`user_password`, `X-Api-Key`, `dob`)."""
    normalised = _NON_ALNUM.sub("_", _CAMEL.sub("_", key).lower()).strip("_")
    if any(word in _SENSITIVE_WORDS for word in normalised.split("_")):
        return True
    return any(compound in normalised for compound in _SENSITIVE_COMPOUNDS)


def _pair(match: re.Match[str]) -> str:
    if not is_sensitive_key(match.group("key")):
        return match.group(0)
    quote = match.group("q") or ""
    kq = match.group("kq")
    return f"{kq}{match.group('key')}{kq}{match.group('sep')}{quote}{REDACTED}{quote}"


def scrub_text(text: str) -> str:
    if not text:
        return text
    cleaned = pci.scrub(text)
    if _AAMVA_HEADER.search(cleaned):
        cleaned = _AAMVA_PERSONAL.sub(lambda m: m.group(1) + REDACTED, cleaned)
    else:
        cleaned = _AAMVA_DOB.sub("DBB" + REDACTED, cleaned)
    cleaned = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", cleaned)
    cleaned = _JWT.sub(REDACTED, cleaned)
    cleaned = _STRIPE_KEY.sub(REDACTED, cleaned)
    cleaned = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", cleaned)
    cleaned = _DOB_PHRASE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", cleaned)
    return _PAIR.sub(_pair, cleaned)


def scrub_value(value: Any, key: str | None = None, depth: int = 0) -> Any:
    """`value` with sensitive fields redacted and every string scrubbed; containers are copied, not changed."""
    if key is not None and value is not None and not isinstance(value, bool) and is_sensitive_key(key):
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return pci.scrub(str(value)) if pci.contains_card_number(str(value)) else value
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {k: scrub_value(v, str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v, key, depth + 1) for v in value]
    return value


# --- structlog ---------------------------------------------------------------------------------------------


_LOG_PASSTHROUGH: Final = frozenset({"exc_info", "stack_info"})


def scrub_log_event(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """structlog processor: every field scrubbed. Left alone: structlog's own `_record`-style fields and the
    exception objects, which `scrub_rendered_exception` cleans once they are rendered as text."""
    return {
        key: value
        if key.startswith("_") or key in _LOG_PASSTHROUGH
        else scrub_value(value, None if key == "event" else key)
        for key, value in event_dict.items()
    }


def scrub_rendered_exception(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor placed after `format_exc_info`: tracebacks quote exception messages and source
    lines, which may carry a secret the event's own fields did not."""
    for key in ("exception", "stack"):
        value = event_dict.get(key)
        if isinstance(value, str):
            event_dict[key] = scrub_text(value)
    return event_dict


# --- Sentry ------------------------------------------------------------------------------------------------


def scrub_sentry_event(event: Any, _hint: Any) -> Any:
    """`before_send` / `before_send_transaction`: the whole event, including exception messages, stack frame
    variables, request headers, breadcrumbs and extra data."""
    cleaned = scrub_value(event)
    logentry = cleaned.get("logentry") if isinstance(cleaned, dict) else None
    if isinstance(logentry, dict) and "formatted" in logentry:
        # A log call's arguments arrive bare, without the words around them that reveal what they are
        # ("password=%s"): the scrubbed `formatted` text says the same, so the arguments are dropped.
        logentry.pop("params", None)
    return cleaned


def scrub_sentry_breadcrumb(crumb: Any, _hint: Any) -> Any:
    return scrub_value(crumb)
