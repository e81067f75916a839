"""Configuration from the environment and `.env`, validated all at once.

`RawEnvironment` (pydantic-settings) only reads: every variable arrives as an optional string. `check()` then
applies the rules of every variable and collects every problem, each naming its variable and how to fix it,
so an operator sees the whole list in one go instead of fixing one error per restart.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from posomni.kit.time import is_valid_timezone


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


# Values people paste from examples; refused as a production JWT secret.
PLACEHOLDER_SECRETS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "your-secret-key",
        "your_jwt_secret",
        "jwt-secret",
        "supersecret",
        "please-change-this-secret-in-production",
        "<32+ character secure secret>",
    }
)

# A network the metrics may be scraped from (METRICS_ALLOWED_NETWORKS).
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Outside production, a Prometheus on the same machine may scrape without a token. Not in production: behind a
# reverse proxy on the same host every outside request could look local.
LOOPBACK_NETWORKS = "127.0.0.0/8,::1/128"

DEFAULT_DATA_DIR = "var"
DEFAULT_ENV_FILE = ".env"


@dataclass(frozen=True)
class Problem:
    variable: str
    message: str
    fix: str
    severity: Literal["error", "warning"] = "error"

    def as_dict(self) -> dict[str, str]:
        return {
            "variable": self.variable,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class SentinelAddress:
    host: str
    port: int


@dataclass(frozen=True)
class Settings:
    """The validated configuration. Built only by `check()`; secrets stay `SecretStr`."""

    env: Environment
    audit_log_encryption_key: SecretStr
    old_audit_log_encryption_key: SecretStr | None
    allowed_origins: tuple[str, ...]
    database_url: SecretStr
    jwt_secret: SecretStr
    jwt_secret_generated: bool
    stripe_secret_key: SecretStr | None
    stripe_api_base: str | None
    stripe_webhook_secret: SecretStr | None
    # How often the worker reconciles card payments with Stripe (0: never), and the age after which an
    # authorisation nobody captured is voided as an orphan.
    reconcile_interval_minutes: int
    reconcile_orphan_age_minutes: int
    redis_host: str | None
    redis_port: int
    redis_password: SecretStr | None
    redis_db: int
    redis_namespace: str
    redis_sentinel_enabled: bool
    redis_sentinel_master_name: str | None
    redis_sentinels: tuple[SentinelAddress, ...]
    sentry_dsn: SecretStr | None
    sentry_environment: str
    sentry_traces_sample_rate: float
    sentry_profiles_sample_rate: float
    conexxus_api_url: str | None
    conexxus_api_key: SecretStr | None
    # Each request to the back office: read, write and pool timeout (connecting gets at most 2 s of it).
    conexxus_timeout_seconds: float
    # Failed deliveries (5xx) of one message before it is parked as dead; outages never count.
    outbox_max_attempts: int
    # /health turns degraded when the oldest message waiting for the back office is older than this.
    outbox_max_age_minutes: int
    store_timezone: str
    data_dir: Path
    backup_dir: Path
    backup_max_age_hours: float
    backup_keep_daily: int
    backup_keep_weekly: int
    # Store-local time of day for the worker's daily backup; None when the worker does not take backups.
    backup_schedule: time | None
    # The https address registers and browsers use (TLS ends at the reverse proxy); preflight requires it.
    public_url: str | None
    log_level: str
    log_format: Literal["json", "console"]
    password_hash_cost: int
    audit_retention_years: int
    rate_limit_enabled: bool
    rate_limit_per_client: str
    card_processor: Literal["stripe", "simulated", "none"]
    metrics_token: SecretStr | None
    metrics_allowed_networks: tuple[Network, ...]
    slow_query_ms: int
    slow_request_ms: int
    warnings: tuple[Problem, ...] = field(default=())

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def database_kind(self) -> Literal["postgresql", "sqlite"]:
        return "sqlite" if self.database_url.get_secret_value().startswith("sqlite") else "postgresql"

    @property
    def database_url_display(self) -> str:
        return mask_url(self.database_url.get_secret_value())

    @property
    def redis_configured(self) -> bool:
        return self.redis_sentinel_enabled or self.redis_host is not None


class RawEnvironment(BaseSettings):
    """Every variable as the environment (or `.env`) spells it, unvalidated."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", env_file_encoding="utf-8")

    pos_env: str | None = None
    audit_log_encryption_key: SecretStr | None = None
    old_audit_log_encryption_key: SecretStr | None = None
    allowed_origins: str | None = None
    database_url: SecretStr | None = None
    jwt_secret: SecretStr | None = None
    stripe_secret_key: SecretStr | None = None
    stripe_api_base: str | None = None
    stripe_webhook_secret: SecretStr | None = None
    reconcile_interval_minutes: str | None = None
    reconcile_orphan_age_minutes: str | None = None
    redis_host: str | None = None
    redis_port: str | None = None
    redis_password: SecretStr | None = None
    redis_db: str | None = None
    redis_namespace: str | None = None
    redis_sentinel_enabled: str | None = None
    redis_sentinel_master_name: str | None = None
    redis_sentinels: str | None = None
    sentry_dsn: SecretStr | None = None
    sentry_environment: str | None = None
    sentry_traces_sample_rate: str | None = None
    sentry_profiles_sample_rate: str | None = None
    conexxus_api_url: str | None = None
    conexxus_api_key: SecretStr | None = None
    conexxus_timeout_seconds: str | None = None
    outbox_max_attempts: str | None = None
    outbox_max_age_minutes: str | None = None
    store_timezone: str | None = None
    posomni_data_dir: str | None = None
    backup_dir: str | None = None
    backup_max_age_hours: str | None = None
    backup_keep_daily: str | None = None
    backup_keep_weekly: str | None = None
    backup_schedule: str | None = None
    public_url: str | None = None
    log_level: str | None = None
    log_format: str | None = None
    password_hash_cost: str | None = None
    audit_retention_years: str | None = None
    rate_limit_enabled: str | None = None
    rate_limit_per_client: str | None = None
    card_processor: str | None = None
    metrics_token: SecretStr | None = None
    metrics_allowed_networks: str | None = None
    slow_query_ms: str | None = None
    slow_request_ms: str | None = None


