"""The browser app: ``src/hearth/web/`` served as plain static files.

A browser asking for ``/`` (``Accept: text/html``) gets the app's page; every other client
keeps the short plain-text answer Ollama clients expect there (see ``ollama_routes.root``).
The app's files live under ``/app/``. Only files inside the web folder with a known type are
served, so a crafted path (``..``, encoded slashes, hidden files) finds nothing. Pages carry a
Content-Security-Policy that allows scripts, styles and connections from this origin only:
model output rendered by the app can never load or run anything.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hearth.server.error_shapes import ErrorShape, ollama_error_body

router = APIRouter()
ERROR_SHAPE = ErrorShape("/app", ollama_error_body)  # {"error": "..."}

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Local files change when hearth is upgraded; the browser asks again each time.
    "Cache-Control": "no-cache",
}


def wants_page(request: Request) -> bool:
    """True for a browser navigating to the server (it asks for HTML first)."""
    return "text/html" in request.headers.get("accept", "").lower()


def web_file(relative: str) -> Path | None:
    """The file under the web folder that ``relative`` names, or None when there is none
    (or the path tries to leave the folder, names a hidden file or has an unknown type)."""
    parts = relative.split("/")
    for part in parts:
        if not part or part in (".", "..") or part.startswith(".") or "\\" in part or "\x00" in part:
            return None
    path = WEB_ROOT.joinpath(*parts)
    if path.suffix.lower() not in MEDIA_TYPES:
        return None
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(WEB_ROOT) or not resolved.is_file():
        return None
    return resolved


def file_response(path: Path, method: str = "GET") -> Response:
    body = b"" if method == "HEAD" else path.read_bytes()
    headers = dict(SECURITY_HEADERS)
    if method == "HEAD":
        headers["Content-Length"] = str(path.stat().st_size)
    return Response(body, media_type=MEDIA_TYPES[path.suffix.lower()], headers=headers)


def app_page(method: str = "GET") -> Response:
    response = file_response(WEB_ROOT / "index.html", method)
    # The same URL answers text to API clients: caches must keep the two apart.
    response.headers["Vary"] = "Accept"
    return response


def not_found(request: Request) -> Response:
    from hearth.server.responses import error_response

    return error_response(request, 404, f"no file {request.url.path}")


@router.get("/app/", include_in_schema=False)
@router.head("/app/", include_in_schema=False)
async def app_index(request: Request) -> Response:
    return app_page(request.method)


@router.get("/app/{relative:path}", include_in_schema=False)
@router.head("/app/{relative:path}", include_in_schema=False)
async def app_file(relative: str, request: Request) -> Response:
    path = web_file(relative)
    if path is None:
        return not_found(request)
    return file_response(path, request.method)
