"""Rendering the screens: the Jinja2 environment and the route class of the HTML pages.

Pages declare their permission with `require(...)` like every API route. A browser that navigates to a page
without a session is sent to the sign-in page, and one whose role may not open it gets a page saying so;
API clients (which do not ask for HTML) get the usual JSON errors.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from posomni import __version__
from posomni.kit.errors import PosError

ENVIRONMENT = Environment(
    loader=PackageLoader("posomni", "web/templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = ENVIRONMENT.get_template(template).render(version=__version__, **context)
    # Pages hold nothing cacheable for someone else, and a back button after sign-out must not show a sale.
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


class PageRoute(APIRoute):
    """An HTML page: authentication and permission refusals become a redirect or a page for browsers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except PosError as exc:
                if not wants_html(request) or exc.status_code not in (401, 403):
                    raise
                if exc.status_code == 401:
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(f"/?next={quote(target, safe='')}", status_code=303)
                return render("denied.html", status_code=403, message=exc.message)

        return page_handler
