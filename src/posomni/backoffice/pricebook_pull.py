"""Pulling a store's pricebook from the back office and applying it: `posomni backoffice pull-pricebook`, and
`pull_pricebook`, which a scheduler (the worker) can call as it is.

No transaction is open during the HTTP request. The last pricebook applied is remembered by its audit entry
(`catalog.pricebook_imported` of the store, with the SHA-256 of the body and the back office's ETag): the
ETag goes back as If-None-Match, and a 304 — or a body whose SHA-256 is the one applied last — applies
nothing and writes nothing. A pricebook that was refused is not remembered, so the next pull tries it again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from posomni.audit import service as audit
from posomni.audit.models import AuditEntry
from posomni.auth.principal import Actor
from posomni.backoffice.client import BackOfficeClient
from posomni.backoffice.naxml.export import resolve_store
from posomni.backoffice.naxml.parse import PricebookRefused, parse_rest
from posomni.backoffice.naxml.pricebook import AUDIT_ACTION, PricebookReport, apply_pricebook
from posomni.cache.service import CacheService
from posomni.database import Database
from posomni.security.crypto import EncryptionService


@dataclass
class PullReport:
    store: str
    # "applied", "unchanged", "invalid" (records refused: nothing applied), "checked" (dry run),
    # "refused" (the document cannot be read) or "unavailable" (no pricebook from the back office).
    status: str
    report: PricebookReport | None = None
    error: str | None = None
    etag: str | None = None


async def _last_applied(database: Database, crypto: EncryptionService, store_id: int) -> dict[str, Any]:
    async with database.sessionmaker() as session:
        entry = await session.scalar(
            select(AuditEntry)
            .where(AuditEntry.action == AUDIT_ACTION, AuditEntry.store_id == store_id)
            .where(AuditEntry.target_type == "pricebook")
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
        if entry is None:
            return {}
        details = audit.decrypt_details(crypto, entry)
    return details if isinstance(details, dict) and details.get("source") == "rest" else {}


async def pull_pricebook(
    database: Database,
    crypto: EncryptionService,
    cache: CacheService,
    client: BackOfficeClient,
    actor: Actor,
    *,
    store_code: str | None = None,
    skip_invalid: bool = False,
    dry_run: bool = False,
    force: bool = False,
) -> PullReport:
    """Fetch the store's pricebook (the only store's when no code is given) and apply it unless unchanged."""
    async with database.sessionmaker() as session:
        store = await resolve_store(session, store_code)
        store_id, code = store.id, store.code
    last = {} if force else await _last_applied(database, crypto, store_id)
    fetched = await client.fetch_pricebook(code, etag=last.get("etag"))
    if fetched.not_modified:
        return PullReport(code, "unchanged", etag=fetched.etag)
    if not fetched.fetched or fetched.body is None:
        return PullReport(code, "unavailable", error=f"{fetched.outcome.value}: {fetched.error}")
    digest = hashlib.sha256(fetched.body).hexdigest()
    if digest == last.get("sha256"):
        # The back office sent the same pricebook again (it may not do ETags).
        return PullReport(code, "unchanged", etag=fetched.etag)
    try:
        book = parse_rest(fetched.body)
    except PricebookRefused as refused:
        return PullReport(code, "refused", error=refused.message)
    async with database.unit_of_work() as session:
        report = await apply_pricebook(
            session, cache, crypto, actor, book, sha256=digest, source_name=f"GET /v1/stores/{code}/pricebook",
            skip_invalid=skip_invalid, dry_run=dry_run, store_id=store_id, etag=fetched.etag,
        )  # fmt: skip
    status = "applied" if report.applied else ("checked" if dry_run and not report.errors else "invalid")
    return PullReport(code, status, report=report, etag=fetched.etag)
