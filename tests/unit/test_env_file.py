"""The `.env` lines `posomni setup-env` writes read back exactly through the settings loader (python-dotenv)."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posomni.cli.env import env_line
from posomni.config import load_settings, read_environment
from tests.conftest import base_env

AWKWARD = [
    "ab #cd",  # unquoted, python-dotenv ends the value at " #"
    "#starts-with-hash",
    'say "hi"',
    "it's",
    "both ' and \"",
    "back\\slash",
    "ends with a backslash\\",
    "\\\\double",
    "\\n is not a line break",
    "pa$$word$",
    "${HOME}",
    "$${HOME}",
    "\\${HOME}",
    "${:-$}",
    "${A:-default}",
    "é✓ 漢字 🍷",
    "tab\there",
    "two\nlines\r\nand a CR\r",
    "  surrounded by spaces  ",
    "=equals=",
    "export X=1",
]


def write(path: Path, values: dict[str, str]) -> Path:
    path.write_text("\n".join(env_line(name, value) for name, value in values.items()) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("value", AWKWARD)
def test_awkward_values_read_back_exactly(tmp_path: Path, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A variable of the process environment with the name in the value must not leak into it.
    monkeypatch.setenv("HOME", "/somewhere/else")
    monkeypatch.setenv("A", "from-the-environment")
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    monkeypatch.delenv("SENTRY_ENVIRONMENT", raising=False)
    env_file = write(tmp_path / ".env", {"REDIS_PASSWORD": value, "SENTRY_ENVIRONMENT": value})
    raw = read_environment(env_file)
    assert raw.redis_password is not None
    assert raw.redis_password.get_secret_value() == value
    assert raw.sentry_environment == value


@settings(max_examples=300, deadline=None)
@given(value=st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_text_reads_back_exactly(tmp_path_factory: pytest.TempPathFactory, value: str) -> None:
    env_file = write(tmp_path_factory.mktemp("env") / ".env", {"REDIS_PASSWORD": value, "REDIS_NAMESPACE": "after"})
    with mock.patch.dict(os.environ):
        os.environ.pop("REDIS_PASSWORD", None)
        os.environ.pop("REDIS_NAMESPACE", None)
        raw = read_environment(env_file)
    assert raw.redis_password is not None
    assert raw.redis_password.get_secret_value() == value
    # The value does not swallow the line after it.
    assert raw.redis_namespace == "after"


def test_settings_loaded_from_the_written_file_keep_every_character(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "JWT_SECRET": 'jwt #not-a-comment "quoted" \\back $dollar ${HOME} é✓',
        "REDIS_PASSWORD": "ab #cd",
        "CONEXXUS_API_KEY": "key'with\"quotes\\and$",
        "STRIPE_WEBHOOK_SECRET": "whsec_ #1 ${X}",
    }
    env = base_env(
        POS_ENV="development",
        REDIS_HOST="redis.internal",
        CONEXXUS_API_URL="https://backoffice.example.com/api",
        SENTRY_ENVIRONMENT='store #4 ("Main St")',
        POSOMNI_DATA_DIR=str(tmp_path / "data dir #1"),
        **secrets,
    )
    for name in env:
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(write(tmp_path / ".env", env))
    assert settings.jwt_secret.get_secret_value() == secrets["JWT_SECRET"]
    assert settings.redis_password is not None
    assert settings.redis_password.get_secret_value() == secrets["REDIS_PASSWORD"]
    assert settings.conexxus_api_key is not None
    assert settings.conexxus_api_key.get_secret_value() == secrets["CONEXXUS_API_KEY"]
    assert settings.stripe_webhook_secret is not None
    assert settings.stripe_webhook_secret.get_secret_value() == secrets["STRIPE_WEBHOOK_SECRET"]
    assert settings.sentry_environment == 'store #4 ("Main St")'
    assert settings.data_dir == tmp_path / "data dir #1"
    assert settings.audit_log_encryption_key.get_secret_value() == env["AUDIT_LOG_ENCRYPTION_KEY"]


def test_files_written_before_quoting_still_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = base_env(POS_ENV="development", REDIS_HOST="127.0.0.1", REDIS_PORT="6380")
    for name in env:
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# POS-Omni configuration\n"
        + "\n".join(f"{name}={value}" for name, value in env.items())
        + "\n\n# generated at first start (development only)\nJWT_SECRET=Xy_-abc123"
        + "z" * 40
        + "\n",
        encoding="utf-8",
    )
    settings = load_settings(env_file)
    assert settings.audit_log_encryption_key.get_secret_value() == env["AUDIT_LOG_ENCRYPTION_KEY"]
    assert (settings.redis_host, settings.redis_port) == ("127.0.0.1", 6380)
    assert settings.jwt_secret.get_secret_value() == "Xy_-abc123" + "z" * 40


def test_the_line_is_double_quoted_and_readable() -> None:
    assert env_line("REDIS_PASSWORD", "ab #cd") == 'REDIS_PASSWORD="ab #cd"'
    assert env_line("X", 'a"b\\c') == 'X="a\\"b\\\\c"'
    assert env_line("X", "${HOME}") == 'X="${:-$}{HOME}"'
