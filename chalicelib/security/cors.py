"""Cross-origin requests of browser apps (the Fetch Standard's CORS protocol).

A client's *web origins* (Keycloak's term) are the origins of its https and
loopback http redirect URIs plus any ``allowed_origins`` it registered: each an
origin exactly as a browser serialises it in the ``Origin`` header (RFC 6454
§6.2): ``scheme://host[:port]``, lowercase, no default port, no path, no
wildcard. Discovery and the JWK Set are public and answer ``*`` without
credentials; the endpoints a single-page app calls with a token (token,
UserInfo, revocation, ``/v1/me``) answer only an origin some client registered.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_ORIGIN = 300
MAX_ALLOWED_ORIGINS = 20
# How long a browser may reuse a preflight's answer (Chromium caps it at 2 h).
MAX_AGE_SECONDS = 600
ALLOWED_HEADERS = "Authorization, Content-Type"
DEFAULT_PORTS = {"https": 443, "http": 80}
# The hosts where a redirect URI may use plain http (security/redirect_uris.py).
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def _loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS


def _serialise(scheme: str, host: str, port: int | None) -> str:
    name = f"[{host}]" if ":" in host else host
    shown = "" if port is None or port == DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{name}{shown}"


def origin_of(uri: str) -> str | None:
    """The web origin of an already registered redirect URI: https, or http on a
    loopback host; None for anything else (a native app's private-use scheme)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if not host or scheme not in DEFAULT_PORTS or (scheme == "http" and not _loopback(host)):
        return None
    return _serialise(scheme, host, port)


def origin_problem(origin: str) -> str | None:
    """Why ``origin`` cannot be registered as a web origin, or None if it can.

    Strict: exactly ``scheme://host[:port]`` as a browser sends it (RFC 6454
    §6.2), https, or http on a loopback host; no path, query, fragment, user
    information or wildcard.
    """
    if not origin or len(origin) > MAX_ORIGIN or not origin.isascii() or not origin.isprintable():
        return f"must be 1-{MAX_ORIGIN} printable ASCII characters"
    if "*" in origin:
        return "must not contain a wildcard"
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return "is not scheme://host[:port]"
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return "must be https://host[:port] (or http:// on a loopback host)"
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc \
            or origin.endswith(("?", "#", "/")):
        return "must be scheme://host[:port] only: no path, query, fragment or user"
    if parts.scheme == "http" and not _loopback(parts.hostname):
        return "may use http only on a loopback host (use https)"
    if origin != _serialise(parts.scheme, parts.hostname, port):
        return ("must be written as a browser sends it: lowercase, without a default port "
                f"({_serialise(parts.scheme, parts.hostname, port)})")
    return None


def web_origins(redirect_uris: tuple[str, ...], allowed_origins: tuple[str, ...]) -> tuple[str, ...]:
    """A client's web origins: those of its redirect URIs, then its allowed origins."""
    derived = (origin_of(uri) for uri in redirect_uris)
    return tuple(dict.fromkeys([*(o for o in derived if o), *allowed_origins]))


def public_headers() -> dict[str, str]:
    """Any origin may read, without credentials (discovery, JWK Set)."""
    return {"Access-Control-Allow-Origin": "*"}


def origin_headers(origin: str | None) -> dict[str, str]:
    """The answer depends on ``Origin``: caches must keep one per origin (Vary);
    ``origin`` (a registered one) may read it, with an ``Authorization`` header."""
    headers = {"Vary": "Origin"}
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
    return headers


def preflight_headers(methods: str) -> dict[str, str]:
    """What a preflight (an ``OPTIONS`` with ``Access-Control-Request-Method``) may use."""
    return {"Access-Control-Allow-Methods": methods,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS)}
