"""Every configuration rule, each failing and passing; all problems reported at once; no secret in output."""

from __future__ import annotations

import base64

import pytest

from posomni.config import (
    ConfigurationError,
    Environment,
    Problem,
    Settings,
    check,
    from_mapping,
    load_settings,
    normalise_database_url,
)
from posomni.security.crypto import generate_key
from tests.conftest import base_env

GOOD_PG = "postgresql://pos:s3cret@db.example.com:5432/posomni"
PRODUCTION = {
    "POS_ENV": "production",
    "DATABASE_URL": GOOD_PG,
    "JWT_SECRET": "Zq8-vX2k#Lm4Pr7tWy9aBc1dEf3gHj5K",
    "ALLOWED_ORIGINS": "https://pos.example.com",
    "PASSWORD_HASH_COST": "12",
}


def problems_for(**env: str) -> list[Problem]:
    _, problems = check(from_mapping(base_env(**env)))
    return problems


def errors_for(variable: str, **env: str) -> list[Problem]:
    return [p for p in problems_for(**env) if p.variable == variable and p.severity == "error"]


def warnings_for(variable: str, **env: str) -> list[Problem]:
    return [p for p in problems_for(**env) if p.variable == variable and p.severity == "warning"]


def test_valid_development_configuration_has_no_errors() -> None:
    settings, problems = check(from_mapping(base_env(POS_ENV="development")))
    assert settings is not None
    assert not [p for p in problems if p.severity == "error"]
    assert settings.env is Environment.DEVELOPMENT


def test_pos_env_defaults_to_development_and_refuses_unknown() -> None:
    env = base_env()
    del env["POS_ENV"]
    settings, _ = check(from_mapping(env))
    assert settings is not None
    assert settings.env is Environment.DEVELOPMENT
    assert errors_for("POS_ENV", POS_ENV="staging")


class TestEncryptionKey:
    def test_required_in_every_environment(self) -> None:
        for environment in ("development", "test"):
            env = base_env(POS_ENV=environment)
            del env["AUDIT_LOG_ENCRYPTION_KEY"]
            _, problems = check(from_mapping(env))
            assert any(p.variable == "AUDIT_LOG_ENCRYPTION_KEY" and p.severity == "error" for p in problems)

    @pytest.mark.parametrize(
        "key", ["not-base64!!", base64.b64encode(b"x" * 16).decode(), base64.b64encode(b"x" * 33).decode()]
    )
    def test_must_be_base64_of_exactly_32_bytes(self, key: str) -> None:
        assert errors_for("AUDIT_LOG_ENCRYPTION_KEY", AUDIT_LOG_ENCRYPTION_KEY=key)

    def test_valid_key_passes(self) -> None:
        assert not errors_for("AUDIT_LOG_ENCRYPTION_KEY", AUDIT_LOG_ENCRYPTION_KEY=generate_key())

    def test_old_key_same_format_and_different_from_current(self) -> None:
        assert errors_for("OLD_AUDIT_LOG_ENCRYPTION_KEY", OLD_AUDIT_LOG_ENCRYPTION_KEY="short")
        key = generate_key()
        assert errors_for(
            "OLD_AUDIT_LOG_ENCRYPTION_KEY", AUDIT_LOG_ENCRYPTION_KEY=key, OLD_AUDIT_LOG_ENCRYPTION_KEY=key
        )
        assert not errors_for("OLD_AUDIT_LOG_ENCRYPTION_KEY", OLD_AUDIT_LOG_ENCRYPTION_KEY=generate_key())


