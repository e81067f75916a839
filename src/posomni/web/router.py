"""The screens: the sign-in page, the register and the back office (HTML), and the few JSON helpers they need
that the domain APIs do not offer. The pages are shells: their scripts work through the same JSON API as
every other client, so every rule stays on the server."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select

from posomni.audit import service as audit
from posomni.auth.dependencies import Auth, actor, require
from posomni.auth.permissions import ROLE_PERMISSIONS, Permission
from posomni.auth.principal import Principal
from posomni.catalog.dependencies import Cache
from posomni.catalog.import_writer import import_catalog
from posomni.dependencies import AppSettings, DbSession
from posomni.kit.errors import ValidationFailed
from posomni.outbox import service as outbox
from posomni.outbox.schemas import OutboxStatus
from posomni.payments.dependencies import CardGateway
from posomni.stores.models import Register, Store
from posomni.users.models import Role, User
from posomni.web import service
from posomni.web.pages import PageRoute, render
from posomni.web.schemas import (
    IdStatus,
    ImportReportOut,
    ImportRowError,
    RegisterStatus,
    SalesReportOut,
    ShiftSummary,
)

pages = APIRouter(include_in_schema=False, route_class=PageRoute)
api = APIRouter(prefix="/web/api", tags=["screens"])

MAX_ID = 2**63 - 1
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
StoreQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Required when your account has no store.")]
# A catalog file larger than this is refused before it is read into memory (100,000 products is ~15 MB).
MAX_IMPORT_BYTES = 40 * 1024 * 1024
MAX_ERRORS_SHOWN = 1000

# The back office's sections: (path, title, permission to open it).
SECTIONS: tuple[tuple[str, str, Permission], ...] = (
    ("products", "Products", Permission.REPORTS_VIEW),
    ("stock", "Stock", Permission.REPORTS_VIEW),
    ("users", "Users", Permission.USERS_MANAGE),
    ("stores", "Stores & settings", Permission.REPORTS_VIEW),
    ("reports", "Reports", Permission.REPORTS_VIEW),
    ("audit", "Audit log", Permission.AUDIT_READ),
    ("outbox", "Outbox", Permission.OUTBOX_MANAGE),
)


def _safe_next(target: str) -> str:
    # Only a path of this site: never "//elsewhere" or "https://…" (an open redirect).
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else ""


async def _user_context(session: DbSession, principal: Principal) -> dict[str, Any]:
    user = await session.get(User, principal.user_id)
    permissions = sorted(p.value for p in ROLE_PERMISSIONS[Role(principal.role)])
    return {
        "user": {
            "id": principal.user_id,
            "username": principal.username,
            "full_name": user.full_name if user else principal.username,
            "role": principal.role,
            "store_id": principal.store_id,
            "register_id": principal.register_id,
        },
        "permissions": permissions,
        "permissions_text": " ".join(permissions),
        "sections": [(path, title) for path, title, needed in SECTIONS if principal.can(needed)],
    }


# --- pages ---------------------------------------------------------------------------------------------------


@pages.get("/")
async def sign_in_page(
    session: DbSession, next_path: Annotated[str, Query(alias="next", max_length=300)] = ""
) -> Response:
    """The sign-in page (public): password or PIN, and which register this terminal is."""
    rows = await session.execute(
        select(Register.id, Register.name, Store.code)
        .join(Store, Store.id == Register.store_id)
        .where(Register.is_active.is_(True), Store.is_active.is_(True))
        .order_by(Store.code, Register.code)
    )
    registers = [{"id": rid, "label": f"{code} · {name}"} for rid, name, code in rows]
    return render("signin.html", registers=registers, next=_safe_next(next_path))


@pages.get("/register")
async def register_page(
    session: DbSession, settings: AppSettings, principal: Annotated[Principal, Depends(require(Permission.SELL))]
) -> Response:
    context = await _user_context(session, principal)
    return render("register.html", development=not settings.is_production, **context)


@pages.get("/office")
async def office_home(
    session: DbSession, principal: Annotated[Principal, Depends(require(Permission.REPORTS_VIEW))]
) -> Response:
    return render("office/home.html", section="home", **await _user_context(session, principal))


def _office_page(section: str, permission: Permission) -> None:
    guard = require(permission)

    async def page(session: DbSession, principal: Principal = Depends(guard)) -> Response:
        return render(f"office/{section}.html", section=section, **await _user_context(session, principal))

    page.__name__ = f"office_{section}"
    pages.add_api_route(f"/office/{section}", page, methods=["GET"])


for _section, _title, _permission in SECTIONS:
    _office_page(_section, _permission)


# --- JSON helpers of the register ----------------------------------------------------------------------------


@api.get("/registers/{register_id}/status", response_model=RegisterStatus)
async def register_status(
    register_id: PathId,
    session: DbSession,
    settings: AppSettings,
    gateway: CardGateway,
    principal: Annotated[Principal, Depends(require(Permission.SELL))],
) -> RegisterStatus:
    """What the register screen shows beside the sale: its names, how cards are taken, the sale hours now."""
    return await service.register_status(session, principal, register_id, settings, gateway)


@api.get("/sales/{sale_id}/id-status", response_model=IdStatus)
async def id_status(
    sale_id: PathId, session: DbSession, principal: Annotated[Principal, Depends(require(Permission.SELL))]
) -> IdStatus:
    """Whether today's ID checks cover the sale (the checkout decides again at tender)."""
    return await service.id_status(session, principal, sale_id)


