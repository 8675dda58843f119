"""The edge of the web pages: a Chalice request parsed, once, into a ``Visit``.

Below this module the pages see typed values (``web.browser.PageRequest``), never
the Chalice request; page routes are one line: open the visit, call the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from chalice.app import Request, Response

from chalicelib.container import Container
from chalicelib.errors import BadRequest, TesseraError
from chalicelib.http import FORM, body_bytes, header, issuer_of, media_type, query_params, source_ip

if TYPE_CHECKING:
    from chalicelib.web.browser import Form, PageRequest, Visit

# ``chalicelib.web`` (pages, the browser sign-in) is imported by the first page
# request, not by the app: the token endpoint and the API keep their cold start
# (SPEC §9).


def parse_page_form(request: Request) -> Form:
    """A page's form body: form-encoded UTF-8, no NUL; a name may repeat (checkboxes)."""
    from chalicelib.web.browser import Form

    if media_type(request) != FORM:
        raise BadRequest(f"Content-Type must be {FORM}")
    try:
        text = body_bytes(request).decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("The form is not valid UTF-8") from exc
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise BadRequest("Form fields must not contain NUL characters")
        fields.setdefault(name, []).append(value)
    return Form({name: tuple(values) for name, values in fields.items()})


def page_request(request: Request, c: Container, *, form: bool = False) -> PageRequest:
    from chalicelib.web.browser import Form, PageRequest, parse_cookies

    return PageRequest(issuer=issuer_of(request, c.settings),
                       cookies=parse_cookies(header(request, "cookie")),
                       source_ip=source_ip(request),
                       user_agent=header(request, "user-agent") or "",
                       query=query_params(request),
                       form=parse_page_form(request) if form else Form())


def serve(request: Request, c: Container, handle: Callable[[Visit], Response], *,
          form: bool = False, link: tuple[str, str] | None = None) -> Response:
    """Parse the request, open the visit, let ``handle`` answer; an error it raises
    becomes an HTML page of this visit (its cookies, who is signed in, ``link`` on).
    A request that does not parse never opens a visit: ``page_endpoint`` renders it.
    """
    from chalicelib.web.browser import Visit

    parsed = page_request(request, c, form=form)
    visit = Visit.open(parsed, c.web_signin, c.settings.session_max_seconds)
    try:
        return handle(visit)
    except TesseraError as err:
        return visit.error_page(err, request.path, link)


def moved(request: Request, c: Container, new_path: str) -> Response:
    """A page that moved (``/tokens`` to ``/account/tokens``): RFC 9110 §15.4.9 308
    Permanent Redirect, which keeps the method and the body, so a bookmarked page
    and a form posted from an old page both arrive; the query goes along."""
    from urllib.parse import urlencode, urlsplit

    params: Any = request.query_params or {}
    pairs = [(name, value) for name in params
             for value in (params.getlist(name) if hasattr(params, "getlist") else [params[name]])]
    location = urlsplit(issuer_of(request, c.settings)).path.rstrip("/") + new_path
    if pairs:
        location += "?" + urlencode(pairs)
    return Response(body="", status_code=308,
                    headers={"Location": location, "Cache-Control": "no-store"})