class TestAllowedOrigins:
    def test_required(self) -> None:
        env = base_env()
        del env["ALLOWED_ORIGINS"]
        _, problems = check(from_mapping(env))
        assert any(p.variable == "ALLOWED_ORIGINS" and p.severity == "error" for p in problems)

    @pytest.mark.parametrize("origin", ["ftp://pos.example.com", "https://pos.example.com/path", "pos.example.com"])
    def test_each_must_be_an_origin(self, origin: str) -> None:
        assert errors_for("ALLOWED_ORIGINS", ALLOWED_ORIGINS=f"https://ok.example.com,{origin}")

    def test_wildcard_refused_in_production_warned_elsewhere(self) -> None:
        assert errors_for("ALLOWED_ORIGINS", **{**PRODUCTION, "ALLOWED_ORIGINS": "*"})
        assert warnings_for("ALLOWED_ORIGINS", ALLOWED_ORIGINS="*")
        assert not errors_for("ALLOWED_ORIGINS", ALLOWED_ORIGINS="*")

    def test_valid_origins_with_ports_pass(self) -> None:
        settings, _ = check(from_mapping(base_env(ALLOWED_ORIGINS="https://a.example.com, http://127.0.0.1:8000/")))
        assert settings is not None
        assert settings.allowed_origins == ("https://a.example.com", "http://127.0.0.1:8000")


class TestDatabaseUrl:
    def test_required_in_production(self) -> None:
        env = dict(PRODUCTION)
        del env["DATABASE_URL"]
        assert errors_for("DATABASE_URL", **env)

    def test_must_be_postgresql_in_production(self) -> None:
        assert errors_for("DATABASE_URL", **{**PRODUCTION, "DATABASE_URL": "sqlite:///var/x.db"})
        assert not errors_for("DATABASE_URL", **PRODUCTION)

    def test_defaults_to_sqlite_under_data_dir_in_development(self) -> None:
        settings, _ = check(from_mapping(base_env(POSOMNI_DATA_DIR="somewhere")))
        assert settings is not None
        assert settings.database_url.get_secret_value() == "sqlite+aiosqlite:///somewhere/posomni.db"

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("postgresql://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
            ("postgres://u:p@h/d", "postgresql+asyncpg://u:p@h/d"),
            ("postgresql://u@h/d?sslmode=require", "postgresql+asyncpg://u@h/d?ssl=require"),
            ("sqlite:///var/pos.db", "sqlite+aiosqlite:///var/pos.db"),
            ("sqlite+aiosqlite:////abs/pos.db", "sqlite+aiosqlite:////abs/pos.db"),
        ],
    )
    def test_picks_the_async_driver(self, given: str, expected: str) -> None:
        assert normalise_database_url(given) == expected

    @pytest.mark.parametrize("url", ["mysql://u@h/d", "not a url", "postgresql:///nohost"])
    def test_refuses_other_databases_and_garbage(self, url: str) -> None:
        assert errors_for("DATABASE_URL", DATABASE_URL=url)


class TestJwtSecret:
    def test_generated_outside_production(self) -> None:
        env = base_env()
        del env["JWT_SECRET"]
        settings, _ = check(from_mapping(env))
        assert settings is not None
        assert settings.jwt_secret_generated
        assert len(settings.jwt_secret.get_secret_value()) >= 32

    def test_required_in_production(self) -> None:
        env = dict(PRODUCTION)
        del env["JWT_SECRET"]
        assert errors_for("JWT_SECRET", **env)

    @pytest.mark.parametrize(
        "secret", ["short-secret", "changeme", "a" * 40, "please-change-this-secret-in-production"]
    )
    def test_production_refuses_short_or_placeholder(self, secret: str) -> None:
        assert errors_for("JWT_SECRET", **{**PRODUCTION, "JWT_SECRET": secret})

    def test_production_accepts_a_strong_secret(self) -> None:
        assert not errors_for("JWT_SECRET", **PRODUCTION)


