"""``GET /docs``: the OpenAPI document rendered by Swagger UI, every asset served by
Tessera with its content type and a year's cache, under a CSP that allows this
origin only and no inline script (issue 22)."""

from __future__ import annotations

import re
from typing import Any

from tests.api.helpers import body


def test_docs_is_an_html_page_under_a_self_only_csp(client: Any) -> None:
    r = client.http.get("/docs")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = r.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and "unsafe" not in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    html = r.body.decode()
    assert "<script>" not in html and "https://" not in html and "http://" not in html
    assert 'data-url="/openapi.json"' in html
    scripts = re.findall(r'<script src="([^"]+)"></script>', html)
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)">', html)
    assert [s.split("?")[0] for s in scripts] == ["/docs/assets/swagger-ui-bundle.js",
                                                  "/docs/assets/docs-init.js"]
    assert [s.split("?")[0] for s in styles] == ["/docs/assets/swagger-ui.css"]


def test_every_asset_of_the_page_is_served_with_its_type_and_a_long_cache(client: Any) -> None:
    html = client.http.get("/docs").body.decode()
    urls = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', html)
    kinds = {}
    for url in urls:
        r = client.http.get(url)
        assert r.status_code == 200, url
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        digest = url.split("?v=")[1]
        assert r.headers["ETag"] == f'"{digest}"' and len(r.body) > 100
        kinds[url.split("?")[0].rsplit("/", 1)[1]] = r.headers["Content-Type"]
    assert kinds == {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
                     "docs-init.js": "text/javascript; charset=utf-8",
                     "swagger-ui.css": "text/css; charset=utf-8"}
    bundle = client.http.get("/docs/assets/swagger-ui-bundle.js").body.decode()
    assert "SwaggerUIBundle" in bundle


def test_an_unknown_asset_is_a_problem_404(client: Any) -> None:
    for name in ("index.html", "swagger-ui-bundle.js.map", "..%2Fhttp.py", "package.json"):
        r = client.http.get(f"/docs/assets/{name}")
        assert r.status_code == 404, name
        assert r.headers["Content-Type"] == "application/problem+json"
        assert body(r)["status"] == 404
