"""The global per-client request limit (sign-in attempts have their own, stricter limits)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from posomni.cache.ratelimit import RateLimiter
from posomni.errors import error_body

# Health checks come from load balancers and monitors; they must never be throttled into "down".
EXEMPT_PREFIXES = ("/health",)


class ClientRateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit: str) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        limiter: RateLimiter | None = getattr(scope["app"].state, "limiter", None)
        if limiter is not None:
            request = Request(scope)
            address = request.client.host if request.client else "unknown"
            wait = await limiter.admit(self.limit, "client", address)
            if wait > 0:
                seconds = max(1, int(wait + 0.999))
                response = JSONResponse(
                    error_body("rate_limited", "Too many requests; wait a moment and try again.",
                               {"retry_after_seconds": seconds}),
                    status_code=429,
                    headers={"Retry-After": str(seconds)},
                )  # fmt: skip
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