class ConfigurationError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = [f"{p.variable}: {p.message} (fix: {p.fix})" for p in problems if p.severity == "error"]
        super().__init__("invalid configuration:\n  " + "\n  ".join(lines))


def read_environment(env_file: Path | None = Path(DEFAULT_ENV_FILE), **overrides: Any) -> RawEnvironment:
    """Read the process environment, then `env_file` for what the environment does not set."""
    # pydantic-settings gives the process environment priority over the file, as operators expect.
    file = env_file if env_file is not None and env_file.is_file() else None
    return RawEnvironment(_env_file=file, **overrides)


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _blank(value: str | SecretStr | None) -> bool:
    if value is None:
        return True
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    return not text.strip()


def _secret(value: SecretStr | None) -> SecretStr | None:
    return None if _blank(value) else SecretStr(value.get_secret_value().strip())  # type: ignore[union-attr]


def _text(value: str | None) -> str | None:
    return None if value is None or not value.strip() else value.strip()


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def error(self, variable: str, message: str, fix: str) -> None:
        self.problems.append(Problem(variable, message, fix, "error"))

    def warn(self, variable: str, message: str, fix: str) -> None:
        self.problems.append(Problem(variable, message, fix, "warning"))

    def boolean(self, variable: str, value: str | None, default: bool) -> bool:
        if _blank(value):
            return default
        assert value is not None
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        self.error(variable, f"{value!r} is not a boolean", "use true or false")
        return default

    def integer(self, variable: str, value: str | None, default: int, low: int, high: int) -> int:
        if _blank(value):
            return default
        assert value is not None
        try:
            number = int(value.strip())
        except ValueError:
            self.error(variable, f"{value!r} is not a whole number", f"use a number from {low} to {high}")
            return default
        if not low <= number <= high:
            self.error(variable, f"{number} is out of range", f"use a number from {low} to {high}")
            return default
        return number

    def number(self, variable: str, value: str | None, default: float, low: float, high: float) -> float:
        if _blank(value):
            return default
        assert value is not None
        try:
            number = float(value.strip())
        except ValueError:
            self.error(variable, f"{value!r} is not a number", f"use a number from {low:g} to {high:g}")
            return default
        if not low <= number <= high:  # NaN fails this too
            self.error(variable, f"{value.strip()} is out of range", f"use a number from {low:g} to {high:g}")
            return default
        return number

    def fraction(self, variable: str, value: str | None, default: float) -> float:
        if _blank(value):
            return default
        assert value is not None
        try:
            number = float(value.strip())
        except ValueError:
            self.error(variable, f"{value!r} is not a number", "use a number from 0 to 1, e.g. 0.1")
            return default
        if not 0.0 <= number <= 1.0:
            self.error(variable, f"{number} is outside [0, 1]", "use a number from 0 to 1, e.g. 0.1")
            return default
        return number

    def encryption_key(self, variable: str, value: SecretStr | None) -> None:
        assert value is not None
        problem = encryption_key_problem(value.get_secret_value())
        if problem:
            self.error(variable, problem, "generate one with `posomni keygen` (base64 of 32 random bytes)")


