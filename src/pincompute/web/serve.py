"""Serving the console's files: ``/`` is the page, ``/console/<path>`` its modules and assets.

The files are read once when the router is made (a dict from URL path to bytes; the whole
console is under a megabyte), so a request is one dict lookup: no path from a URL ever reaches
the file system, hence no traversal.
The page is one HTML document; the console routes inside it with the URL fragment
(``/#/projects/demo/workloads/pinapps/web``), so every deep link is served by ``/`` and works on
a reload. Assets are revalidated by ETag (the gateway restarts with a new package rarely, and a
stale module after an upgrade would be worse than a 304 round trip).

The page's Content-Security-Policy allows only this origin (scripts, styles, fetches and
websockets): the console never loads anything from the network.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

STATIC_DIR = Path(__file__).parent / "static"
"""The console's files: ``index.html``, ``app.css``, ``js/``, ``vendor/``."""

ASSET_PREFIX = "/console/"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self' ws: wss:; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
"""Inline styles only because xterm.js sizes its rows with style attributes."""

_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".css": "text/css",
          ".html": "text/html", ".svg": "image/svg+xml", ".json": "application/json"}


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


def _assets(root: Path) -> dict[str, _Asset]:
    found: dict[str, _Asset] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = path.relative_to(root).as_posix()
        media = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        body = path.read_bytes()
        digest = hashlib.blake2b(body, digest_size=12).hexdigest()
        found[relative] = _Asset(body, media or "application/octet-stream", f'"{digest}"')
    return found


def _serve(asset: _Asset, request: Request, *, headers: dict[str, str] | None = None) -> Response:
    common = {"ETag": asset.etag, "Cache-Control": "no-cache",
              "X-Content-Type-Options": "nosniff", **(headers or {})}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=common)
    media = asset.media_type
    if media.startswith("text/"):
        media += "; charset=utf-8"
    return Response(asset.body, media_type=media, headers=common)


def _not_found(path: str) -> Response:
    body = ('{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound",'
            f'"code":404,"message":"no console file {path!r}"}}')
    return Response(body, status_code=404, media_type="application/json")


def console_router(*, root: Path = STATIC_DIR) -> APIRouter:
    """The routes serving the console: ``GET /`` (the page) and ``GET /console/{path}``.

    ``root`` is the directory of the files (the package's ``static/`` by default).
    """
    assets = _assets(root)
    router = APIRouter(include_in_schema=False)
    page_headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY,
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}

    @router.get("/")
    async def page(request: Request) -> Response:
        return _serve(assets["index.html"], request, headers=page_headers)

    @router.get(ASSET_PREFIX + "{path:path}")
    async def asset(path: str, request: Request) -> Response:
        found = assets.get(path)
        if found is None:
            return _not_found(path)
        return _serve(found, request)

    return router
