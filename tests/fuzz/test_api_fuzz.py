"""API fuzzing with schemathesis against the app's own OpenAPI document, signed in as an admin and as a cashier,
over every operation: no 500, and every answer as documented — its status code, its media type, its headers and
its body (the one error shape included, see src/posomni/openapi.py).

Schemathesis runs as its command line (`st run`): its pytest integration for a schema from a fixture does not
run on pytest 9. Each run takes the examples, coverage (boundaries, missing and malformed values) and fuzzing
phases, valid and invalid data, with hooks from tests/fuzz/hooks.py. The bounded run of `make test` takes
POSOMNI_FUZZ_EXAMPLES=5 fuzzed cases per operation and role; `make fuzz` sets many more and adds the stateful
phase (POSOMNI_FUZZ_PHASES).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.conftest import Target

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("POSOMNI_FUZZ_EXAMPLES", "5"))
PHASES = os.environ.get("POSOMNI_FUZZ_PHASES", "examples,coverage,fuzzing")
SEED = os.environ.get("POSOMNI_FUZZ_SEED", "20261129")
TIMEOUT = int(os.environ.get("POSOMNI_FUZZ_TIMEOUT", "300"))
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
CHECKS += "response_schema_conformance"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT + 60)]


def st_command() -> list[str]:
    script = Path(sys.executable).with_name("st")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "schemathesis.cli"]


def fuzz(target: Target, role: str, tmp_path: Path) -> str:
    """One `st run` as `role`; returns its report, fails the test with it when anything was found."""
    facts = tmp_path / f"target-{role}.json"
    facts.write_text(
        json.dumps({"token": target.tokens[role], "logout_tokens": target.take_logout_tokens(),
                    "protected": {name: sorted(ids) for name, ids in target.protected.items()}}),
        encoding="utf-8",
    )  # fmt: skip
    command = [
        *st_command(), "run", f"{target.url}/openapi.json", "--checks", CHECKS, "--phases", PHASES,
        "--max-examples", str(EXAMPLES), "--mode", "all", "--seed", SEED, "--workers", "2",
        "--suppress-health-check", "all", "--request-timeout", "30", "--no-color",
        "--report", "junit", "--report-dir", str(tmp_path / f"report-{role}"),
    ]  # fmt: skip
    environment = {
        **os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks", "POSOMNI_FUZZ_TARGET": str(facts),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }  # fmt: skip
    completed = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    report = completed.stdout + completed.stderr
    generated = re.search(r"(\d+) generated", report)
    print(f"fuzz as {role}: {generated.group(0) if generated else '?'} cases, exit {completed.returncode}")
    if completed.returncode != 0:
        # The report's failures, each with a curl command that reproduces it.
        start = report.find("FAILURES")
        pytest.fail(f"schemathesis found problems as {role}:\n{report[start if start >= 0 else -8000 :]}")
    return report


def test_every_operation_answers_as_documented_for_an_admin(fuzz_target: Target, tmp_path: Path) -> None:
    fuzz(fuzz_target, "admin", tmp_path)


def test_every_operation_answers_as_documented_for_a_cashier(fuzz_target: Target, tmp_path: Path) -> None:
    fuzz(fuzz_target, "cashier", tmp_path)


def test_the_server_logged_no_unhandled_error(fuzz_target: Target) -> None:
    errors = [line for line in fuzz_target.log().splitlines() if "unhandled_error" in line]
    assert errors == [], errors[:3]
