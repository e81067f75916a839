from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from posomni.cache.service import CacheService


def get_cache(request: Request) -> CacheService:
    cache: CacheService = request.app.state.cache
    return cache


Cache = Annotated[CacheService, Depends(get_cache)]