class TestStripe:
    def test_absent_is_a_warning_card_payments_disabled(self) -> None:
        warnings = warnings_for("STRIPE_SECRET_KEY")
        assert warnings
        assert "card payments disabled" in warnings[0].message

    @pytest.mark.parametrize("key", ["pk_test_abcdefghijk", "sk_prod_abcdefghijk", "sk_test_", "hello"])
    def test_must_look_like_a_secret_key(self, key: str) -> None:
        assert errors_for("STRIPE_SECRET_KEY", STRIPE_SECRET_KEY=key)

    @pytest.mark.parametrize("key", ["sk_test_51ABCdefGHI", "sk_live_51ABCdefGHI", "rk_live_51ABCdefGHI"])
    def test_accepts_secret_and_restricted_keys(self, key: str) -> None:
        assert not errors_for("STRIPE_SECRET_KEY", STRIPE_SECRET_KEY=key)

    def test_test_key_in_production_is_a_warning(self) -> None:
        env = {**PRODUCTION, "STRIPE_SECRET_KEY": "sk_test_51ABCdefGHI"}
        assert warnings_for("STRIPE_SECRET_KEY", **env)
        assert not errors_for("STRIPE_SECRET_KEY", **env)

    def test_api_base_must_be_a_url(self) -> None:
        assert errors_for("STRIPE_API_BASE", STRIPE_API_BASE="not a url")
        settings, _ = check(from_mapping(base_env(STRIPE_API_BASE="http://127.0.0.1:12111/")))
        assert settings is not None
        assert settings.stripe_api_base == "http://127.0.0.1:12111"


class TestRedis:
    def test_absent_is_a_warning_in_memory_fallback(self) -> None:
        warnings = warnings_for("REDIS_HOST")
        assert warnings
        assert "in-memory fallback" in warnings[0].message

    def test_port_must_be_a_port(self) -> None:
        assert errors_for("REDIS_PORT", REDIS_HOST="localhost", REDIS_PORT="70000")
        assert errors_for("REDIS_PORT", REDIS_HOST="localhost", REDIS_PORT="abc")
        assert not errors_for("REDIS_PORT", REDIS_HOST="localhost", REDIS_PORT="6380")

    def test_sentinel_needs_master_name_and_sentinels(self) -> None:
        problems = problems_for(REDIS_SENTINEL_ENABLED="true")
        names = {p.variable for p in problems if p.severity == "error"}
        assert {"REDIS_SENTINEL_MASTER_NAME", "REDIS_SENTINELS"} <= names

    def test_sentinel_list_must_be_host_port(self) -> None:
        assert errors_for(
            "REDIS_SENTINELS",
            REDIS_SENTINEL_ENABLED="true",
            REDIS_SENTINEL_MASTER_NAME="mymaster",
            REDIS_SENTINELS="s1:26379,s2",
        )

    def test_valid_sentinel_configuration(self) -> None:
        settings, _ = check(
            from_mapping(
                base_env(
                    REDIS_SENTINEL_ENABLED="yes",
                    REDIS_SENTINEL_MASTER_NAME="mymaster",
                    REDIS_SENTINELS="s1:26379, s2:26380,[::1]:26381",
                )
            )
        )
        assert settings is not None
        assert [(s.host, s.port) for s in settings.redis_sentinels] == [("s1", 26379), ("s2", 26380), ("::1", 26381)]

    def test_sentinel_flag_must_be_boolean(self) -> None:
        assert errors_for("REDIS_SENTINEL_ENABLED", REDIS_SENTINEL_ENABLED="maybe")


class TestSentry:
    def test_dsn_must_parse(self) -> None:
        assert errors_for("SENTRY_DSN", SENTRY_DSN="not-a-dsn")
        assert not errors_for("SENTRY_DSN", SENTRY_DSN="https://abc123@o1.ingest.sentry.io/42")

    @pytest.mark.parametrize("variable", ["SENTRY_TRACES_SAMPLE_RATE", "SENTRY_PROFILES_SAMPLE_RATE"])
    def test_rates_in_unit_interval(self, variable: str) -> None:
        assert errors_for(variable, **{variable: "1.5"})
        assert errors_for(variable, **{variable: "-0.1"})
        assert errors_for(variable, **{variable: "lots"})
        assert not errors_for(variable, **{variable: "0.25"})

    def test_absent_in_production_is_a_warning(self) -> None:
        assert warnings_for("SENTRY_DSN", **PRODUCTION)


