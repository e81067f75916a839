"""The scrubber shared by logs and Sentry, the SQL normaliser, and the configured log pipeline end to end."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date

import pytest
import structlog

from posomni.logging import configure_logging
from posomni.monitoring.queries import normalise_sql
from posomni.monitoring.scrub import REDACTED, is_sensitive_key, scrub_text, scrub_value
from tests.integration.compliance.support import build_card

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.aGVsbG8td29ybGQtc2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT * FROM users WHERE name = 'O''Brien' AND age > 21", "SELECT * FROM users WHERE name = ? AND age > ?"),
        ("SELECT a FROM t WHERE id = $1::INTEGER AND b = $2", "SELECT a FROM t WHERE id = ?::INTEGER AND b = ?"),
        ("SELECT a FROM t WHERE id IN ($1, $2, $3, $4)", "SELECT a FROM t WHERE id IN (?)"),
        ("INSERT INTO t (a, b) VALUES (?), (?), (?)", "INSERT INTO t (a, b) VALUES (?), …"),
        ("UPDATE t SET x = %(x)s WHERE y = :y", "UPDATE t SET x = ? WHERE y = ?"),
        (
            'SELECT t1.a, "col2024" FROM t1 -- note 4111111111111111\nWHERE 1=1',
            'SELECT t1.a, "col2024" FROM t1 WHERE ?=?',
        ),
        ("SELECT $tag$Jane Doe$tag$, $$x$$, E'a\\'', -3.5e2, .5", "SELECT ?, ?, ?, ?, ?"),
        ("SELECT x /* customer 'Jane' */ FROM t WHERE d = '1990-05-17'", "SELECT x FROM t WHERE d = ?"),
    ],
)
def test_sql_is_normalised_without_values(statement: str, expected: str) -> None:
    assert normalise_sql(statement) == expected


@pytest.mark.parametrize(
    "key",
    ["password", "new_password", "JWT_SECRET", "X-Api-Key", "apiKey", "authorization", "Cookie", "csrf_token",
     "pin", "manager_pin", "dob", "date_of_birth", "birthDate", "customer_dob", "stripe-signature", "card_number",
     "encryption_key", "SENTRY_DSN", "access_token"],
)  # fmt: skip
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key", ["event", "request_id", "shipping", "span_id", "sale_id", "total_cents", "route", "company", "expand"]
)
def test_ordinary_keys(key: str) -> None:
    assert not is_sensitive_key(key)


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        ("Authorization: Bearer abc.def-ghi", "abc.def-ghi", "Authorization"),
        (f"token {JWT} rejected", JWT, "rejected"),
        ("using sk_live_51HxYzAbCdEf and whsec_abcdef123456", "51HxYzAbCdEf", "using"),
        ("postgresql://pos:s3cret@db:5432/posomni", "s3cret", "postgresql://pos:"),
        ("GET /x?token=abc123&page=2", "abc123", "page=2"),
        ("{'password': 'two words', 'user': 'bob'}", "two words", "'user': 'bob'"),
        ('{"dob": "1990-05-17", "ok": 1}', "1990-05-17", '"ok": 1'),
        ("customer date of birth 1990-05-17 refused", "1990-05-17", "refused"),
        ("dob 05/17/1990", "05/17/1990", "dob"),
        ("scan ended at DBB05171990 DBA01012030", "05171990", "DBA01012030"),
        ("paid with 4242 4242 4242 4242 today", "4242 4242 4242 4242", "[card ****4242]"),
    ],
)
def test_free_text_is_scrubbed(text: str, gone: str, kept: str) -> None:
    cleaned = scrub_text(text)
    assert gone not in cleaned
    assert kept in cleaned


def test_a_whole_id_scan_loses_every_personal_element() -> None:
    card = build_card(dob=date(1990, 5, 17), expires=date(2030, 1, 1), number="D7654321", last="SMITH", first="ANN")
    cleaned = scrub_text(f"unreadable: {card}")
    for personal in ("05171990", "D7654321", "SMITH", "ANN"):
        assert personal not in cleaned
    assert "DBB" + REDACTED in cleaned


def test_nested_values_are_redacted_by_name_and_shape() -> None:
    value = {
        "user": "bob",
        "password": "pw",
        "headers": {"Authorization": "Bearer x", "Accept": "text/html"},
        "items": [{"note": "card 4111111111111111"}, 4111111111111111, 12, True, None],
        "dob": date(1990, 5, 17),
        "pin": None,
    }
    assert scrub_value(value) == {
        "user": "bob",
        "password": REDACTED,
        "headers": {"Authorization": REDACTED, "Accept": "text/html"},
        "items": [{"note": "card [card ****1111]"}, "[card ****1111]", 12, True, None],
        "dob": REDACTED,
        "pin": None,
    }


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back as it was for the other tests."""
    was_configured = structlog.is_configured()
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    named = {
        n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate, logging.getLogger(n).level)
        for n in ("uvicorn", "uvicorn.error", "uvicorn.access")
    }
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, (kept, propagate, named_level) in named.items():
        logging.getLogger(name).handlers[:] = kept
        logging.getLogger(name).propagate = propagate
        logging.getLogger(name).setLevel(named_level)
    if was_configured:
        structlog.configure(**saved)
    else:
        structlog.reset_defaults()


def test_configured_json_logs_carry_the_request_id_and_no_secret(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json")
    log = structlog.stdlib.get_logger("tests.monitoring.pipeline")
    with structlog.contextvars.bound_contextvars(request_id="pipeline-0001"):
        log.info("signed_in", username="bob", password="hunter2-secret", note="card 4111 1111 1111 1111")
        logging.getLogger("uvicorn.access").info('%s - "%s %s" %d', "10.0.0.1", "GET", "/x?token=tok-123456", 200)
        try:
            raise ValueError(f"bad customer, date of birth 1990-05-17, jwt {JWT}")
        except ValueError:
            log.exception("failed", customer_dob="1990-05-17")

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]

    assert [line["event"] for line in lines] == ["signed_in", lines[1]["event"], "failed"]
    assert all(line["request_id"] == "pipeline-0001" for line in lines)
    text = "\n".join(json.dumps(line) for line in lines)
    for secret in ("hunter2-secret", "4111 1111 1111 1111", "tok-123456", "1990-05-17", JWT):
        assert secret not in text
    assert lines[0]["password"] == REDACTED
    assert "[card ****1111]" in lines[0]["note"]
    assert "Traceback" in lines[2]["exception"]
