"""The studio's pages: one server-rendered shell per page (Jinja2), the rest is plain ES modules
that call the horde's API from the browser, where the API key stays.

No page carries user data from the server: a page load has no key (the key lives in the
browser's storage and travels only in the `apikey` header of API calls). Every page is sent with
a Content-Security-Policy that allows only this origin's scripts, styles and connections.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from horde_api import __version__
from horde_protocol.samplers import SAMPLER_NAMES

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
STATIC_URL = "/static/studio"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # data: for Pico's built-in SVG icons, blob: for images fetched with the API key.
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

# (path, template, title, navigation label)
PAGES = (
    ("/", "create.html", "Create", "Create"),
    ("/queue", "queue.html", "Queue", "Queue"),
    ("/library", "library.html", "Library", "Library"),
    ("/advanced", "advanced.html", "Advanced", "Advanced"),
)

templates = Jinja2Templates(directory=str(HERE / "templates"))


@cache
def _fingerprint(relative: str) -> str:
    """A short hash of a static file, appended to its URL so browsers never run stale code."""
    path = (STATIC_DIR / relative).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        raise ValueError(f"no static file {relative!r}")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def static_url(relative: str) -> str:
    return f"{STATIC_URL}/{relative}?v={_fingerprint(relative)}"


templates.env.globals["static_url"] = static_url
templates.env.globals["version"] = __version__
templates.env.globals["pages"] = PAGES
templates.env.globals["samplers"] = SAMPLER_NAMES

router = APIRouter(include_in_schema=False)


def _page(template: str, title: str, path: str) -> Callable[[Request], Awaitable[HTMLResponse]]:
    name = template.removesuffix(".html")

    async def render(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            template,
            {"title": title, "current": path, "script": f"js/page-{name}.js"},
            headers=SECURITY_HEADERS,
        )

    render.__name__ = f"page_{name}"
    return render


for _path, _template, _title, _ in PAGES:
    router.add_api_route(_path, _page(_template, _title, _path), methods=["GET"])


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="studio-static")