class TestOtherVariables:
    def test_store_timezone_must_be_iana(self) -> None:
        assert errors_for("STORE_TIMEZONE", STORE_TIMEZONE="Mars/Olympus")
        assert not errors_for("STORE_TIMEZONE", STORE_TIMEZONE="America/Chicago")

    def test_conexxus_url_needs_a_key(self) -> None:
        assert errors_for("CONEXXUS_API_KEY", CONEXXUS_API_URL="https://bo.example.com")
        assert errors_for("CONEXXUS_API_URL", CONEXXUS_API_URL="nope", CONEXXUS_API_KEY="k")
        both = {"CONEXXUS_API_URL": "https://bo.example.com", "CONEXXUS_API_KEY": "k"}
        assert not errors_for("CONEXXUS_API_URL", **both)
        assert not errors_for("CONEXXUS_API_KEY", **both)

    def test_log_settings(self) -> None:
        assert errors_for("LOG_LEVEL", LOG_LEVEL="LOUD")
        assert errors_for("LOG_FORMAT", LOG_FORMAT="xml")
        settings, _ = check(from_mapping(base_env(**PRODUCTION)))
        assert settings is not None
        assert settings.log_format == "json"

    def test_backup_age(self) -> None:
        assert errors_for("BACKUP_MAX_AGE_HOURS", BACKUP_MAX_AGE_HOURS="-3")
        assert not errors_for("BACKUP_MAX_AGE_HOURS", BACKUP_MAX_AGE_HOURS="48")


def test_password_hash_cost_below_12_is_refused_in_production() -> None:
    assert errors_for("PASSWORD_HASH_COST", **{**PRODUCTION, "PASSWORD_HASH_COST": "10"})
    assert not errors_for("PASSWORD_HASH_COST", PASSWORD_HASH_COST="4")
    assert errors_for("PASSWORD_HASH_COST", PASSWORD_HASH_COST="3")


def test_audit_retention_is_never_below_three_years() -> None:
    assert errors_for("AUDIT_RETENTION_YEARS", AUDIT_RETENTION_YEARS="2")
    settings, _ = check(from_mapping(base_env()))
    assert settings is not None
    assert settings.audit_retention_years == 7


def test_rate_limit_settings() -> None:
    assert errors_for("RATE_LIMIT_PER_CLIENT", RATE_LIMIT_PER_CLIENT="lots")
    assert not errors_for("RATE_LIMIT_PER_CLIENT", RATE_LIMIT_PER_CLIENT="100/second")
    assert warnings_for("RATE_LIMIT_ENABLED", **{**PRODUCTION, "RATE_LIMIT_ENABLED": "false"})


class TestReconciliation:
    def test_defaults_every_15_minutes_voiding_after_an_hour(self) -> None:
        settings = make()
        assert (settings.reconcile_interval_minutes, settings.reconcile_orphan_age_minutes) == (15, 60)
        tuned = make(RECONCILE_INTERVAL_MINUTES="0", RECONCILE_ORPHAN_AGE_MINUTES="240")
        assert (tuned.reconcile_interval_minutes, tuned.reconcile_orphan_age_minutes) == (0, 240)

    def test_ranges(self) -> None:
        for bad in ("-1", "1441", "often"):
            assert errors_for("RECONCILE_INTERVAL_MINUTES", RECONCILE_INTERVAL_MINUTES=bad), bad
        # Younger than 10 minutes could void the authorisation of a sale still at the register.
        for bad in ("9", "10081", "soon"):
            assert errors_for("RECONCILE_ORPHAN_AGE_MINUTES", RECONCILE_ORPHAN_AGE_MINUTES=bad), bad
        assert not errors_for("RECONCILE_ORPHAN_AGE_MINUTES", RECONCILE_ORPHAN_AGE_MINUTES="10")

    def test_off_in_production_with_stripe_is_a_warning(self) -> None:
        live = {**PRODUCTION, "STRIPE_SECRET_KEY": "sk_live_51ABCdefGHI"}
        assert warnings_for("RECONCILE_INTERVAL_MINUTES", **live, RECONCILE_INTERVAL_MINUTES="0")
        assert not warnings_for("RECONCILE_INTERVAL_MINUTES", **live)
        assert not warnings_for("RECONCILE_INTERVAL_MINUTES", **PRODUCTION, RECONCILE_INTERVAL_MINUTES="0")


