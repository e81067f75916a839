"""A JWT secret generated in development is saved to `.env`, so sign-ins survive a restart; never elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from posomni.config import load_settings, persist_generated_secret
from tests.conftest import base_env


def _write_env(path: Path, **overrides: str) -> None:
    env = base_env(**overrides)
    del env["JWT_SECRET"]
    path.write_text("".join(f"{name}={value}\n" for name, value in env.items()))


@pytest.fixture(autouse=True)
def _no_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POS_ENV", "JWT_SECRET", "AUDIT_LOG_ENCRYPTION_KEY", "ALLOWED_ORIGINS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_development_secret_is_saved_and_reused_after_a_restart(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    _write_env(env_file, POS_ENV="development")
    first = load_settings(env_file)
    assert first.jwt_secret_generated
    assert persist_generated_secret(first, env_file)
    restarted = load_settings(env_file)
    assert not restarted.jwt_secret_generated
    assert restarted.jwt_secret.get_secret_value() == first.jwt_secret.get_secret_value()
    # Saved once: a second start finds it and writes nothing more.
    assert not persist_generated_secret(restarted, env_file)
    assert env_file.read_text().count("JWT_SECRET=") == 1


def test_test_environment_never_writes_a_secret(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    _write_env(env_file, POS_ENV="test")
    before = env_file.read_text()
    settings = load_settings(env_file)
    assert settings.jwt_secret_generated
    assert not persist_generated_secret(settings, env_file)
    assert env_file.read_text() == before


def test_without_an_env_file_nothing_is_created(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    source = tmp_path / "source.env"
    _write_env(source, POS_ENV="development")
    settings = load_settings(source)
    assert not persist_generated_secret(settings, env_file)
    assert not env_file.exists()
