"""The `posomni` command line: validate-env, setup-env (prompts and non-interactive), db setup, health."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from posomni.catalog.models import Barcode, Product
from posomni.cli import app
from posomni.config import check, load_settings, read_environment
from posomni.database import Database
from posomni.inventory.models import StockLevel, StockMovement
from posomni.stores.models import Register, Store
from posomni.users.models import User
from tests.conftest import base_env, service_missing
from tests.integration.cache.servers import MASTER_NAME, REDIS_SERVER, Servers, direct_client

runner = CliRunner()

# Variables the CLI reads; each test sets exactly what it needs.
CLEAN_ENV: dict[str, str | None] = dict.fromkeys(
    [
        "POS_ENV", "AUDIT_LOG_ENCRYPTION_KEY", "OLD_AUDIT_LOG_ENCRYPTION_KEY", "ALLOWED_ORIGINS", "DATABASE_URL",
        "JWT_SECRET", "STRIPE_SECRET_KEY", "REDIS_HOST", "REDIS_PORT", "SENTRY_DSN", "POSOMNI_DATA_DIR",
    ]
)  # fmt: skip


def invoke(args: list[str], env: dict[str, str] | None = None, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, args, env={**CLEAN_ENV, **(env or {})}, input=input)


class TestValidateEnv:
    def test_valid_configuration_exits_0(self, tmp_path: Path) -> None:
        result = invoke(["validate-env", "--env-file", str(tmp_path / "none")], base_env())
        assert result.exit_code == 0, result.output
        assert "Configuration valid" in result.output

    def test_invalid_configuration_exits_1_and_lists_every_error(self, tmp_path: Path) -> None:
        env = base_env(POS_ENV="production", AUDIT_LOG_ENCRYPTION_KEY="short", ALLOWED_ORIGINS="*")
        result = invoke(["validate-env", "--env-file", str(tmp_path / "none")], env)
        assert result.exit_code == 1
        for variable in ("AUDIT_LOG_ENCRYPTION_KEY", "ALLOWED_ORIGINS", "DATABASE_URL"):
            assert variable in result.output

    def test_json_output_for_pipelines(self, tmp_path: Path) -> None:
        env = base_env(POS_ENV="production", JWT_SECRET="tiny")
        result = invoke(["validate-env", "--json", "--env-file", str(tmp_path / "none")], env)
        assert result.exit_code == 1
        document = json.loads(result.stdout)
        assert document["valid"] is False
        assert {e["variable"] for e in document["errors"]} >= {"JWT_SECRET", "DATABASE_URL"}
        assert "tiny" not in result.stdout

    def test_reads_the_env_file(self, tmp_path: Path) -> None:
        env_file = tmp_path / "custom.env"
        env_file.write_text("\n".join(f"{k}={v}" for k, v in base_env().items()))
        result = invoke(["validate-env", "--env-file", str(env_file)])
        assert result.exit_code == 0, result.output


class TestSetupEnv:
    def test_wizard_prompts_and_writes_a_valid_private_env_file(self, tmp_path: Path) -> None:
        output = tmp_path / ".env"
        db = tmp_path / "pos.db"
        answers = "\n".join([
            f"sqlite:///{db}",                                # DATABASE_URL
            "ftp://wrong",                                    # ALLOWED_ORIGINS refused …
            "http://127.0.0.1:8000,https://pos.example.com",  # … and asked again
            "pk_test_wrong",                                  # STRIPE_SECRET_KEY refused …
            "sk_test_51ABCdefGHIjkl",                         # … and asked again
            "",                                               # STRIPE_WEBHOOK_SECRET: none
            "",                                               # Redis Sentinel? no
            "",                                               # REDIS_HOST: none
            "",                                               # SENTRY_DSN: none
            "",                                               # CONEXXUS_API_URL: none
            "America/Chicago",                                # STORE_TIMEZONE
            "y",                                              # write?
        ]) + "\n"  # fmt: skip
        result = invoke(["setup-env", "--output", str(output)], input=answers)
        assert result.exit_code == 0, result.output
        assert "try again" in result.output
        assert stat.S_IMODE(output.stat().st_mode) == 0o600
        settings = load_settings(output)
        assert settings.store_timezone == "America/Chicago"
        assert settings.allowed_origins == ("http://127.0.0.1:8000", "https://pos.example.com")
        assert settings.stripe_secret_key is not None
        # Generated secrets are written but never shown in full.
        assert settings.audit_log_encryption_key.get_secret_value() not in result.output
        assert settings.jwt_secret.get_secret_value() not in result.output
        assert "sk_test_51ABCdefGHIjkl" not in result.output
        assert db.exists()  # the connection test really connected

    def test_wizard_asks_for_the_redis_password_and_keeps_it_out_of_the_output(self, tmp_path: Path) -> None:
        output = tmp_path / ".env"
        answers = "\n".join([
            f"sqlite:///{tmp_path / 'pos.db'}",  # DATABASE_URL
            "",                                   # ALLOWED_ORIGINS: the default
            "",                                   # STRIPE_SECRET_KEY: none
            "",                                   # Redis Sentinel? no
            "redis.internal",                     # REDIS_HOST
            "6380",                               # REDIS_PORT
            "Redis-Pass-7731",                    # REDIS_PASSWORD
            "",                                   # SENTRY_DSN: none
            "",                                   # CONEXXUS_API_URL: none
            "",                                   # STORE_TIMEZONE: the default
            "y",                                  # write?
        ]) + "\n"  # fmt: skip
        result = invoke(["setup-env", "--no-check-connections", "--output", str(output)], input=answers)
        assert result.exit_code == 0, result.output
        assert "REDIS_PASSWORD" in result.output
        assert "Redis-Pass-7731" not in result.output
        settings = load_settings(output)
        assert (settings.redis_host, settings.redis_port) == ("redis.internal", 6380)
        assert settings.redis_password is not None
        assert settings.redis_password.get_secret_value() == "Redis-Pass-7731"

    def test_wizard_asks_for_sentinel_sentry_and_the_back_office_by_the_start_up_rules(self, tmp_path: Path) -> None:
        output = tmp_path / ".env"
        answers = "\n".join([
            f"sqlite:///{tmp_path / 'pos.db'}",       # DATABASE_URL
            "",                                        # ALLOWED_ORIGINS: the default
            "",                                        # STRIPE_SECRET_KEY: none
            "y",                                       # Redis Sentinel? yes
            "",                                        # REDIS_SENTINEL_MASTER_NAME: the default
            "redis-a",                                 # REDIS_SENTINELS refused …
            "10.0.0.1:26379, 10.0.0.2:26380",          # … and asked again
            "Sentinel-Pass #9",                        # REDIS_PASSWORD
            "not-a-dsn",                               # SENTRY_DSN refused …
            "https://abc123@o1.ingest.sentry.io/42",   # … and asked again
            "",                                        # SENTRY_ENVIRONMENT: the default
            "1.5",                                     # SENTRY_TRACES_SAMPLE_RATE refused …
            "0.25",                                    # … and asked again
            "",                                        # SENTRY_PROFILES_SAMPLE_RATE: the default
            "ftp://backoffice.example.com",            # CONEXXUS_API_URL refused …
            "https://backoffice.example.com/api",      # … and asked again
            "",                                        # CONEXXUS_API_KEY: required with the URL …
            "Conexxus-Key #7",                         # … and asked again
            "45",                                      # CONEXXUS_TIMEOUT_SECONDS refused …
            "8",                                       # … and asked again
            "Mars/Olympus_Mons",                       # STORE_TIMEZONE refused …
            "America/Denver",                          # … and asked again
            "y",                                       # write?
        ]) + "\n"  # fmt: skip
        result = invoke(["setup-env", "--no-check-connections", "--output", str(output)], input=answers)
        assert result.exit_code == 0, result.output
        for refused in ("REDIS_SENTINELS: 'redis-a' is not host:port", "SENTRY_DSN: does not parse",
                        "SENTRY_TRACES_SAMPLE_RATE: 1.5 is outside [0, 1]", "CONEXXUS_API_URL: 'ftp://",
                        "CONEXXUS_API_KEY: is required with CONEXXUS_API_URL", "CONEXXUS_TIMEOUT_SECONDS: 45",
                        "STORE_TIMEZONE: 'Mars/Olympus_Mons'"):  # fmt: skip
            assert refused in result.output
        assert result.output.count("try again") == 7
        assert "Use Redis Sentinel" in result.output
        for secret in ("Sentinel-Pass #9", "abc123", "Conexxus-Key #7"):
            assert secret not in result.output
        settings, problems = check(read_environment(output))
        assert settings is not None, problems
        assert settings.redis_sentinel_enabled
        assert settings.redis_sentinel_master_name == "mymaster"
        assert [(s.host, s.port) for s in settings.redis_sentinels] == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
        assert settings.redis_host is None
        assert settings.redis_password is not None
        assert settings.redis_password.get_secret_value() == "Sentinel-Pass #9"
        assert settings.sentry_dsn is not None
        assert settings.sentry_dsn.get_secret_value() == "https://abc123@o1.ingest.sentry.io/42"
        assert settings.sentry_environment == "development"
        assert (settings.sentry_traces_sample_rate, settings.sentry_profiles_sample_rate) == (0.25, 0.0)
        assert settings.conexxus_api_url == "https://backoffice.example.com/api"
        assert settings.conexxus_api_key is not None
        assert settings.conexxus_api_key.get_secret_value() == "Conexxus-Key #7"
        assert settings.conexxus_timeout_seconds == 8.0
        assert settings.store_timezone == "America/Denver"

    def test_optional_settings_are_skipped_with_enter_and_not_written(self, tmp_path: Path) -> None:
        output = tmp_path / ".env"
        answers = "\n".join([f"sqlite:///{tmp_path / 'pos.db'}"] + [""] * 7 + ["y"]) + "\n"
        result = invoke(["setup-env", "--no-check-connections", "--output", str(output)], input=answers)
        assert result.exit_code == 0, result.output
        written = {line.split("=", 1)[0] for line in output.read_text().splitlines() if not line.startswith("#")}
        assert written == {"POS_ENV", "AUDIT_LOG_ENCRYPTION_KEY", "JWT_SECRET", "ALLOWED_ORIGINS", "DATABASE_URL",
                           "STORE_TIMEZONE"}  # fmt: skip
        settings = load_settings(output)
        assert not settings.redis_configured
        assert settings.sentry_dsn is None
        assert settings.conexxus_api_url is None

    def test_non_interactive_flags_for_sentinel_sentry_and_the_back_office(self, tmp_path: Path) -> None:
        output = tmp_path / ".env"
        result = invoke(["setup-env", "--non-interactive", "--no-check-connections", "--output", str(output),
                         "--redis-sentinel", "--redis-sentinel-master-name", "pos-master",
                         "--redis-sentinels", "sentinel-1:26379,sentinel-2:26379",
                         "--sentry-dsn", "https://k@sentry.example.com/7", "--sentry-environment", "store-4",
                         "--sentry-traces-sample-rate", "0.5", "--sentry-profiles-sample-rate", "0.1",
                         "--conexxus-api-url", "https://bo.example.com", "--conexxus-api-key", "bo-key-123456",
                         "--conexxus-timeout-seconds", "3"])  # fmt: skip
        assert result.exit_code == 0, result.output
        settings = load_settings(output)
        assert settings.redis_sentinel_enabled
        assert settings.redis_sentinel_master_name == "pos-master"
        assert [s.host for s in settings.redis_sentinels] == ["sentinel-1", "sentinel-2"]
        assert (settings.sentry_environment, settings.sentry_traces_sample_rate) == ("store-4", 0.5)
        assert settings.sentry_profiles_sample_rate == 0.1
        assert settings.conexxus_api_url == "https://bo.example.com"
        assert settings.conexxus_timeout_seconds == 3.0

    @pytest.mark.parametrize(
        ("flags", "variable"),
        [
            (["--redis-sentinel", "--redis-sentinels", "sentinel-1:26379"], "REDIS_SENTINEL_MASTER_NAME"),
            (["--redis-sentinel", "--redis-sentinel-master-name", "m", "--redis-sentinels", "s1"], "REDIS_SENTINELS"),
            (["--sentry-dsn", "https://k@sentry.example.com/7", "--sentry-traces-sample-rate", "2"],
             "SENTRY_TRACES_SAMPLE_RATE"),
            (["--conexxus-api-url", "https://bo.example.com"], "CONEXXUS_API_KEY"),
            (["--conexxus-api-url", "https://bo.example.com", "--conexxus-api-key", "k" * 12,
              "--conexxus-timeout-seconds", "0"], "CONEXXUS_TIMEOUT_SECONDS"),
        ],
    )  # fmt: skip
    def test_non_interactive_flags_are_checked_by_the_start_up_rules(
        self, tmp_path: Path, flags: list[str], variable: str
    ) -> None:
        output = tmp_path / ".env"
        result = invoke(["setup-env", "--non-interactive", "--no-check-connections", "--output", str(output), *flags])
        assert result.exit_code == 1
        assert variable in result.output
        assert "Not written" in result.output
        assert not output.exists()

    def test_help_lists_the_flags(self) -> None:
        result = invoke(["setup-env", "--help"], {"COLUMNS": "240"})
        assert result.exit_code == 0
        for flag in ("--stripe-webhook-secret", "--redis-sentinel", "--redis-sentinel-master-name", "--redis-sentinels",
                     "--sentry-environment", "--sentry-traces-sample-rate", "--sentry-profiles-sample-rate",
                     "--conexxus-api-url", "--conexxus-api-key", "--conexxus-timeout-seconds"):  # fmt: skip
            assert flag in result.output

    def test_redis_host_and_sentinel_exclude_each_other(self, tmp_path: Path) -> None:
        output = tmp_path / ".env"
        result = invoke(["setup-env", "--non-interactive", "--output", str(output), "--redis-host", "r",
                         "--redis-sentinel", "--redis-sentinel-master-name", "m",
                         "--redis-sentinels", "s:1"])  # fmt: skip
        assert result.exit_code == 1
        assert "exclude each other" in result.output
        assert not output.exists()

    async def test_sentinel_connection_test_finds_the_master(self, tmp_path: Path) -> None:
        if REDIS_SERVER is None:
            service_missing("redis-server", FileNotFoundError("redis-server is not on PATH"))
        servers = Servers(tmp_path)
        try:
            master = await servers.redis()
            sentinel = await servers.sentinel(master.port, quorum=1)
            args = ["setup-env", "--non-interactive", "--database-url", f"sqlite:///{tmp_path / 'pos.db'}",
                    "--redis-sentinel", "--redis-sentinels", f"127.0.0.1:{sentinel.port}"]  # fmt: skip
            right = await asyncio.to_thread(
                invoke, [*args, "--output", str(tmp_path / "right.env"), "--redis-sentinel-master-name", MASTER_NAME]
            )
            wrong = await asyncio.to_thread(
                invoke, [*args, "--output", str(tmp_path / "wrong.env"), "--redis-sentinel-master-name", "no-such"]
            )
        finally:
            await servers.stop_all()
        assert right.exit_code == 0, right.output
        assert "Redis through Sentinel connection OK" in right.output
        assert load_settings(tmp_path / "right.env").redis_sentinel_master_name == MASTER_NAME
        # Redis is optional: a failed test is a warning, and the file is still written.
        assert wrong.exit_code == 0, wrong.output
        assert "Redis through Sentinel not reachable now" in wrong.output
        assert (tmp_path / "wrong.env").exists()

    async def test_redis_connection_test_uses_the_password(self, tmp_path: Path) -> None:
        if REDIS_SERVER is None:
            service_missing("redis-server", FileNotFoundError("redis-server is not on PATH"))
        servers = Servers(tmp_path)
        try:
            redis = await servers.redis()
            client = direct_client(redis.port)
            await client.config_set("requirepass", "Right-Pass-5521")
            await client.aclose()
            args = ["setup-env", "--non-interactive", "--database-url", f"sqlite:///{tmp_path / 'pos.db'}",
                    "--redis-host", "127.0.0.1", "--redis-port", str(redis.port)]  # fmt: skip
            right = await asyncio.to_thread(
                invoke, [*args, "--output", str(tmp_path / "right.env"), "--redis-password", "Right-Pass-5521"]
            )
            wrong = await asyncio.to_thread(
                invoke, [*args, "--output", str(tmp_path / "wrong.env"), "--redis-password", "Wrong-Pass-9173"]
            )
        finally:
            await servers.stop_all()
        assert right.exit_code == 0, right.output
        assert "Redis connection OK" in right.output
        assert "Right-Pass-5521" not in right.output
        assert load_settings(tmp_path / "right.env").redis_password is not None
        # Redis is optional: a failed test is a warning, and the file is still written.
        assert wrong.exit_code == 0, wrong.output
        assert "Redis not reachable now" in wrong.output
        assert "Wrong-Pass-9173" not in wrong.output

    def test_awkward_values_are_written_so_they_read_back_exactly(self, tmp_path: Path) -> None:
        output = tmp_path / ".env"
        db = tmp_path / "data dir #1" / "pos's $db.sqlite"
        db.parent.mkdir()
        password = 'ab #cd "q" it\'s \\back\\ $dollar ${HOME} é✓'
        result = invoke(["setup-env", "--non-interactive", "--output", str(output), "--database-url", f"sqlite:///{db}",
                         "--redis-host", "127.0.0.1", "--redis-port", "1", "--redis-password", password,
                         "--store-timezone", "America/Chicago"],
                        {"HOME": "/not/the/password"})  # fmt: skip
        assert result.exit_code == 0, result.output
        assert password not in result.output
        assert db.exists()  # the connection test used the same path the file holds
        settings = load_settings(output)
        assert settings.redis_password is not None
        assert settings.redis_password.get_secret_value() == password
        assert settings.redis_port == 1
        assert settings.database_url.get_secret_value() == f"sqlite+aiosqlite:///{db}"
        assert settings.store_timezone == "America/Chicago"

    def test_non_interactive_development_defaults(self, tmp_path: Path) -> None:
        output = tmp_path / ".env"
        result = invoke(["setup-env", "--non-interactive", "--output", str(output)],
                        {"POSOMNI_DATA_DIR": str(tmp_path / "var")})  # fmt: skip
        assert result.exit_code == 0, result.output
        settings, problems = check(read_environment(output))
        assert settings is not None, problems
        assert settings.env.value == "development"

    def test_refuses_to_overwrite_without_force_and_keeps_a_backup_with_force(self, tmp_path: Path) -> None:
        output = tmp_path / ".env"
        output.write_text("POS_ENV=development\n")
        refused = invoke(["setup-env", "--non-interactive", "--output", str(output)])
        assert refused.exit_code == 1
        assert output.read_text() == "POS_ENV=development\n"
        forced = invoke(["setup-env", "--non-interactive", "--force", "--no-check-connections", "--output",
                         str(output)])  # fmt: skip
        assert forced.exit_code == 0, forced.output
        backups = list(tmp_path.glob(".env.bak.*"))
        assert len(backups) == 1
        assert backups[0].read_text() == "POS_ENV=development\n"

    def test_production_requires_a_database_url(self, tmp_path: Path) -> None:
        output = tmp_path / ".env"
        result = invoke(["setup-env", "--non-interactive", "--env", "production", "--output", str(output),
                         "--allowed-origins", "https://pos.example.com"])  # fmt: skip
        assert result.exit_code == 1
        assert "DATABASE_URL" in result.output
        assert not output.exists()

    def test_unreachable_database_is_refused(self, tmp_path: Path) -> None:
        output = tmp_path / ".env"
        result = invoke(["setup-env", "--non-interactive", "--env", "production", "--output", str(output),
                         "--allowed-origins", "https://pos.example.com",
                         "--database-url", "postgresql://pos:pw@127.0.0.1:1/pos"])  # fmt: skip
        assert result.exit_code == 1
        assert "Database connection failed" in result.output
        assert not output.exists()


def _counts(url: str) -> dict[str, int]:
    async def count() -> dict[str, int]:
        database = Database(url)
        try:
            async with database.sessionmaker() as session:
                result = {}
                for model in (Store, Register, User, Product, Barcode, StockLevel, StockMovement):
                    result[model.__tablename__] = await session.scalar(select(func.count()).select_from(model))
                return result
        finally:
            await database.dispose()

    return asyncio.run(count())


def test_db_setup_twice_is_idempotent(db_url: str, tmp_path: Path) -> None:
    env = base_env(DATABASE_URL=db_url, POS_ENV="development", POSOMNI_DATA_DIR=str(tmp_path))
    first = invoke(["db", "setup", "--env-file", str(tmp_path / "none")], env)
    assert first.exit_code == 0, first.output
    assert "demo-cashier-pass-2026" in first.output
    after_first = _counts(db_url)
    assert after_first["stores"] == 1
    assert after_first["products"] >= 60
    assert after_first["users"] == 4
    second = invoke(["db", "setup", "--env-file", str(tmp_path / "none")], env)
    assert second.exit_code == 0, second.output
    assert "nothing new" in second.output
    assert _counts(db_url) == after_first


def test_production_seed_creates_no_users(pg_url: str, tmp_path: Path) -> None:
    env = base_env(
        DATABASE_URL=pg_url, POS_ENV="production", ALLOWED_ORIGINS="https://pos.example.com",
        JWT_SECRET="Zq8-vX2k#Lm4Pr7tWy9aBc1dEf3gHj5K", PASSWORD_HASH_COST="12",
    )  # fmt: skip
    result = invoke(["db", "setup", "--env-file", str(tmp_path / "none")], env)
    assert result.exit_code == 0, result.output
    assert "demo-" not in result.output
    counts = _counts(pg_url)
    assert counts["users"] == 0
    assert counts["stores"] == 0


def test_db_status_reports_pending_migrations(pg_empty_url: str, tmp_path: Path) -> None:
    env = base_env(DATABASE_URL=pg_empty_url)
    pending = invoke(["db", "status", "--env-file", str(tmp_path / "none")], env)
    assert pending.exit_code == 1
    assert "pending" in pending.output
    assert invoke(["db", "migrate", "--env-file", str(tmp_path / "none")], env).exit_code == 0
    current = invoke(["db", "status", "--env-file", str(tmp_path / "none")], env)
    assert current.exit_code == 0
    assert "Up to date" in current.output


class TestHealthCommand:
    @pytest.mark.slow
    def test_healthy_service_exits_0_and_the_temporary_server_stops(self, db_url: str, tmp_path: Path) -> None:
        env_file = tmp_path / ".env"
        env_file.write_text(
            "\n".join(f"{k}={v}" for k, v in base_env(DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path)).items())
        )
        result = invoke(["health", "--env-file", str(env_file)])
        assert result.exit_code == 0, result.output
        assert re.search(r"database\s+│\s+ok", result.output)
        found = re.search(r"http://127\.0\.0\.1:(\d+) \(temporary\)", result.output)
        assert found, result.output
        assert not _listening(int(found.group(1)))

    @pytest.mark.slow
    def test_broken_database_exits_1(self, tmp_path: Path) -> None:
        env_file = tmp_path / ".env"
        env = base_env(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none", POSOMNI_DATA_DIR=str(tmp_path))
        env_file.write_text("\n".join(f"{k}={v}" for k, v in env.items()))
        result = invoke(["health", "--env-file", str(env_file)])
        assert result.exit_code == 1
        assert "down" in result.output

    def test_invalid_configuration_exits_1_without_starting(self, tmp_path: Path) -> None:
        result = invoke(["health", "--env-file", str(tmp_path / "none")], {"POS_ENV": "production"})
        assert result.exit_code == 1
        assert "AUDIT_LOG_ENCRYPTION_KEY" in result.output

    def test_url_of_a_service_that_is_not_running_exits_1(self) -> None:
        result = invoke(["health", "--url", "http://127.0.0.1:1"])
        assert result.exit_code == 1


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