class TestOutboxAndBackOffice:
    def test_defaults(self) -> None:
        settings = make()
        assert (settings.outbox_max_attempts, settings.outbox_max_age_minutes) == (10, 15)
        assert settings.conexxus_timeout_seconds == 5.0
        assert not [p for p in problems_for() if p.variable.startswith(("OUTBOX_", "CONEXXUS_"))]

    def test_good_values_are_taken(self) -> None:
        tuned = make(OUTBOX_MAX_ATTEMPTS="3", OUTBOX_MAX_AGE_MINUTES="60", CONEXXUS_TIMEOUT_SECONDS="2.5")
        assert (tuned.outbox_max_attempts, tuned.outbox_max_age_minutes) == (3, 60)
        assert tuned.conexxus_timeout_seconds == 2.5

    @pytest.mark.parametrize(
        ("variable", "bad"),
        [
            ("OUTBOX_MAX_ATTEMPTS", "0"),
            ("OUTBOX_MAX_ATTEMPTS", "1001"),
            ("OUTBOX_MAX_ATTEMPTS", "ten"),
            ("OUTBOX_MAX_ATTEMPTS", "2.5"),
            ("OUTBOX_MAX_AGE_MINUTES", "0"),
            ("OUTBOX_MAX_AGE_MINUTES", "10081"),
            ("OUTBOX_MAX_AGE_MINUTES", "15m"),
            ("CONEXXUS_TIMEOUT_SECONDS", "0.4"),
            ("CONEXXUS_TIMEOUT_SECONDS", "31"),
            ("CONEXXUS_TIMEOUT_SECONDS", "nan"),
            ("CONEXXUS_TIMEOUT_SECONDS", "-5"),
            ("CONEXXUS_TIMEOUT_SECONDS", "5s"),
        ],
    )
    def test_bad_values_are_refused_naming_the_variable_and_the_fix(self, variable: str, bad: str) -> None:
        errors = errors_for(variable, **{variable: bad})
        assert len(errors) == 1, errors
        assert "use a number from" in errors[0].fix
        with pytest.raises(ConfigurationError, match=variable):
            check_or_raise(**{variable: bad})

    def test_every_bad_value_is_reported_at_once(self) -> None:
        _, problems = check(
            from_mapping(
                base_env(OUTBOX_MAX_ATTEMPTS="0", OUTBOX_MAX_AGE_MINUTES="-1", CONEXXUS_TIMEOUT_SECONDS="forever")
            )
        )
        failing = {p.variable for p in problems if p.severity == "error"}
        assert failing == {"OUTBOX_MAX_ATTEMPTS", "OUTBOX_MAX_AGE_MINUTES", "CONEXXUS_TIMEOUT_SECONDS"}

    def test_a_timeout_three_tries_of_which_outlast_one_delivery_is_a_warning(self) -> None:
        assert not warnings_for("CONEXXUS_TIMEOUT_SECONDS", CONEXXUS_TIMEOUT_SECONDS="9")
        assert warnings_for("CONEXXUS_TIMEOUT_SECONDS", CONEXXUS_TIMEOUT_SECONDS="12")
        assert make(CONEXXUS_TIMEOUT_SECONDS="12").conexxus_timeout_seconds == 12.0


def check_or_raise(**env: str) -> Settings:
    settings, problems = check(from_mapping(base_env(**env)))
    if settings is None:
        raise ConfigurationError(problems)
    return settings


