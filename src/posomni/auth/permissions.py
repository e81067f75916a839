"""Who may do what: every permission and every role's set, in one place.

Every route declares the permission it needs with `auth.dependencies.require(...)`; a test walks the app's
routes and fails when one has neither a permission nor a place in `PUBLIC_ROUTES`.
"""

from __future__ import annotations

import enum
from typing import Final

from posomni.users.models import Role


class Permission(enum.StrEnum):
    # Register work
    SELL = "sell"
    RETURN = "return"
    COMPLIANCE_CHECK = "compliance.check"
    CATALOG_READ = "catalog.read"
    CUSTOMERS_MANAGE = "customers.manage"
    SHIFT_OPEN = "shift.open"
    # Manager work
    OVERRIDE = "override"
    RETURN_WITHOUT_RECEIPT = "return.without_receipt"
    VOID = "void"
    REFUND = "refund"
    PRICES_EDIT = "prices.edit"
    CATALOG_EDIT = "catalog.edit"
    STOCK_MANAGE = "stock.manage"
    DRAWER_CLOSE = "drawer.close"
    NO_SALE = "drawer.no_sale"
    REPORTS_VIEW = "reports.view"
    PERFORMANCE_VIEW = "performance.view"
    OUTBOX_MANAGE = "outbox.manage"
    # Administration
    USERS_MANAGE = "users.manage"
    STORES_MANAGE = "stores.manage"
    SETTINGS_MANAGE = "settings.manage"
    # Audit
    AUDIT_READ = "audit.read"
    COMPLIANCE_REPORTS = "compliance.reports"
    # Every signed-in user: their own session
    SELF = "self"


_CASHIER: Final = frozenset(
    {
        Permission.SELF,
        Permission.SELL,
        Permission.RETURN,
        Permission.COMPLIANCE_CHECK,
        Permission.CATALOG_READ,
        Permission.CUSTOMERS_MANAGE,
        Permission.SHIFT_OPEN,
    }
)
_MANAGER: Final = _CASHIER | {
    Permission.OVERRIDE,
    Permission.RETURN_WITHOUT_RECEIPT,
    Permission.VOID,
    Permission.REFUND,
    Permission.PRICES_EDIT,
    Permission.CATALOG_EDIT,
    Permission.STOCK_MANAGE,
    Permission.DRAWER_CLOSE,
    Permission.NO_SALE,
    Permission.REPORTS_VIEW,
    Permission.PERFORMANCE_VIEW,
    Permission.OUTBOX_MANAGE,
    Permission.COMPLIANCE_REPORTS,
}
# Admins run the store system; they can do everything a manager can, plus users, stores and settings.
_ADMIN: Final = _MANAGER | {
    Permission.USERS_MANAGE,
    Permission.STORES_MANAGE,
    Permission.SETTINGS_MANAGE,
    Permission.AUDIT_READ,
}
# Auditors read; they never change anything.
_AUDITOR: Final = frozenset(
    {
        Permission.SELF,
        Permission.CATALOG_READ,
        Permission.REPORTS_VIEW,
        Permission.AUDIT_READ,
        Permission.COMPLIANCE_REPORTS,
    }
)

ROLE_PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    Role.CASHIER: _CASHIER,
    Role.MANAGER: _MANAGER,
    Role.ADMIN: _ADMIN,
    Role.AUDITOR: _AUDITOR,
}

# Routes anyone may call: the start page, health checks, sign-in, and machine endpoints with their own authentication
# (the metrics scrape token, Stripe's webhook signature). (method, path template)
PUBLIC_ROUTES: Final[frozenset[tuple[str, str]]] = frozenset(
    {
        ("GET", "/"),
        ("GET", "/health"),
        ("GET", "/health/backup"),
        ("POST", "/auth/login"),
        ("POST", "/auth/pin"),
        ("GET", "/monitoring/metrics"),
        ("POST", "/webhooks/stripe"),
    }
)


def allows(role: str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False
