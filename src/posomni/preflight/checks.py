"""The launch checklist's pre-deployment list (§14) as checks. Each says pass, warn or fail, in plain words,
with the fix. They only read: nothing here changes the database or the configuration."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from posomni import migrate
from posomni.backups import service as backups
from posomni.config import Environment, Problem, Settings
from posomni.database import Database
from posomni.keys import recovery
from posomni.kit.time import utcnow
from posomni.security.crypto import EncryptionService
from posomni.security.passwords import verify_password
from posomni.seed.demo import DEMO_LOGINS
from posomni.users.models import User

Status = Literal["pass", "warn", "fail"]

DB_TIMEOUT_S: Final = 5.0
# §15: "test recovery quarterly".
DRILL_MAX_AGE: Final = timedelta(days=92)


@dataclass(frozen=True)
class CheckResult:
    name: str
    title: str
    status: Status
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "title": self.title, "status": self.status, "message": self.message, "fix": self.fix}


@dataclass
class Context:
    """What the checks look at: the configuration judged by production rules, and the live database."""

    env: str
    production_problems: list[Problem]
    settings: Settings | None
    database: Database | None = None
    database_ok: bool = False
    crypto: EncryptionService | None = None
    forwarded_allow_ips: str | None = None


def _not_checked(name: str, title: str, reason: str, fix: str) -> CheckResult:
    return CheckResult(name, title, "fail", f"not checked: {reason}", fix)


def configuration(ctx: Context) -> CheckResult:
    title = "Production configuration valid"
    errors = [p for p in ctx.production_problems if p.severity == "error"]
    if ctx.env != Environment.PRODUCTION.value:
        return CheckResult(
            "configuration", title, "fail", f"POS_ENV is {ctx.env!r}: this is not configured as production",
            "set POS_ENV=production (`posomni setup-env --env production`)",
        )  # fmt: skip
    if errors:
        listed = "; ".join(f"{p.variable} {p.message}" for p in errors)
        return CheckResult(
            "configuration", title, "fail", f"{len(errors)} error(s): {listed}",
            "; ".join(f"{p.variable}: {p.fix}" for p in errors) + " — then `posomni validate-env`",
        )  # fmt: skip
    warnings = sum(1 for p in ctx.production_problems if p.severity == "warning")
    extra = f" ({warnings} warning(s), each judged by its own check below)" if warnings else ""
    return CheckResult("configuration", title, "pass", f"valid under production rules{extra}")


async def database(ctx: Context) -> CheckResult:
    title = "Database reachable and migrated"
    if ctx.settings is None:
        return _not_checked("database", title, "the configuration is not valid", "fix the configuration first")
    if ctx.database is None:
        return _not_checked("database", title, "DATABASE_URL is not set", "set DATABASE_URL=postgresql://…")
    try:
        async with asyncio.timeout(DB_TIMEOUT_S):
            await ctx.database.ping()
            state = await migrate.status(ctx.database.engine)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else type(getattr(exc, "orig", None) or exc).__name__
        return CheckResult(
            "database", title, "fail", f"cannot reach {ctx.settings.database_url_display}: {reason}",
            "check DATABASE_URL, that PostgreSQL runs and accepts this host (pg_hba.conf), and the password",
        )  # fmt: skip
    if not state.up_to_date:
        return CheckResult(
            "database", title, "fail", f"at revision {state.current}, head is {state.head}",
            "run `posomni db migrate` (or `posomni db setup` on a new database)",
        )  # fmt: skip
    ctx.database_ok = True
    return CheckResult("database", title, "pass", f"{ctx.database.kind} at head revision {state.head}")


def encryption_key(ctx: Context) -> CheckResult:
    title = "Encryption key present"
    problems = [p for p in ctx.production_problems if p.variable == "AUDIT_LOG_ENCRYPTION_KEY"]
    if problems or ctx.crypto is None:
        message = problems[0].message if problems else "could not be loaded"
        return CheckResult(
            "encryption_key", title, "fail", f"AUDIT_LOG_ENCRYPTION_KEY {message}",
            "generate one with `posomni keygen` and back it up in two places before first use",
        )  # fmt: skip
    key_id = ctx.crypto.current_key_id
    if ctx.settings is not None and ctx.settings.old_audit_log_encryption_key is not None:
        return CheckResult(
            "encryption_key", title, "warn", f"key id {key_id}; a rotation is not finished (old key still set)",
            "finish with `posomni rotate-key`, then remove OLD_AUDIT_LOG_ENCRYPTION_KEY",
        )  # fmt: skip
    return CheckResult("encryption_key", title, "pass", f"key id {key_id}")


def _needs_database(name: str, title: str, ctx: Context) -> CheckResult | None:
    if ctx.database is None or not ctx.database_ok or ctx.crypto is None:
        return _not_checked(name, title, "the database is not reachable and migrated", "fix the database first")
    return None


async def key_backup(ctx: Context) -> CheckResult:
    title = "Encryption key backed up (2+ places)"
    if (blocked := _needs_database("key_backup", title, ctx)) is not None:
        return blocked
    assert ctx.database is not None and ctx.crypto is not None
    key_id = ctx.crypto.current_key_id
    found = await recovery.latest_confirmation(ctx.database, ctx.crypto, key_id)
    fix = 'back the key up in two separate places, then `posomni keys confirm-backup --by NAME --locations "A,B"`'
    if found is None:
        return CheckResult("key_backup", title, "fail", f"no backup of key id {key_id} has been confirmed", fix)
    if len(found.locations) < recovery.MIN_LOCATIONS:
        return CheckResult("key_backup", title, "fail", f"only {len(found.locations)} place recorded", fix)
    return CheckResult(
        "key_backup", title, "pass",
        f"key id {key_id} confirmed by {found.by} on {found.at:%Y-%m-%d} in: {', '.join(found.locations)}",
    )  # fmt: skip


async def key_drill(ctx: Context) -> CheckResult:
    title = "Key recovery tested"
    if (blocked := _needs_database("key_drill", title, ctx)) is not None:
        return blocked
    assert ctx.database is not None and ctx.crypto is not None
    key_id = ctx.crypto.current_key_id
    fix = "take the key from its backup and run `posomni keys drill` (hidden prompt, or --key-file)"
    last = await recovery.latest_drill(ctx.database, key_id)
    if last is None:
        return CheckResult("key_drill", title, "fail", f"no recovery drill for key id {key_id}", fix)
    passed, at = last
    if not passed:
        return CheckResult(
            "key_drill", title, "fail", f"the last drill ({at:%Y-%m-%d}) FAILED: the backed-up key does not "
            "decrypt the data", "find the right key and back it up again; " + fix,
        )  # fmt: skip
    if utcnow() - at > DRILL_MAX_AGE:
        return CheckResult("key_drill", title, "warn", f"last passed on {at:%Y-%m-%d}, over a quarter ago", fix)
    return CheckResult("key_drill", title, "pass", f"passed on {at:%Y-%m-%d} with the key from its backup")


def card_payments(ctx: Context) -> CheckResult:
    title = "Card payments (Stripe live key)"
    settings = ctx.settings
    if settings is None:
        return _not_checked("card_payments", title, "the configuration is not valid", "fix the configuration first")
    key = settings.stripe_secret_key.get_secret_value() if settings.stripe_secret_key else ""
    if settings.card_processor == "stripe":
        if "_test_" in key:
            return CheckResult(
                "card_payments", title, "fail", "CARD_PROCESSOR is stripe with a test-mode key: no real money moves",
                "set STRIPE_SECRET_KEY to the live key (sk_live_… or rk_live_…)",
            )  # fmt: skip
        return CheckResult("card_payments", title, "pass", "Stripe with a live key")
    if settings.card_processor == "simulated":
        return CheckResult(
            "card_payments", title, "fail", "the simulated processor is for development only",
            "set CARD_PROCESSOR=stripe with a live key, or none for cash only",
        )  # fmt: skip
    return CheckResult(
        "card_payments", title, "warn", "no card processor: the registers take cash only",
        "set STRIPE_SECRET_KEY (live) to accept cards",
    )  # fmt: skip


def error_tracking(ctx: Context) -> CheckResult:
    title = "Sentry error tracking"
    if ctx.settings is not None and ctx.settings.sentry_dsn is not None:
        return CheckResult(
            "error_tracking", title, "pass", f"configured (environment {ctx.settings.sentry_environment})"
        )
    return CheckResult(
        "error_tracking", title, "warn", "not configured: errors are only in the logs", "set SENTRY_DSN (recommended)"
    )


async def backup(ctx: Context) -> CheckResult:
    title = "Recent verified backup"
    if (blocked := _needs_database("backup", title, ctx)) is not None:
        return blocked
    assert ctx.database is not None and ctx.settings is not None
    limit = ctx.settings.backup_max_age_hours
    verified = await backups.latest_succeeded(ctx.database, verified=True)
    newest = await backups.latest_succeeded(ctx.database)
    fix = "`posomni backup create`, then `posomni backup verify --latest`; schedule both (BACKUP_SCHEDULE)"
    if verified is None or verified.finished_at is None:
        message = "no backup has passed verification" + (
            f" (backup {newest.id} is not verified)" if newest is not None else " (no backup at all)"
        )
        return CheckResult("backup", title, "fail", message, fix)
    age = (utcnow() - verified.finished_at).total_seconds() / 3600
    if age > limit:
        message = f"the newest verified backup ({verified.id}) is {age:.0f} h old (limit {limit:g} h)"
        return CheckResult("backup", title, "fail", message, fix)
    if newest is not None and newest.verify_error:
        return CheckResult(
            "backup", title, "warn", f"backup {verified.id} verified {age:.1f} h ago, but the newer backup "
            f"{newest.id} FAILED verification: {newest.verify_error[:200]}", "look into the failure; " + fix,
        )  # fmt: skip
    return CheckResult("backup", title, "pass", f"backup {verified.id}, {age:.1f} h old, verified")


def rate_limit(ctx: Context) -> CheckResult:
    title = "Rate limiting on"
    if ctx.settings is None:
        return _not_checked("rate_limit", title, "the configuration is not valid", "fix the configuration first")
    if ctx.settings.rate_limit_enabled:
        return CheckResult("rate_limit", title, "pass", f"{ctx.settings.rate_limit_per_client} per client address")
    return CheckResult(
        "rate_limit", title, "fail", "RATE_LIMIT_ENABLED is off: sign-in and the API are open to brute force",
        "remove RATE_LIMIT_ENABLED=false",
    )  # fmt: skip


def _demo_matches(users: list[tuple[str, str]]) -> list[str]:
    passwords = [login.password for login in DEMO_LOGINS]
    found = []
    for username, password_hash in users:
        try:
            # bcrypt at the account's own cost: bounded by users × 4 hashes, run off the event loop.
            if any(verify_password(password_hash, p) for p in passwords):
                found.append(username)
        except ValueError:  # not a bcrypt hash: that account cannot sign in with a password at all
            continue
    return found


async def demo_passwords(ctx: Context) -> CheckResult:
    title = "No demo passwords"
    if (blocked := _needs_database("demo_passwords", title, ctx)) is not None:
        return blocked
    assert ctx.database is not None
    async with ctx.database.sessionmaker() as session:
        users = [
            (u, h) for u, h in await session.execute(select(User.username, User.password_hash).where(User.is_active))
        ]
    found = await asyncio.to_thread(_demo_matches, users)
    if found:
        return CheckResult(
            "demo_passwords", title, "fail", f"{', '.join(sorted(found))} still use(s) a published demo password",
            "`posomni users reset-password` each (or `posomni users disable`)",
        )  # fmt: skip
    return CheckResult("demo_passwords", title, "pass", f"{len(users)} active account(s) checked")


def _local_host(host: str | None) -> bool:
    if not host:
        return True
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def allowed_origins(ctx: Context) -> CheckResult:
    title = "ALLOWED_ORIGINS not local"
    if ctx.settings is None:
        return _not_checked("allowed_origins", title, "the configuration is not valid", "fix the configuration first")
    origins = ctx.settings.allowed_origins
    local = [o for o in origins if o == "*" or _local_host(urlsplit(o).hostname)]
    fix = "list the production address(es) only, e.g. ALLOWED_ORIGINS=https://pos.example.com"
    if local:
        return CheckResult("allowed_origins", title, "fail", f"local or open origin(s): {', '.join(local)}", fix)
    plain = [o for o in origins if o.startswith("http://")]
    if plain:
        return CheckResult("allowed_origins", title, "warn", f"without TLS: {', '.join(plain)}", fix)
    return CheckResult("allowed_origins", title, "pass", ", ".join(origins))


def tls(ctx: Context) -> CheckResult:
    title = "TLS in front (PUBLIC_URL https)"
    fix = "serve through a TLS reverse proxy (docs/deploy.md) and set PUBLIC_URL=https://your.host"
    url = ctx.settings.public_url if ctx.settings is not None else None
    if url is None:
        return CheckResult(
            "tls", title, "fail", "PUBLIC_URL is not set: nothing says staff reach the app over TLS", fix
        )
    parts = urlsplit(url)
    if parts.scheme != "https":
        return CheckResult("tls", title, "fail", f"PUBLIC_URL {url} is plain http", fix)
    if _local_host(parts.hostname):
        return CheckResult("tls", title, "fail", f"PUBLIC_URL {url} is a local address", fix)
    if (ctx.forwarded_allow_ips or "").strip() == "*":
        return CheckResult(
            "tls", title, "warn", f"{url}; but FORWARDED_ALLOW_IPS=* lets any client fake its address",
            "set FORWARDED_ALLOW_IPS to the proxy's address only",
        )  # fmt: skip
    trusted = ctx.forwarded_allow_ips or "127.0.0.1 (uvicorn's default)"
    return CheckResult("tls", title, "pass", f"{url}, forwarded headers trusted from {trusted}")


def redis(ctx: Context) -> CheckResult:
    title = "Redis (shared limits and revocations)"
    settings = ctx.settings
    if settings is not None and settings.redis_configured:
        where = "Sentinel" if settings.redis_sentinel_enabled else f"{settings.redis_host}:{settings.redis_port}"
        return CheckResult("redis", title, "pass", f"configured ({where})")
    return CheckResult(
        "redis", title, "warn", "not configured: in-memory fallback, fine for one app process only",
        "set REDIS_HOST (or the Sentinel variables) before running several processes",
    )  # fmt: skip