class TestCardProcessor:
    def test_defaults(self) -> None:
        assert make(POS_ENV="development").card_processor == "simulated"
        assert make(**PRODUCTION).card_processor == "none"
        assert make(STRIPE_SECRET_KEY="sk_test_51ABCdefGHI").card_processor == "stripe"

    def test_simulated_processor_is_refused_in_production(self) -> None:
        assert errors_for("CARD_PROCESSOR", **{**PRODUCTION, "CARD_PROCESSOR": "simulated"})

    def test_stripe_needs_a_key_and_names_are_checked(self) -> None:
        assert errors_for("CARD_PROCESSOR", CARD_PROCESSOR="stripe")
        assert errors_for("CARD_PROCESSOR", CARD_PROCESSOR="paypal")


def make(**env: str) -> Settings:
    settings, problems = check(from_mapping(base_env(**env)))
    assert settings is not None, problems
    return settings


def test_every_error_is_reported_at_once() -> None:
    _, problems = check(
        from_mapping(
            {
                "POS_ENV": "production",
                "AUDIT_LOG_ENCRYPTION_KEY": "bad",
                "ALLOWED_ORIGINS": "*",
                "DATABASE_URL": "sqlite:///x.db",
                "JWT_SECRET": "short",
                "STRIPE_SECRET_KEY": "nope",
                "REDIS_PORT": "x",
                "SENTRY_DSN": "bad",
            }
        )
    )
    failing = {p.variable for p in problems if p.severity == "error"}
    assert failing == {
        "AUDIT_LOG_ENCRYPTION_KEY",
        "ALLOWED_ORIGINS",
        "DATABASE_URL",
        "JWT_SECRET",
        "STRIPE_SECRET_KEY",
        "REDIS_PORT",
        "SENTRY_DSN",
    }
    assert all(p.fix for p in problems)


def test_secrets_never_appear_in_errors_or_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_key()
    secret_values = {
        "JWT_SECRET": "Zq8-vX2k#Lm4Pr7tWy9aBc1dEf3gHj5K-very-secret",
        "DATABASE_URL": "postgresql://pos:Sup3rS3cretPw@db.example.com/pos",
        "STRIPE_SECRET_KEY": "sk_live_TopSecretValue123",
        "REDIS_PASSWORD": "RedisPassw0rdValue",
        "SENTRY_DSN": "https://SentryKeyValue@o1.ingest.sentry.io/42",
    }
    env = base_env(AUDIT_LOG_ENCRYPTION_KEY=key, REDIS_HOST="localhost", **secret_values)
    settings, _ = check(from_mapping(env))
    assert settings is not None
    text = repr(settings) + str(settings) + settings.database_url_display
    for value in [key, "Sup3rS3cretPw", "TopSecretValue123", "RedisPassw0rdValue", "SentryKeyValue", "very-secret"]:
        assert value not in text
    # And in the error a broken configuration raises.
    for name, value in {**env, "ALLOWED_ORIGINS": "", "POS_ENV": "production"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env_file=None)
    for value in [key, "Sup3rS3cretPw", "TopSecretValue123", "RedisPassw0rdValue", "SentryKeyValue"]:
        assert value not in str(caught.value)


class TestBackupSettings:
    def test_retention_defaults_and_ranges(self) -> None:
        settings = make()
        assert (settings.backup_keep_daily, settings.backup_keep_weekly) == (7, 8)
        assert errors_for("BACKUP_KEEP_DAILY", BACKUP_KEEP_DAILY="-1")
        assert errors_for("BACKUP_KEEP_WEEKLY", BACKUP_KEEP_WEEKLY="many")
        assert not errors_for("BACKUP_KEEP_DAILY", BACKUP_KEEP_DAILY="14")
        assert warnings_for("BACKUP_KEEP_DAILY", BACKUP_KEEP_DAILY="0", BACKUP_KEEP_WEEKLY="0")

    def test_schedule_is_off_by_default_and_a_time_of_day_otherwise(self) -> None:
        assert make().backup_schedule is None
        assert make(BACKUP_SCHEDULE="off").backup_schedule is None
        assert str(make(BACKUP_SCHEDULE="02:30").backup_schedule) == "02:30:00"
        assert str(make(BACKUP_SCHEDULE="3").backup_schedule) == "03:00:00"
        for bad in ("25", "2:75", "nightly"):
            assert errors_for("BACKUP_SCHEDULE", BACKUP_SCHEDULE=bad), bad


