"""One issuer per stage: a request for any other host is refused (SPEC §7).

With ``TESSERA_ISSUER`` set, the issuer is fixed, so a request that reaches the
functions under another host (API Gateway's own ``execute-api`` name beside a
custom domain, a second stage) would get tokens and discovery of an issuer it
did not ask for. It gets a 421 instead, in the format of the path it asked for:
OAuth JSON on ``/oauth/*``, an HTML page on the web pages, problem JSON elsewhere.
With ``TESSERA_ISSUER`` empty nothing is checked: the issuer is then derived
from the request itself (``http.issuer_of``). The Chalice test client sends no
Host, so the in-process tests are unaffected; the local runner's issuer is a
loopback address, and any loopback name of its port is accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from chalice.app import Request, Response

from chalicelib.container import container
from chalicelib.errors import MisdirectedRequest
from chalicelib.http import header, render_oauth_error, render_problem

_DEFAULT_PORTS = {"https": "443", "http": "80"}
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]"})


def authority(value: str, scheme: str = "https") -> str:
    """``host[:port]`` lowercased, without the scheme's default port."""
    host = value.strip().lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default and host.endswith(":" + default):
        host = host[: -len(default) - 1]
    return host


def _loopback(authority_: str) -> str | None:
    """The port of a loopback authority (``localhost:8000``, ``127.0.0.1:8000``), else None."""
    host, _, port = authority_.rpartition(":") if not authority_.endswith("]") else (authority_, "", "")
    if not host:
        host, port = authority_, ""
    return port if host in _LOOPBACK else None


def misdirected(issuer: str, host: str | None) -> bool:
    """True when ``issuer`` is configured and ``host`` names another server. A
    request without Host cannot come through API Gateway (it always sends one).
    The local runner's issuer is a loopback address: any loopback name of the same
    port is the same server."""
    if not issuer or host is None:
        return False
    parts = urlsplit(issuer)
    asked, wanted = authority(host, parts.scheme), authority(parts.netloc, parts.scheme)
    if asked == wanted:
        return False
    port = _loopback(wanted)
    return port is None or _loopback(asked) != port


def host_middleware(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Chalice ``http`` middleware, registered first: refuses before anything runs."""
    if not misdirected(container().settings.issuer, header(event, "host")):
        return get_response(event)
    err = MisdirectedRequest("This server does not answer for the requested host")
    path = event.path or ""
    from chalicelib.web.errors import is_page

    if is_page(path):   # /oauth/authorize included
        from chalicelib.web.page import render_page_error

        return render_page_error(err, "host")
    if path.startswith("/oauth/"):
        return render_oauth_error(err, "host")
    return render_problem(err, "host")
