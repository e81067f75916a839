"""Schemathesis hooks for the fuzz runs of test_api_fuzz.py, loaded by the `st` command (SCHEMATHESIS_HOOKS).

The run's facts come from the JSON file named by POSOMNI_FUZZ_TARGET: the bearer token of the role being fuzzed,
the tokens `POST /auth/logout` may spend, and the path parameters that name the fuzzer's own users and register
(disabling, re-roling or signing those out would turn every later answer into a 401)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import schemathesis

_TARGET: dict[str, Any] = json.loads(Path(os.environ["POSOMNI_FUZZ_TARGET"]).read_text(encoding="utf-8"))
_PROTECTED: dict[str, set[int]] = {name: set(ids) for name, ids in _TARGET["protected"].items()}
_LOGOUT_TOKENS: list[str] = list(_TARGET["logout_tokens"])


def _names_protected(path_parameters: dict[str, Any]) -> bool:
    for name, ids in _PROTECTED.items():
        value = path_parameters.get(name)
        if isinstance(value, int | str) and str(value).strip().lstrip("+").isdigit() and int(value) in ids:
            return True
    return False


@schemathesis.hook
def filter_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> bool:
    return not path_parameters or not _names_protected(path_parameters)


# No caching and no retry on 401: a 401 is an answer to check, not a token to refresh.
@schemathesis.auth(refresh_interval=None, retry_on=[])
class FuzzerToken:
    def get(self, case: Any, context: Any) -> str:
        if case.operation.path == "/auth/logout":
            # Each sign-out spends a session of its own; when they run out, a spent one (a documented 401).
            return _LOGOUT_TOKENS.pop() if len(_LOGOUT_TOKENS) > 1 else _LOGOUT_TOKENS[0]
        return str(_TARGET["token"])

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
