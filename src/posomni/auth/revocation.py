"""Signed-out tokens.

The database is the record of every revocation. While Redis answers, it is the fast path shared by every app
process: `revoked:<jti>` keys, plus a marker saying the set was loaded from the database (after a Redis restart
the marker is gone and the set is loaded again before it is trusted). While Redis is unavailable each process
asks the database, so a revocation made anywhere is in force everywhere at once, whatever state Redis is in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.auth.models import RevokedToken
from posomni.cache.service import CacheService
from posomni.kit.time import utcnow

LOADED_MARKER = "auth:revocations-loaded"


def _revoked_key(jti: str) -> str:
    return f"auth:revoked:{jti}"


def _ttl(expires_at: datetime) -> float:
    return max(1.0, (expires_at - utcnow()).total_seconds())


class RevocationStore:
    def __init__(self, cache: CacheService) -> None:
        self._cache = cache

    @property
    def shared(self) -> bool:
        return self._cache.mode == "redis"

    async def revoke(self, session: AsyncSession, *, jti: str, user_id: int, expires_at: datetime) -> None:
        if await session.get(RevokedToken, jti) is None:
            session.add(RevokedToken(jti=jti, user_id=user_id, expires_at=expires_at))
            await session.flush()
        if not await self._cache.set(_revoked_key(jti), "1", ttl_seconds=_ttl(expires_at)):
            # Redis did not take it (outage): drop the "loaded" marker, so once Redis is back the set is
            # reloaded from the database instead of Redis's "not revoked" being trusted.
            await self._cache.delete(LOADED_MARKER)

    async def is_revoked(self, session: AsyncSession, jti: str) -> bool:
        if self.shared:
            # One round trip: the marker and the token's key together.
            loaded, revoked_key = await self._cache.get_many(LOADED_MARKER, _revoked_key(jti))
            if loaded is not None:
                return revoked_key is not None
        revoked = await session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti)) is not None
        if self.shared:
            await self._load(session)
        return revoked

    async def _load(self, session: AsyncSession) -> None:
        now = utcnow()
        rows = await session.execute(
            select(RevokedToken.jti, RevokedToken.expires_at).where(RevokedToken.expires_at > now)
        )
        for jti, expires_at in rows:
            await self._cache.set(_revoked_key(jti), "1", ttl_seconds=_ttl(expires_at))
        # The marker expires too, so the set is re-read from the database now and then even if nothing failed.
        await self._cache.set(LOADED_MARKER, now.isoformat(), ttl_seconds=3600)

    async def purge_expired(self, session: AsyncSession) -> int:
        result = cast(
            CursorResult[Any],
            await session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= utcnow())),
        )
        return int(result.rowcount or 0)
