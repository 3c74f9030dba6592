"""The browser playground: static files shipped in the package (``playground/``), served at ``/``.

``GET /`` is the page (``playground/index.html``); its scripts, styles and icon are under
``/playground/``. Both are public (like ``/docs``): the page holds no model work, and the
API calls it makes carry the token the user enters (see ``playground/api.js``). Every
response forbids loading anything from elsewhere (``Content-Security-Policy``): the page
uses only what rnnserve serves, with no build step, CDN or external font.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

#: The page's files, in the installed package.
PLAYGROUND_DIR = Path(__file__).with_name("playground")
#: Where the page's assets are served.
ASSETS_PATH = "/playground"
#: Headers on every playground response: nothing from other origins, no framing, no referrer, and
#: revalidate (``ETag``) so an upgraded server's page is used at once.
HEADERS = {
    "content-security-policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


class _Assets(StaticFiles):
    """StaticFiles adding :data:`HEADERS` to every file it serves."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(HEADERS)
        return response


async def _index(request: Request) -> Response:
    return FileResponse(PLAYGROUND_DIR / "index.html", headers=HEADERS)


def playground_routes() -> list[BaseRoute]:
    """``GET /`` and the static files under :data:`ASSETS_PATH`."""
    return [Route("/", _index, methods=["GET"]),
            Mount(ASSETS_PATH, app=_Assets(directory=PLAYGROUND_DIR), name="playground")]
