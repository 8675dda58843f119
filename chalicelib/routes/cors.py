"""CORS for the endpoints a browser app calls (SPEC §2 "Browser apps").

Chalice's ``CORSConfig`` sends one fixed origin for every caller, and on API
Gateway its preflight is a mock that never reaches the function; Tessera's
allowed origins are data (the clients' web origins), so these endpoints add
their own headers and answer ``OPTIONS`` themselves (an ``OPTIONS`` route is
proxied to the function on API Gateway like any other).

``public``: any origin, no credentials (discovery, JWK Set). ``registered``:
only an origin some client registered, with ``Vary: Origin``; any other origin
gets no CORS header, so the browser keeps the answer from the page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from chalice import Blueprint, Response

from chalicelib.container import container
from chalicelib.http import header
from chalicelib.security.cors import origin_headers, preflight_headers, public_headers

F = TypeVar("F", bound=Callable[..., Any])


def allowed_origin(bp: Blueprint) -> str | None:
    """The request's ``Origin`` if some client registered it as a web origin."""
    origin = header(bp.current_request, "origin")
    return origin if origin and container().web_origins.registered(origin) else None


def _headers(bp: Blueprint, public: bool) -> dict[str, str]:
    return public_headers() if public else origin_headers(allowed_origin(bp))


def cors(bp: Blueprint, *, public: bool = False) -> Callable[[F], F]:
    """Route decorator (outermost): the answer, errors included, carries CORS headers."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            response = fn(*args, **kwargs)
            response.headers.update(_headers(bp, public))
            return response

        return wrapper  # type: ignore[return-value]

    return decorate


def preflight(bp: Blueprint, path: str, methods: str, *, public: bool = False) -> None:
    """Register ``OPTIONS path``: 204 with the methods and headers a browser may
    use and how long it may remember them; for an origin no client registered,
    no ``Access-Control-Allow-*`` at all (the browser then sends nothing)."""

    def answer() -> Response:
        headers: dict[str, str | list[str]] = {**_headers(bp, public)}
        if "Access-Control-Allow-Origin" in headers:
            headers.update(preflight_headers(methods))
        return Response(body="", status_code=204, headers=headers)

    name = "preflight" + path.replace("/", "_").replace(".", "_").replace("-", "_")
    bp.route(path, methods=["OPTIONS"], name=name)(answer)
