"""Adapters built from settings, shared by the app's lifespan and the command line."""

from __future__ import annotations

import hashlib

from posomni.auth.revocation import RevocationStore
from posomni.auth.service import AuthAdapters
from posomni.cache.ratelimit import RateLimiter
from posomni.cache.service import CacheService
from posomni.config import Settings
from posomni.payments.gateway import PaymentGateway
from posomni.payments.simulated import SimulatedCardProcessor
from posomni.payments.stripe_adapter import StripeGateway
from posomni.security.crypto import EncryptionService, StaticKeyProvider
from posomni.security.tokens import AccessTokenCodec


def encryption(settings: Settings) -> EncryptionService:
    old = settings.old_audit_log_encryption_key
    return EncryptionService(
        StaticKeyProvider.from_settings(
            settings.audit_log_encryption_key.get_secret_value(), old.get_secret_value() if old else None
        )
    )


def card_gateway(settings: Settings) -> PaymentGateway | None:
    """The card processor chosen by CARD_PROCESSOR (none: card tenders are refused, cash still works)."""
    if settings.card_processor == "simulated":
        return SimulatedCardProcessor()
    if settings.card_processor == "stripe":
        return StripeGateway.from_settings(settings)
    return None


def auth_adapters(settings: Settings, cache: CacheService, crypto: EncryptionService) -> AuthAdapters:
    secret = settings.jwt_secret.get_secret_value()
    return AuthAdapters(
        codec=AccessTokenCodec(secret),
        revocations=RevocationStore(cache),
        limiter=RateLimiter(cache),
        crypto=crypto,
        # Separate from the signing key: knowing a CSRF token must never help forge a session token.
        csrf_secret=hashlib.sha256(b"posomni-csrf:" + secret.encode()).digest(),
        hash_cost=settings.password_hash_cost,
    )
