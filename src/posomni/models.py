"""Imports every domain's tables so the metadata is complete (Alembic, tests, `create_all` in tools)."""

from posomni.audit.models import AuditChainHead, AuditEntry
from posomni.auth.models import RevokedToken
from posomni.backups.models import BackupRecord
from posomni.catalog.models import (
    Barcode,
    Category,
    MixMatchGroup,
    MixMatchGroupMember,
    PriceChange,
    Product,
    Promotion,
)
from posomni.compliance.models import ComplianceEvent
from posomni.customers.models import Customer
from posomni.idempotency.models import IdempotencyKey
from posomni.inventory.models import (
    PurchaseInvoice,
    PurchaseInvoiceLine,
    StockCount,
    StockCountLine,
    StockLevel,
    StockMovement,
    StockReservation,
)
from posomni.kit.db import Base
from posomni.outbox.models import OutboxMessage
from posomni.payments.models import Payment, PaymentDispute, StripeEvent
from posomni.sales.models import Sale, SaleLine, StoreCounter
from posomni.shifts.models import CashMovement, Shift
from posomni.stores.models import Register, Store
from posomni.users.models import User

metadata = Base.metadata

__all__ = [
    "AuditChainHead",
    "AuditEntry",
    "BackupRecord",
    "Barcode",
    "CashMovement",
    "Category",
    "ComplianceEvent",
    "Customer",
    "IdempotencyKey",
    "MixMatchGroup",
    "MixMatchGroupMember",
    "OutboxMessage",
    "Payment",
    "PaymentDispute",
    "PriceChange",
    "Product",
    "Promotion",
    "PurchaseInvoice",
    "PurchaseInvoiceLine",
    "Register",
    "RevokedToken",
    "Sale",
    "SaleLine",
    "Shift",
    "StockCount",
    "StockCountLine",
    "StockLevel",
    "StockMovement",
    "StockReservation",
    "Store",
    "StoreCounter",
    "StripeEvent",
    "User",
    "metadata",
]
