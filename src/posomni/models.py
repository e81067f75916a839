"""Imports every domain's tables so the metadata is complete (Alembic, tests, `create_all` in tools)."""

from posomni.audit.models import AuditChainHead, AuditEntry
from posomni.auth.models import RevokedToken
from posomni.backups.models import BackupRecord
from posomni.catalog.models import Barcode, Category, Product
from posomni.compliance.models import ComplianceEvent
from posomni.customers.models import Customer
from posomni.idempotency.models import IdempotencyKey
from posomni.inventory.models import StockLevel, StockMovement
from posomni.kit.db import Base
from posomni.outbox.models import OutboxMessage
from posomni.payments.models import Payment
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
    "OutboxMessage",
    "Payment",
    "Product",
    "Register",
    "RevokedToken",
    "Sale",
    "SaleLine",
    "Shift",
    "StockLevel",
    "StockMovement",
    "Store",
    "StoreCounter",
    "User",
    "metadata",
]
