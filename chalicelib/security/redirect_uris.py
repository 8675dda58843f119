"""Redirect URIs of the authorization code flow: which may be registered, which match.

RFC 6749 §3.1.2: an absolute URI without a fragment; the authorization server
compares the one presented with the registered ones (§3.1.2.3), here exactly
(RFC 9700 §4.1.3: simple string comparison), except for native apps' loopback
redirects, whose port is chosen at run time: RFC 8252 §7.3 "The authorization
server MUST allow any port to be specified at the time of the request for
loopback IP redirect URIs".
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

MAX_URI = 2000
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")


def registrable(uri: str) -> str | None:
    """Why ``uri`` cannot be registered, or None if it can.

    https anywhere; plain http only on a loopback address or localhost (local
    development, RFC 8252 §7.3); a private-use scheme of a native app (RFC 8252
    §7.1: reverse domain name, so it contains a dot).
    """
    if not uri or len(uri) > MAX_URI or not uri.isprintable() or " " in uri:
        return "must be 1-2000 printable characters without spaces"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "is not a valid URI"
    if parts.fragment or "#" in uri:
        return "must not contain a fragment (RFC 6749 §3.1.2)"
    scheme = parts.scheme.lower()
    if scheme == "https":
        return None if parts.hostname else "needs a host"
    if scheme == "http":
        if parts.hostname in ("127.0.0.1", "::1", "localhost"):
            return None
        return "may use http only on a loopback address (use https)"
    if "." in scheme and parts.path:
        return None
    return "must be https, http on a loopback address, or a private-use scheme like com.example.app:/cb"


def _loopback_without_port(uri: str) -> str | None:
    """``uri`` with its port removed, if it is an http loopback IP redirect."""
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if parts.scheme != "http" or name not in LOOPBACK_HOSTS:
        return None
    try:
        parts.port  # noqa: B018 - a malformed port is no match
    except ValueError:
        return None
    return urlunsplit((parts.scheme, name, parts.path, parts.query, ""))


def matches(presented: str, registered: str) -> bool:
    """RFC 6749 §3.1.2.3 exact match; loopback IP redirects match on any port."""
    if presented == registered:
        return True
    a, b = _loopback_without_port(presented), _loopback_without_port(registered)
    return a is not None and a == b


def choose(presented: str | None, registered: tuple[str, ...]) -> str | None:
    """The redirect URI of a request (RFC 6749 §3.1.2.3): the presented one if it
    matches a registered one; none presented: the only registered one. None: refused."""
    if presented is None:
        return registered[0] if len(registered) == 1 else None
    return presented if any(matches(presented, r) for r in registered) else None