class TestPublicUrl:
    def test_optional_and_must_be_a_url(self) -> None:
        assert make().public_url is None
        assert errors_for("PUBLIC_URL", PUBLIC_URL="pos.example.com")
        assert make(PUBLIC_URL="https://pos.example.com/").public_url == "https://pos.example.com"

    def test_plain_http_in_production_is_a_warning(self) -> None:
        assert warnings_for("PUBLIC_URL", **{**PRODUCTION, "PUBLIC_URL": "http://pos.example.com"})
        assert not warnings_for("PUBLIC_URL", **{**PRODUCTION, "PUBLIC_URL": "https://pos.example.com"})


class TestMonitoring:
    def test_loopback_may_scrape_outside_production_and_nothing_in_production(self) -> None:
        assert [str(n) for n in make().metrics_allowed_networks] == ["127.0.0.0/8", "::1/128"]
        assert make(METRICS_ALLOWED_NETWORKS="none").metrics_allowed_networks == ()
        settings, _ = check(from_mapping(base_env(**PRODUCTION)))
        assert settings is not None
        assert settings.metrics_allowed_networks == ()
        assert settings.metrics_token is None
        assert warnings_for("METRICS_TOKEN", **PRODUCTION)

    def test_networks_are_cidrs_or_addresses(self) -> None:
        networks = make(METRICS_ALLOWED_NETWORKS="10.0.0.0/24, 192.168.1.7, 2001:db8::/32").metrics_allowed_networks
        assert [str(n) for n in networks] == ["10.0.0.0/24", "192.168.1.7/32", "2001:db8::/32"]
        assert errors_for("METRICS_ALLOWED_NETWORKS", METRICS_ALLOWED_NETWORKS="10.0.0.0/33")
        assert errors_for("METRICS_ALLOWED_NETWORKS", METRICS_ALLOWED_NETWORKS="prometheus.local")

    def test_everyone_is_refused_in_production_and_a_warning_elsewhere(self) -> None:
        assert errors_for("METRICS_ALLOWED_NETWORKS", **{**PRODUCTION, "METRICS_ALLOWED_NETWORKS": "0.0.0.0/0"})
        assert warnings_for("METRICS_ALLOWED_NETWORKS", METRICS_ALLOWED_NETWORKS="::/0")

    def test_token_rules(self) -> None:
        strong = "mT4-" + "Zq8vX2kLm4Pr7tWy9aBc1dEf3gHj5K"
        assert errors_for("METRICS_TOKEN", **{**PRODUCTION, "METRICS_TOKEN": "short-token"})
        assert errors_for("METRICS_TOKEN", **{**PRODUCTION, "METRICS_TOKEN": "a" * 40})
        assert errors_for("METRICS_TOKEN", METRICS_TOKEN="two words")
        assert not errors_for("METRICS_TOKEN", **{**PRODUCTION, "METRICS_TOKEN": strong})
        assert not warnings_for("METRICS_TOKEN", **{**PRODUCTION, "METRICS_TOKEN": strong})
        assert not errors_for("METRICS_TOKEN", METRICS_TOKEN="dev-token")  # outside production, any plain token
        settings = make(METRICS_TOKEN=strong)
        assert settings.metrics_token is not None
        assert strong not in repr(settings)

    def test_slow_thresholds(self) -> None:
        assert (make().slow_query_ms, make().slow_request_ms) == (200, 1000)
        tuned = make(SLOW_QUERY_MS="50", SLOW_REQUEST_MS="250")
        assert (tuned.slow_query_ms, tuned.slow_request_ms) == (50, 250)
        for variable in ("SLOW_QUERY_MS", "SLOW_REQUEST_MS"):
            assert errors_for(variable, **{variable: "0"})
            assert errors_for(variable, **{variable: "fast"})
            assert errors_for(variable, **{variable: "600001"})
