from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from posomni.kit.db import Base, BigIntId
from posomni.kit.time import utcnow


class RevokedToken(Base):
    """A signed-out token. The database is the record (it survives a Redis restart); Redis is the fast path."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Kept until the token would have expired anyway; older rows can be deleted.
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime] = mapped_column(default=utcnow)
