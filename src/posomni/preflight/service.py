"""Run every preflight check against the actual environment and the live database."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from posomni import bootstrap
from posomni.config import RawEnvironment, check
from posomni.database import Database
from posomni.preflight import checks
from posomni.preflight.checks import CheckResult, Context
from posomni.security.crypto import InvalidKeyError


@dataclass(frozen=True)
class PreflightReport:
    checks: list[CheckResult]

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for c in self.checks if c.status == s) for s in ("pass", "warn", "fail")}

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts(), "checks": [c.as_dict() for c in self.checks]}


async def run(raw: RawEnvironment, *, forwarded_allow_ips: str | None = None) -> PreflightReport:
    """`raw`: the environment as read (`config.read_environment`). It is judged by production rules whatever
    POS_ENV says; the other checks use those settings, or the settings as configured when production's fail."""
    env = (raw.pos_env or "development").strip().lower() or "development"
    production, problems = check(raw.model_copy(update={"pos_env": "production"}))
    settings = production
    if settings is None:
        # Production's rules refuse something: judge the rest by development's lenient rules, so one run still
        # shows every other item (the configuration check above already fails).
        settings = check(raw.model_copy(update={"pos_env": "development"}))[0]
        if settings is not None and not (raw.card_processor or "").strip():
            # ...but with production's default processor: never the simulated one.
            settings = replace(settings, card_processor="stripe" if settings.stripe_secret_key else "none")
    ctx = Context(env=env, production_problems=problems, settings=settings, forwarded_allow_ips=forwarded_allow_ips)
    if settings is not None:
        try:
            ctx.crypto = bootstrap.encryption(settings)
        except InvalidKeyError:
            ctx.crypto = None
        # Without DATABASE_URL development's default (a SQLite file) would be checked: not this install's database.
        if raw.database_url is not None and raw.database_url.get_secret_value().strip():
            ctx.database = Database(settings.database_url.get_secret_value(), pool_size=2)
    try:
        results = [checks.configuration(ctx), await checks.database(ctx), checks.encryption_key(ctx)]
        results += [await checks.key_backup(ctx), await checks.key_drill(ctx)]
        results += [checks.card_payments(ctx), checks.error_tracking(ctx), await checks.backup(ctx)]
        results += [checks.rate_limit(ctx), await checks.demo_passwords(ctx), checks.allowed_origins(ctx)]
        results += [checks.tls(ctx), checks.redis(ctx)]
    finally:
        if ctx.database is not None:
            await ctx.database.dispose()
    return PreflightReport(results)