def encryption_key_problem(key: str) -> str | None:
    try:
        raw = base64.b64decode(key.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64"
    if len(raw) != 32:
        return f"decodes to {len(raw)} bytes; AES-256 needs exactly 32"
    return None


_ORIGIN = re.compile(r"^https?://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")


def _origins(checker: _Checker, value: str | None, env: Environment) -> tuple[str, ...]:
    if _blank(value):
        checker.error(
            "ALLOWED_ORIGINS",
            "is required",
            "list the register's web origins, e.g. https://pos.example.com,http://127.0.0.1:8000",
        )
        return ()
    assert value is not None
    origins = tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
    for origin in origins:
        if origin == "*":
            if env is Environment.PRODUCTION:
                checker.error("ALLOWED_ORIGINS", "'*' is refused in production", "list the exact origins")
            else:
                checker.warn("ALLOWED_ORIGINS", "'*' allows any web page to call the API", "list exact origins")
        elif not _ORIGIN.fullmatch(origin):
            checker.error("ALLOWED_ORIGINS", f"{origin!r} is not an origin", "use scheme://host[:port] with no path")
    return origins


def _backup_schedule(checker: _Checker, value: str | None) -> time | None:
    """`HH:MM` (or an hour, `2`) in the store's timezone; blank or `off` leaves backups to cron or an operator."""
    text = (_text(value) or "off").lower()
    if text in {"off", "none", "false", "no"}:
        return None
    match = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?", text)
    if match is None or int(match.group(1)) > 23 or int(match.group(2) or 0) > 59:
        checker.error("BACKUP_SCHEDULE", f"{text!r} is not a time of day", "use HH:MM (store time), e.g. 02:30, or off")
        return None
    return time(int(match.group(1)), int(match.group(2) or 0))


def _public_url(checker: _Checker, value: str | None, env: Environment) -> str | None:
    url = _text(value)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        checker.error("PUBLIC_URL", f"{url!r} is not a URL", "use the address staff use, e.g. https://pos.example.com")
        return None
    if env is Environment.PRODUCTION and parts.scheme != "https":
        checker.warn("PUBLIC_URL", "is not https in production", "put a TLS reverse proxy in front (docs/deploy.md)")
    return url.rstrip("/")


def normalise_database_url(url: str) -> str:
    """Accept the URL forms people write and choose the async driver: asyncpg or aiosqlite."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("is not a URL")
    scheme = scheme.lower()
    if scheme in {"postgresql", "postgres", "postgresql+asyncpg"}:
        parts = urlsplit("postgresql+asyncpg://" + rest)
        # libpq's sslmode is spelled ssl for asyncpg.
        query = [("ssl", v) if k == "sslmode" else (k, v) for k, v in parse_qsl(parts.query)]
        return urlunsplit(parts._replace(query=urlencode(query)))
    if scheme in {"sqlite", "sqlite+aiosqlite"}:
        return "sqlite+aiosqlite://" + rest
    raise ValueError(f"scheme {scheme!r} is not supported")


def _database_url(checker: _Checker, value: SecretStr | None, env: Environment, data_dir: Path) -> SecretStr:
    if _blank(value):
        if env is Environment.PRODUCTION:
            checker.error(
                "DATABASE_URL",
                "is required in production",
                "set postgresql://user:password@host:5432/posomni",
            )
        return SecretStr(f"sqlite+aiosqlite:///{data_dir / 'posomni.db'}")
    assert value is not None
    raw = value.get_secret_value().strip()
    try:
        url = normalise_database_url(raw)
    except ValueError as exc:
        checker.error("DATABASE_URL", f"{exc}", "use postgresql://user:password@host:5432/db or sqlite:///path")
        return SecretStr("")
    if env is Environment.PRODUCTION and url.startswith("sqlite"):
        checker.error("DATABASE_URL", "must be PostgreSQL in production", "set postgresql://…")
    if url.startswith("postgresql") and not urlsplit(url).hostname and "host=" not in url:
        checker.error("DATABASE_URL", "has no host", "use postgresql://user:password@host:5432/db")
    return SecretStr(url)


def _jwt_secret(checker: _Checker, value: SecretStr | None, env: Environment) -> tuple[SecretStr, bool]:
    if _blank(value):
        if env is Environment.PRODUCTION:
            checker.error(
                "JWT_SECRET",
                "is required in production",
                "generate one with `posomni keygen --jwt` (64+ chars)",
            )
            return SecretStr(""), False
        return SecretStr(secrets.token_urlsafe(48)), True
    assert value is not None
    secret = value.get_secret_value().strip()
    if env is Environment.PRODUCTION:
        if len(secret) < 32:
            checker.error("JWT_SECRET", f"is {len(secret)} characters; at least 32 are required", "generate one")
        if secret.lower() in PLACEHOLDER_SECRETS or len(set(secret)) < 8:
            checker.error("JWT_SECRET", "is a placeholder or trivially guessable", "generate a random secret")
    return SecretStr(secret), False


_STRIPE_KEY = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9_]{8,}$")


def _stripe(checker: _Checker, raw: RawEnvironment, env: Environment) -> tuple[SecretStr | None, str | None]:
    key = _secret(raw.stripe_secret_key)
    if key is None:
        checker.warn("STRIPE_SECRET_KEY", "is not set: card payments disabled", "set sk_live_… (or sk_test_…)")
    elif not _STRIPE_KEY.fullmatch(key.get_secret_value()):
        checker.error("STRIPE_SECRET_KEY", "does not look like a Stripe secret key", "use sk_test_…, sk_live_… or rk_…")
    elif env is Environment.PRODUCTION and "_test_" in key.get_secret_value():
        checker.warn("STRIPE_SECRET_KEY", "is a test-mode key in production", "use the live key (sk_live_…)")
    base = _text(raw.stripe_api_base)
    if base is not None and not re.fullmatch(r"https?://[^\s/]+(/.*)?", base):
        checker.error("STRIPE_API_BASE", f"{base!r} is not a URL", "use e.g. https://api.stripe.com")
    return key, base.rstrip("/") if base else None


def _reconciliation(checker: _Checker, raw: RawEnvironment, env: Environment, card_processor: str) -> dict[str, Any]:
    interval = checker.integer("RECONCILE_INTERVAL_MINUTES", raw.reconcile_interval_minutes, 15, 0, 1440)
    # Not younger than 10 minutes: a sale still at the register may hold a fresh authorisation.
    age = checker.integer("RECONCILE_ORPHAN_AGE_MINUTES", raw.reconcile_orphan_age_minutes, 60, 10, 10080)
    if interval == 0 and card_processor == "stripe" and env is Environment.PRODUCTION:
        checker.warn(
            "RECONCILE_INTERVAL_MINUTES",
            "is 0: the worker never voids orphan authorisations",
            "use e.g. 15, or run `posomni payments reconcile` from cron",
        )
    return {"reconcile_interval_minutes": interval, "reconcile_orphan_age_minutes": age}


# The worker gives one delivery at most 45 s (three quarters of its 60-s lease); the client tries up to 3
# times, each connect (≤ 2 s) plus the timeout, with up to 5 s between tries: 3 × (2 + 9) + 2 × 5 = 43 s fits.
_DELIVERY_BOUND_S = 45.0
_TIMEOUT_FITS_S = 9.0


def _backoffice(checker: _Checker, raw: RawEnvironment) -> dict[str, Any]:
    url = _text(raw.conexxus_api_url)
    key = _secret(raw.conexxus_api_key)
    if url is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        checker.error("CONEXXUS_API_URL", f"{url!r} is not a URL", "use https://backoffice.example.com")
    if url is not None and key is None:
        checker.error("CONEXXUS_API_KEY", "is required with CONEXXUS_API_URL", "set the back office's API key")
    timeout = checker.number("CONEXXUS_TIMEOUT_SECONDS", raw.conexxus_timeout_seconds, 5.0, 0.5, 30.0)
    if timeout > _TIMEOUT_FITS_S:
        checker.warn(
            "CONEXXUS_TIMEOUT_SECONDS",
            f"{timeout:g} s: three tries may outlast the worker's {_DELIVERY_BOUND_S:g}-s bound for one delivery, "
            "which is then cut short and tried again later",
            f"use {_TIMEOUT_FITS_S:g} seconds or less unless the back office is that slow",
        )
    return {
        "conexxus_api_url": url,
        "conexxus_api_key": key,
        "conexxus_timeout_seconds": timeout,
        # Ten tries of a message the back office keeps failing on: with the backoff, over some 4 to 9 minutes.
        "outbox_max_attempts": checker.integer("OUTBOX_MAX_ATTEMPTS", raw.outbox_max_attempts, 10, 1, 1000),
        "outbox_max_age_minutes": checker.integer("OUTBOX_MAX_AGE_MINUTES", raw.outbox_max_age_minutes, 15, 1, 10080),
    }


def _card_processor(
    checker: _Checker, raw: RawEnvironment, env: Environment, has_stripe_key: bool
) -> Literal["stripe", "simulated", "none"]:
    """Stripe when a key is set; otherwise the simulated processor outside production, and none in production."""
    given = (_text(raw.card_processor) or "").lower()
    default = "stripe" if has_stripe_key else ("none" if env is Environment.PRODUCTION else "simulated")
    choice = given or default
    if choice not in {"stripe", "simulated", "none"}:
        checker.error("CARD_PROCESSOR", f"{choice!r} is not a processor", "use stripe, simulated or none")
        return "none"
    if choice == "simulated" and env is Environment.PRODUCTION:
        checker.error(
            "CARD_PROCESSOR", "the simulated processor is for development and tests only", "use stripe or none"
        )
    if choice == "stripe" and not has_stripe_key:
        checker.error("CARD_PROCESSOR", "stripe needs STRIPE_SECRET_KEY", "set the key, or use none")
    return "stripe" if choice == "stripe" else ("simulated" if choice == "simulated" else "none")


def _redis(checker: _Checker, raw: RawEnvironment) -> dict[str, Any]:
    host = _text(raw.redis_host)
    port = checker.integer("REDIS_PORT", raw.redis_port, 6379, 1, 65535)
    db = checker.integer("REDIS_DB", raw.redis_db, 0, 0, 15)
    sentinel = checker.boolean("REDIS_SENTINEL_ENABLED", raw.redis_sentinel_enabled, False)
    master = _text(raw.redis_sentinel_master_name)
    sentinels: list[SentinelAddress] = []
    if sentinel:
        if master is None:
            checker.error("REDIS_SENTINEL_MASTER_NAME", "is required with Sentinel", "set e.g. mymaster")
        if _blank(raw.redis_sentinels):
            checker.error("REDIS_SENTINELS", "is required with Sentinel", "list host:port,host:port")
        else:
            assert raw.redis_sentinels is not None
            for item in raw.redis_sentinels.split(","):
                host_part, _, port_part = item.strip().rpartition(":")
                if not host_part or not port_part.isdigit() or not 0 < int(port_part) < 65536:
                    checker.error("REDIS_SENTINELS", f"{item.strip()!r} is not host:port", "list host:port,…")
                else:
                    sentinels.append(SentinelAddress(host_part.strip("[]"), int(port_part)))
    elif host is None:
        checker.warn(
            "REDIS_HOST",
            "is not set: using the in-memory fallback",
            "set REDIS_HOST for shared cache and limits",
        )
    namespace = _text(raw.redis_namespace) or "posomni"
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", namespace):
        checker.error("REDIS_NAMESPACE", f"{namespace!r} is not a plain name", "use letters, digits, . _ -")
    return {
        "redis_host": host,
        "redis_port": port,
        "redis_db": db,
        "redis_namespace": namespace,
        "redis_password": _secret(raw.redis_password),
        "redis_sentinel_enabled": sentinel,
        "redis_sentinel_master_name": master,
        "redis_sentinels": tuple(sentinels),
    }


def _sentry(checker: _Checker, raw: RawEnvironment, env: Environment) -> dict[str, Any]:
    dsn = _secret(raw.sentry_dsn)
    if dsn is not None:
        parts = urlsplit(dsn.get_secret_value())
        if parts.scheme not in {"http", "https"} or not parts.username or not parts.hostname or not parts.path:
            checker.error("SENTRY_DSN", "does not parse as a DSN", "copy it from Sentry: https://key@host/project")
    elif env is Environment.PRODUCTION:
        checker.warn("SENTRY_DSN", "is not set: error tracking disabled", "set the project's DSN")
    return {
        "sentry_dsn": dsn,
        "sentry_environment": _text(raw.sentry_environment) or env.value,
        "sentry_traces_sample_rate": checker.fraction(
            "SENTRY_TRACES_SAMPLE_RATE",
            raw.sentry_traces_sample_rate,
            0.1 if env is Environment.PRODUCTION else 0,
        ),
        "sentry_profiles_sample_rate": checker.fraction(
            "SENTRY_PROFILES_SAMPLE_RATE", raw.sentry_profiles_sample_rate, 0.0
        ),
    }


def _metrics_networks(checker: _Checker, value: str | None, env: Environment) -> tuple[Network, ...]:
    production = env is Environment.PRODUCTION
    text = _text(value) or ("none" if production else LOOPBACK_NETWORKS)
    if text.lower() == "none":
        return ()
    networks: list[Network] = []
    for item in (part.strip() for part in text.split(",")):
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            checker.error("METRICS_ALLOWED_NETWORKS", f"{item!r} is not an address or network", "use e.g. 10.0.0.0/24")
            continue
        if network.prefixlen == 0:
            message, fix = "allows every address", "list the Prometheus server's address or network"
            (checker.error if production else checker.warn)("METRICS_ALLOWED_NETWORKS", message, fix)
        networks.append(network)
    return tuple(networks)


def _monitoring(checker: _Checker, raw: RawEnvironment, env: Environment) -> dict[str, Any]:
    token = _secret(raw.metrics_token)
    if token is not None:
        value = token.get_secret_value()
        if not re.fullmatch(r"[\x21-\x7e]+", value):
            checker.error("METRICS_TOKEN", "has spaces or characters a header cannot carry", "generate one")
        elif env is Environment.PRODUCTION and (
            len(value) < 32 or value.lower() in PLACEHOLDER_SECRETS or len(set(value)) < 8
        ):
            checker.error("METRICS_TOKEN", "is shorter than 32 characters or guessable", "generate one")
    networks = _metrics_networks(checker, raw.metrics_allowed_networks, env)
    if token is None and not networks and env is Environment.PRODUCTION:
        checker.warn(
            "METRICS_TOKEN",
            "neither METRICS_TOKEN nor METRICS_ALLOWED_NETWORKS is set: every metrics scrape is refused",
            "set METRICS_TOKEN (e.g. `posomni keygen --jwt`) and give it to Prometheus as a bearer token",
        )
    return {
        "metrics_token": token,
        "metrics_allowed_networks": networks,
        "slow_query_ms": checker.integer("SLOW_QUERY_MS", raw.slow_query_ms, 200, 1, 600_000),
        "slow_request_ms": checker.integer("SLOW_REQUEST_MS", raw.slow_request_ms, 1000, 1, 600_000),
    }


def check(raw: RawEnvironment) -> tuple[Settings | None, list[Problem]]:
    """Validate every variable; return the settings (None when there is an error) and every problem."""
    checker = _Checker()
    env_text = (_text(raw.pos_env) or Environment.DEVELOPMENT.value).lower()
    try:
        env = Environment(env_text)
    except ValueError:
        checker.error("POS_ENV", f"{env_text!r} is not an environment", "use development, test or production")
        env = Environment.PRODUCTION  # judge everything else by the strictest rules

    key = _secret(raw.audit_log_encryption_key)
    if key is None:
        checker.error("AUDIT_LOG_ENCRYPTION_KEY", "is required", "generate one with `posomni keygen`")
    else:
        checker.encryption_key("AUDIT_LOG_ENCRYPTION_KEY", key)
    old_key = _secret(raw.old_audit_log_encryption_key)
    if old_key is not None:
        checker.encryption_key("OLD_AUDIT_LOG_ENCRYPTION_KEY", old_key)
        if key is not None and old_key.get_secret_value() == key.get_secret_value():
            checker.error("OLD_AUDIT_LOG_ENCRYPTION_KEY", "equals the current key", "set it to the key being retired")

    data_dir = Path(_text(raw.posomni_data_dir) or DEFAULT_DATA_DIR)
    origins = _origins(checker, raw.allowed_origins, env)
    database_url = _database_url(checker, raw.database_url, env, data_dir)
    jwt_secret, generated = _jwt_secret(checker, raw.jwt_secret, env)
    if generated and env is Environment.DEVELOPMENT:
        checker.warn("JWT_SECRET", "is not set: a development secret is generated", "run `posomni setup-env`")
    stripe_key, stripe_base = _stripe(checker, raw, env)

    timezone = _text(raw.store_timezone) or "America/New_York"
    if not is_valid_timezone(timezone):
        checker.error("STORE_TIMEZONE", f"{timezone!r} is not an IANA timezone", "use e.g. America/New_York")

    backoffice = _backoffice(checker, raw)

    log_level = (_text(raw.log_level) or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        checker.error("LOG_LEVEL", f"{log_level!r} is not a level", "use DEBUG, INFO, WARNING or ERROR")
    log_format = (_text(raw.log_format) or ("json" if env is Environment.PRODUCTION else "console")).lower()
    if log_format not in {"json", "console"}:
        checker.error("LOG_FORMAT", f"{log_format!r} is not a format", "use json or console")

    backup_age = 26.0
    if not _blank(raw.backup_max_age_hours):
        assert raw.backup_max_age_hours is not None
        try:
            backup_age = float(raw.backup_max_age_hours)
            if backup_age <= 0:
                raise ValueError
        except ValueError:
            checker.error("BACKUP_MAX_AGE_HOURS", "must be a positive number of hours", "use e.g. 26")
            backup_age = 26.0

    keep_daily = checker.integer("BACKUP_KEEP_DAILY", raw.backup_keep_daily, 7, 0, 366)
    keep_weekly = checker.integer("BACKUP_KEEP_WEEKLY", raw.backup_keep_weekly, 8, 0, 520)
    if keep_daily == 0 and keep_weekly == 0:
        checker.warn("BACKUP_KEEP_DAILY", "and BACKUP_KEEP_WEEKLY are 0: only the newest backup is kept", "keep some")
    backup_schedule = _backup_schedule(checker, raw.backup_schedule)
    public_url = _public_url(checker, raw.public_url, env)

    hash_cost = checker.integer("PASSWORD_HASH_COST", raw.password_hash_cost, 12, 4, 16)
    if env is Environment.PRODUCTION and hash_cost < 12:
        checker.error("PASSWORD_HASH_COST", f"{hash_cost} is too low for production", "use 12 or more")
    # Florida requires 3 years of records; 7 is the default for encrypted audit and compliance logs.
    retention = checker.integer("AUDIT_RETENTION_YEARS", raw.audit_retention_years, 7, 3, 100)

    rate_limit_enabled = checker.boolean("RATE_LIMIT_ENABLED", raw.rate_limit_enabled, True)
    if not rate_limit_enabled and env is Environment.PRODUCTION:
        checker.warn("RATE_LIMIT_ENABLED", "is off in production", "turn it on: it protects sign-in and the API")
    per_client = _text(raw.rate_limit_per_client) or "3000/minute"
    if not re.fullmatch(r"\d+\s*/\s*(\d+\s*)?(second|minute|hour|day)s?", per_client):
        checker.error("RATE_LIMIT_PER_CLIENT", f"{per_client!r} is not a rate", "use e.g. 3000/minute")

    card_processor = _card_processor(checker, raw, env, stripe_key is not None)
    reconciliation = _reconciliation(checker, raw, env, card_processor)

    redis = _redis(checker, raw)
    sentry = _sentry(checker, raw, env)
    monitoring = _monitoring(checker, raw, env)

    problems = checker.problems
    if any(p.severity == "error" for p in problems):
        return None, problems
    assert key is not None
    settings = Settings(
        env=env,
        audit_log_encryption_key=key,
        old_audit_log_encryption_key=old_key,
        allowed_origins=origins,
        database_url=database_url,
        jwt_secret=jwt_secret,
        jwt_secret_generated=generated,
        stripe_secret_key=stripe_key,
        stripe_api_base=stripe_base,
        stripe_webhook_secret=_secret(raw.stripe_webhook_secret),
        store_timezone=timezone,
        data_dir=data_dir,
        backup_dir=Path(_text(raw.backup_dir) or str(data_dir / "backups")),
        backup_max_age_hours=backup_age,
        backup_keep_daily=keep_daily,
        backup_keep_weekly=keep_weekly,
        backup_schedule=backup_schedule,
        public_url=public_url,
        log_level=log_level,
        log_format="json" if log_format == "json" else "console",
        password_hash_cost=hash_cost,
        audit_retention_years=retention,
        rate_limit_enabled=rate_limit_enabled,
        rate_limit_per_client=per_client,
        card_processor=card_processor,
        warnings=tuple(p for p in problems if p.severity == "warning"),
        **reconciliation,
        **backoffice,
        **redis,
        **sentry,
        **monitoring,
    )
    return settings, problems


def load_settings(env_file: Path | None = Path(DEFAULT_ENV_FILE), **overrides: Any) -> Settings:
    settings, problems = check(read_environment(env_file, **overrides))
    if settings is None:
        raise ConfigurationError(problems)
    return settings


def persist_generated_secret(settings: Settings, env_file: Path) -> bool:
    """In development, keep a generated JWT secret in `.env` so sign-ins survive restarts."""
    if not settings.jwt_secret_generated or settings.env is not Environment.DEVELOPMENT:
        return False
    if not env_file.is_file():
        return False
    secret = settings.jwt_secret.get_secret_value()
    with env_file.open("a", encoding="utf-8") as handle:
        handle.write(f"\n# generated at first start (development only)\nJWT_SECRET={secret}\n")
    return True


def from_mapping(values: Mapping[str, str]) -> RawEnvironment:
    """Exactly these variables, ignoring the process environment and any `.env` (tests, the setup wizard)."""
    given = {k.lower(): v for k, v in values.items()}
    unknown = set(given) - set(RawEnvironment.model_fields)
    if unknown:
        raise KeyError(f"unknown variables: {', '.join(sorted(unknown))}")
    # Explicit arguments outrank the environment, so every field is passed, unset ones as None.
    values_for_all = {name: given.get(name) for name in RawEnvironment.model_fields}
    factory: Any = RawEnvironment
    return cast(RawEnvironment, factory(_env_file=None, **values_for_all))