# --- JSON helpers of the back office -------------------------------------------------------------------------


@api.post("/catalog/import", response_model=ImportReportOut)
async def import_products(
    request: Request,
    session: DbSession,
    cache: Cache,
    auth: Auth,
    principal: Annotated[Principal, Depends(require(Permission.CATALOG_EDIT))],
    file: Annotated[UploadFile, File(description="The catalog as CSV (the format of `posomni catalog import`)")],
    skip_invalid: Annotated[bool, Form()] = False,
    dry_run: Annotated[bool, Form()] = False,
    store_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
) -> ImportReportOut:
    """`posomni catalog import` over HTTP: every row checked, every problem reported with its line; nothing
    imported on any error unless `skip_invalid`."""
    data = await file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise ValidationFailed(f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("The file is not UTF-8 text.") from None
    store = service.store_for(principal, store_id) if (store_id or principal.store_id) else None
    report = await import_catalog(
        session, cache, auth.crypto, actor(request, principal), text, store_id=store, skip_invalid=skip_invalid,
        dry_run=dry_run, source=(file.filename or "upload.csv")[:100],
    )  # fmt: skip
    return ImportReportOut(
        rows=report.rows, imported=report.imported, dry_run=dry_run, created=report.created, updated=report.updated,
        unchanged=report.unchanged, skipped=report.skipped, price_changes=report.price_changes,
        stock_changes=report.stock_changes, error_count=len(report.errors), warnings=report.warnings,
        errors=[ImportRowError(line=e.line, sku=e.sku, field=e.field, code=e.code, message=e.message)
                for e in report.errors[:MAX_ERRORS_SHOWN]],
    )  # fmt: skip


@api.get("/reports/sales", response_model=SalesReportOut)
async def sales_report(
    session: DbSession,
    principal: Annotated[Principal, Depends(require(Permission.REPORTS_VIEW))],
    date_from: Annotated[date, Query(alias="from")],
    date_to: Annotated[date, Query(alias="to")],
    by: Literal["day", "category", "hour"] = "day",
    store_id: StoreQuery = None,
) -> SalesReportOut:
    """Completed sales and returns per business day, category or store-local hour."""
    return await service.sales_report(session, service.store_for(principal, store_id), date_from, date_to, by)


@api.get("/shifts", response_model=list[ShiftSummary])
async def shift_history(
    session: DbSession,
    principal: Annotated[Principal, Depends(require(Permission.REPORTS_VIEW))],
    date_from: Annotated[date, Query(alias="from")],
    date_to: Annotated[date, Query(alias="to")],
    store_id: StoreQuery = None,
) -> list[ShiftSummary]:
    """The Z history: the store's shifts of a period with their counts, newest first."""
    return await service.shift_history(session, service.store_for(principal, store_id), date_from, date_to)


@api.get("/outbox", response_model=OutboxStatus)
async def outbox_status(
    session: DbSession, principal: Annotated[Principal, Depends(require(Permission.OUTBOX_MANAGE))]
) -> OutboxStatus:
    """Messages waiting for the back office, failing, and dead (parked after too many attempts): a store-bound
    account's own store only; a chain-wide one's every store and the chain-wide messages."""
    return await outbox.status(session, dead_limit=50, scope=principal.store_id)


@api.post("/outbox/{message_id}/retry", status_code=204)
async def retry_outbox_message(
    message_id: PathId,
    request: Request,
    session: DbSession,
    auth: Auth,
    principal: Annotated[Principal, Depends(require(Permission.OUTBOX_MANAGE))],
) -> Response:
    """Put a dead message back in its queue with a fresh attempt budget (audited: `outbox.retried`). Another
    store's message answers 404 to a store-bound account, as if it did not exist."""
    parked = await outbox.retry(session, message_id, scope=principal.store_id)
    await audit.record(
        session, auth.crypto, actor(request, principal), "outbox.retried", store_id=parked.store_id,
        target_type="outbox_message", target_id=parked.id,
        details={"topic": parked.topic, "aggregate_id": parked.aggregate_id, "idempotency_key": parked.idempotency_key,
                 "attempts": parked.attempts, "last_error": parked.last_error},
    )  # fmt: skip
    return Response(status_code=204)
