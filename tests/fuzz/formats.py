"""What every response must look like, whatever the request (SPEC §2, §8).

``check`` is the oracle of the fuzz suite: no 5xx, and every error in the
documented format of its area: RFC 6749 §5.2 JSON with ``no-store`` under
``/oauth/``, HTML on the web pages, RFC 9457 problem JSON everywhere else; every
401 carries a ``WWW-Authenticate`` challenge (RFC 9110 §11.6.1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

# The browser pages answer errors with HTML (SPEC §2, §7).
PAGE_PREFIXES = ("/device", "/account", "/tokens", "/consents", "/signin", "/invitation",
                 "/password-reset", "/email-change")
# JSON endpoints under /oauth/ that are web pages in disguise: none today.
OAUTH_PREFIX = "/oauth/"


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]   # lower-case names
    body: bytes


def served_path(path: str) -> str:
    """The path the runner's HTTP layer hands on: http.server reduces leading slashes
    to one (gh-87389, against open redirects), so //oauth/token is /oauth/token."""
    return "/" + path.lstrip("/") if path.startswith("//") else path


def area(path: str, routes: frozenset[str] = frozenset()) -> str:
    """page, oauth or api: which error format the path promises.

    Under /oauth/ only the endpoints that exist speak RFC 6749; a path no route
    matches is a plain 404 in problem JSON, like any other unknown resource.
    """
    bare = served_path(path.split("?", 1)[0])
    if bare == "/oauth/authorize" or bare.startswith("/oauth/logout"):
        return "page"
    if bare.startswith(OAUTH_PREFIX) and bare in routes:
        return "oauth"
    if any(bare == p or bare.startswith(p + "/") for p in PAGE_PREFIXES):
        return "page"
    return "api"


def problems(method: str, path: str, answer: Answer, routes: frozenset[str] = frozenset()) -> list[str]:
    """Every way ``answer`` breaks the contract (empty: it keeps it)."""
    found: list[str] = []
    status, headers = answer.status, answer.headers
    ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if status >= 500:
        found.append(f"{status} from client input")
    if status == 401 and not headers.get("www-authenticate"):
        found.append("401 without WWW-Authenticate")
    if b"Traceback" in answer.body:
        found.append("traceback in the body")
    if status < 400 or method == "HEAD":
        return found
    where = area(path, routes)
    if where == "page":
        if ctype != "text/html":
            found.append(f"page error as {ctype!r}")
        return found
    try:
        body = json.loads(answer.body)
    except ValueError:
        found.append(f"{where} error body is not JSON: {answer.body[:80]!r}")
        return found
    if where == "oauth":
        if ctype != "application/json":
            found.append(f"oauth error as {ctype!r}")
        if not isinstance(body, dict) or not isinstance(body.get("error"), str):
            found.append(f"oauth error without 'error': {body!r:.120}")
        if "no-store" not in headers.get("cache-control", ""):
            found.append("oauth error without Cache-Control: no-store")
        return found
    if ctype != "application/problem+json":
        found.append(f"api error as {ctype!r}")
    if not isinstance(body, dict) or body.get("status") != status or not isinstance(body.get("title"), str):
        found.append(f"problem JSON malformed: {body!r:.120}")
    return found
