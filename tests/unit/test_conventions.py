"""Team conventions that can be checked, checked."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "posomni"

# Only the boundaries own transactions: the request dependency and CLI unit of work (database.py), the
# migration runner, and the processes that commit between their own steps (checkout saga, workers).
COMMIT_ALLOWED = {"database.py", "migrations/env.py"}
COMMIT_ALLOWED_PATTERNS = (re.compile(r".*saga\.py$"), re.compile(r".*/worker\.py$"), re.compile(r".*/tasks\.py$"))


def _python_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _relative(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


def test_only_boundaries_commit() -> None:
    offenders = []
    for path in _python_files():
        rel = _relative(path)
        if rel in COMMIT_ALLOWED or any(p.match(rel) for p in COMMIT_ALLOWED_PATTERNS):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "commit":
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == [], f"commit outside the transaction boundaries: {offenders}"


def test_services_raise_domain_errors_not_http_exceptions() -> None:
    offenders = [
        _relative(p)
        for p in _python_files()
        if p.name in {"service.py", "repository.py"} and "HTTPException" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_no_module_level_stripe_api_key() -> None:
    offenders = [_relative(p) for p in _python_files() if "stripe.api_key" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_modules_stay_small() -> None:
    too_long = {
        _relative(p): n
        for p in _python_files()
        if "migrations/versions" not in _relative(p) and (n := len(p.read_text(encoding="utf-8").splitlines())) > 800
    }
    assert too_long == {}
