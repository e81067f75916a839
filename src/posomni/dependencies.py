"""FastAPI dependencies shared by every domain's router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.config import Settings
from posomni.database import get_session

# scope="function": the transaction commits when the route returns, before the response is sent.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(get_settings)]
