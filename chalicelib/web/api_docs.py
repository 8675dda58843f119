"""``GET /docs``: the OpenAPI document (``/openapi.json``) rendered by Swagger UI 5
(npm ``swagger-ui-dist``, pinned in ``docs/api/package.json``), every asset served
by Tessera itself, no CDN.

The page is static HTML (``templates/api_docs.html``) that loads Swagger UI's stylesheet and bundle and our
initializer (``static/docs-init.js``) from ``/docs/assets/``; its
Content-Security-Policy allows scripts, styles, fetches and fonts from this origin
only (no inline script, no eval), images from this origin and ``data:`` (Swagger
UI's icons), no framing. Asset URLs carry a digest of the file (``?v=``), so the
assets are cached for a year.

Where the vendor files are: ``vendor/swagger-ui/`` beside this module in the
deployed package (``deploy.package`` copies them there), else the npm package
installed by ``make`` (``docs/api/node_modules/swagger-ui-dist``). Nothing is read
at import (SPEC §9): a file is read on first request and kept.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from chalicelib.errors import ServiceUnavailable

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
PACKAGED = HERE / "vendor" / "swagger-ui"
INSTALLED = HERE.parents[1] / "docs" / "api" / "node_modules" / "swagger-ui-dist"
# The files of swagger-ui-dist that /docs needs; deploy.package ships exactly these.
VENDOR_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
INITIALIZER = "docs-init.js"
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
ASSET_CACHE = "public, max-age=31536000, immutable"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")


class MissingAssets(ServiceUnavailable):
    """Swagger UI's files are neither packaged nor installed (run ``make docs-deps``):
    a 503 problem, the path in the log only."""


def vendor_dir() -> Path:
    for candidate in (PACKAGED, INSTALLED):
        if all((candidate / name).is_file() for name in VENDOR_FILES):
            return candidate
    raise MissingAssets("The API reference is not installed on this stage",
                        detail=f"swagger-ui-dist is missing: run `make docs-deps` ({INSTALLED})")


@dataclass(frozen=True)
class Asset:
    body: str
    content_type: str
    digest: str


@functools.cache
def asset(name: str) -> Asset | None:
    """One served file by name, read once; None for any other name."""
    if name == INITIALIZER:
        path = STATIC / INITIALIZER
    elif name in VENDOR_FILES:
        path = vendor_dir() / name
    else:
        return None
    data = path.read_bytes()
    return Asset(data.decode("utf-8"), CONTENT_TYPES[path.suffix],
                 hashlib.sha256(data).hexdigest()[:16])


def _url(name: str) -> str:
    found = asset(name)
    assert found is not None
    return f"/docs/assets/{name}?v={found.digest}"


@functools.cache
def page() -> str:
    """The page (``templates/api_docs.html``), rendered once and kept."""
    from chalicelib.web.render import render

    return render("api_docs.html", css=_url("swagger-ui.css"),
                  bundle=_url("swagger-ui-bundle.js"), initializer=_url(INITIALIZER))


def page_headers() -> dict[str, str | list[str]]:
    return {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": CSP,
            "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def asset_headers(found: Asset) -> dict[str, str | list[str]]:
    return {"Content-Type": found.content_type, "Cache-Control": ASSET_CACHE,
            "X-Content-Type-Options": "nosniff", "ETag": f'"{found.digest}"'}
