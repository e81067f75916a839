"""Statement timing from SQLAlchemy's cursor events, and SQL normalised so that no value is ever shown.

Every statement's duration goes to the `posomni_db_query_duration_seconds` histogram; those slower than
SLOW_QUERY_MS are also kept by the `PerformanceTracker`, with the request that ran them. Only the
statement's *shape* is kept: string, number, hex and dollar-quoted literals, bind placeholders and comments
are replaced by `?`, and long IN lists and VALUES rows are collapsed, so a query that embeds a customer's
name or a card's last four digits shows `?` instead. Parameters are never read.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import Engine

from posomni.logging import get_logger
from posomni.monitoring.metrics import QUERY_OPERATIONS, app_metrics, query_operation
from posomni.monitoring.performance import PerformanceTracker, current_request

log = get_logger(__name__)

MAX_SQL_CHARS: Final = 2000
_START_KEY: Final = "posomni_query_started"

# Order matters: comments and quoted text go first, so that digits or quotes inside them are not seen twice.
_PATTERNS: Final = (
    (re.compile(r"--[^\n]*"), " "),
    (re.compile(r"/\*.*?(?:\*/|$)", re.S), " "),
    # Dollar-quoted text (PostgreSQL): $$…$$ and $tag$…$tag$; a bare $1 is a placeholder, handled below.
    (re.compile(r"\$\$.*?(?:\$\$|$)", re.S), "?"),
    (re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\$.*?(?:\$\1\$|$)", re.S), "?"),
    # Strings, with '' and backslash escapes and the E'', N'', X'' and B'' prefixes. Where a backslash is not an
    # escape ('C:\'), the string runs on and more is masked, never less.
    (re.compile(r"(?<![A-Za-z0-9_])[EeNnXxBbUu]?&?'(?:[^'\\]|\\.|'')*(?:'|$)", re.S), "?"),
    # Placeholders: $1 (asyncpg), %(name)s and %s (format styles), :name (named), ? (qmark).
    (re.compile(r"\$\d+|%\([^)]*\)s|%s|(?<![:\w]):[A-Za-z_][A-Za-z0-9_]*"), "?"),
    # Numbers that are not part of an identifier (t1, posomni_2024) or a quoted name.
    (re.compile(r"(?<![\w$.\"])-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w\"])"), "?"),
)
# Lists of placeholders, with asyncpg's casts ($1::INTEGER): IN lists, VALUES rows, multi-argument calls.
_IN_LIST: Final = re.compile(r"\(\s*\?(?:::\w+)?(?:\s*,\s*\?(?:::\w+)?)+\s*\)")
_VALUES_ROWS: Final = re.compile(r"(\(\?\))(?:\s*,\s*\(\?\))+")
_SPACES: Final = re.compile(r"\s+")


def normalise_sql(statement: str) -> str:
    """The statement's shape: every literal and placeholder is `?`, whitespace collapsed, length bounded."""
    text = statement
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = _SPACES.sub(" ", text).strip()
    text = _IN_LIST.sub("(?)", text)
    text = _VALUES_ROWS.sub(r"\1, …", text)
    return text if len(text) <= MAX_SQL_CHARS else text[: MAX_SQL_CHARS - 1] + "…"


def instrument_engine(engine: Engine, tracker: PerformanceTracker) -> Callable[[], None]:
    """Time every statement on `engine` (the sync engine behind an AsyncEngine); returns the detach function."""
    # Label children resolved once: these hooks run for every statement.
    by_operation = {op: app_metrics().query_duration.labels(op) for op in (*QUERY_OPERATIONS, "other")}
    slow_counter = app_metrics().slow_queries

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        # The start goes on the statement's execution context, or on the connection when there is none (one
        # statement at a time per connection). A failed statement's start is simply never read.
        try:
            context.posomni_query_started = time.perf_counter()
        except AttributeError:
            conn.info[_START_KEY] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        started = getattr(context, "posomni_query_started", None) or conn.info.pop(_START_KEY, None)
        if started is None:
            return
        seconds = time.perf_counter() - started
        by_operation[query_operation(statement)].observe(seconds)
        if seconds * 1000 < tracker.slow_query_ms:
            return
        slow_counter.inc()
        try:
            request = current_request.get()
            # Normalised only when slow: the regexes cost more than the timing itself.
            tracker.observe_slow_query(
                normalise_sql(statement),
                seconds,
                request_id=request.request_id if request else None,
                route=request.route() if request else None,
            )
        except Exception:  # the statement has succeeded: monitoring must never turn it into a failure
            log.exception("slow_query_not_recorded")

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)

    def detach() -> None:
        for name, listener in (("before_cursor_execute", before), ("after_cursor_execute", after)):
            if event.contains(engine, name, listener):
                event.remove(engine, name, listener)

    return detach
