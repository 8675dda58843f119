"""Errors Chalice answers itself (405, 415, 500), on the web pages: HTML pages (SPEC §2).

Registered after ``http.error_middleware``, so it runs inside it: a page's error
is already HTML when the outer middleware looks, and passes through.
"""

from __future__ import annotations

from collections.abc import Callable

from chalice.app import Request, Response

from chalicelib.http import chalice_error
from chalicelib.web.page import message_page

PAGES = ("/device", "/account", "/tokens", "/consents", "/oauth/authorize", "/oauth/logout",
         "/signin", "/invitation", "/password-reset", "/email-change")


def is_page(path: str) -> bool:
    return any(path == page or path.startswith(page + "/") for page in PAGES)


def page_error_middleware(event: Request, get_response: Callable[[Request], Response]) -> Response:
    response = get_response(event)
    found = chalice_error(response) if is_page(event.path) else None
    if found is None:
        return response
    status, title, detail, headers = found
    return message_page(title, detail, status, headers=headers)
