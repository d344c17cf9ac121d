"""/console: the dispatcher console, one server-rendered page plus a little vanilla
JavaScript (six small scripts sharing one namespace, `static/*.js`) and CSS, all served by
the app itself: no build step, no CDN.

Sign-in: the user pastes their token (from `voice-agent users add` or `POST /api/users`)
into a form that never submits to the server. The script checks it against
`/api/console/context` and keeps it in the tab's sessionStorage (gone when the tab closes,
not shared with other tabs); every request sends it as `Authorization: Bearer`, the live
feed included (read with fetch(), not EventSource, so the token is never in a URL). No
cookie is set, so there is no cross-site request to forge; the page's Content-Security-
Policy allows scripts from this origin only, and the script writes text with textContent
only, which keeps injected markup (a caller's words in a transcript) inert.

The page itself holds no data: everything it shows comes from /api with the user's token,
scoped to their business.

Wiring (app.py): `app.include_router(console.router)` and
`app.mount(console.STATIC_PATH, console.static_files(), name="console-static")`."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
STATIC_PATH = "/console/static"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "media-src 'self' blob:",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def asset_version() -> str:
    """Changes with the assets, so a browser never runs an old script with a new page."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


VERSION = asset_version()
# In this order (deferred scripts run in document order): each adds to the VA namespace.
SCRIPTS = ("core.js", "dom.js", "feed.js", "live.js", "history.js", "console.js")


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


@router.get("/console", response_class=HTMLResponse)
async def console_page(request: Request) -> HTMLResponse:
    context = {"static": STATIC_PATH, "version": VERSION, "scripts": SCRIPTS}
    return templates.TemplateResponse(request, "console.html", context, headers=PAGE_HEADERS)


@router.get("/console/")
async def console_slash() -> RedirectResponse:
    return RedirectResponse("/console", status_code=308)
