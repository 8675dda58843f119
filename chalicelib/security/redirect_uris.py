"""Redirect URIs of the authorization code flow: which may be registered, which match.

RFC 6749 §3.1.2: an absolute URI without a fragment; the authorization server
compares the one presented with the registered ones (§3.1.2.3), here by exact
string comparison (RFC 9700 §2.1, §4.1.3), with one exception: a loopback IP
redirect (``http://127.0.0.1`` or ``http://[::1]``), whose port a native app
chooses at run time (RFC 8252 §7.3: "The authorization server MUST allow any
port to be specified at the time of the request for loopback IP redirect URIs").
``http://localhost`` may be registered, but matches exactly only: RFC 8252 §8.3
makes the loopback IP literal, not localhost, the native app's redirect.

For the loopback exception the presented string is read by one strict parser
(``_parse``), which refuses anything a browser could read differently; its
scheme, host, path and query must equal the registered URI's, only its port may
differ, and the URI chosen is the *registered* string with that port put in; the
presented string must then be identical to it. So the browser is only ever sent
to a registered string (with its port substituted), never to what a request sent,
and what a request sent is, when accepted, exactly that string (the code is bound
to it, RFC 6749 §4.1.3).

Registration (``registrable``) refuses what could be read two ways: userinfo,
fragments, backslashes, whitespace and control characters, percent-encoded
delimiters, upper-case schemes and hosts, trailing dots, numeric hosts other than
a canonical dotted quad or IPv6 literal, ports with leading zeros.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

MAX_URI = 2000
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")
LOCALHOST = "localhost"

# RFC 3986 §2.2, §2.3 characters, without "@" (userinfo) and "#" (fragment):
# no space, no control character, no backslash, nothing outside ASCII.
_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:/?%\[\]]*")
_PERCENT = re.compile(r"%(.{0,2})", re.DOTALL)
# Percent-encoded characters that delimit or escape: refused anywhere (a parser
# that decodes before splitting would see another URI).
_ENCODED_DELIMITERS = frozenset(
    [f"{c:02X}" for c in range(0x21)] + ["7F", "2F", "5C", "40", "23", "3F", "3A", "5B", "5D",
                                         "25", "2E"])
_HTTP = re.compile(r"(?P<scheme>https?)://(?P<host>\[[^\]/?]*\]|[^:/?\[\]]*)"
                   r"(?::(?P<port>[^/?]*))?(?P<rest>(?:/[^?]*)?(?:\?.*)?)", re.DOTALL)
_PRIVATE = re.compile(r"(?P<scheme>[a-z][a-z0-9+\-]*(?:\.[a-z0-9+\-]+)+):(?P<rest>/.*)", re.DOTALL)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?")
_PORT = re.compile(r"[1-9][0-9]{0,4}")


@dataclass(frozen=True)
class Uri:
    """An http(s) URI that passed ``_parse``: each part exactly as written."""

    scheme: str
    host: str      # a lower-case name, a canonical dotted quad, or a canonical [IPv6]
    port: str      # the digits as written; "" when there is none
    rest: str      # path and query as written

    def with_port(self, port: str) -> str:
        return f"{self.scheme}://{self.host}{':' + port if port else ''}{self.rest}"


class Refused(ValueError):
    """Why a URI cannot be a redirect URI."""


def _characters(uri: str) -> None:
    if not uri or len(uri) > MAX_URI:
        raise Refused("must be 1-2000 characters")
    if "#" in uri:
        raise Refused("must not contain a fragment (RFC 6749 §3.1.2)")
    if "@" in uri:
        raise Refused("must not contain userinfo or '@' (RFC 9700 §4.1.3)")
    if "\\" in uri:
        raise Refused("must not contain a backslash")
    if not _CHARS.fullmatch(uri):
        raise Refused("must be printable ASCII without spaces, tabs, newlines or characters "
                      "outside RFC 3986")
    for encoded in _PERCENT.findall(uri):
        if len(encoded) != 2 or not all(c in "0123456789abcdefABCDEF" for c in encoded):
            raise Refused("has a malformed percent-encoding")
        if encoded.upper() in _ENCODED_DELIMITERS:
            raise Refused(f"must not percent-encode a delimiter, dot or control character "
                          f"(%{encoded})")


def _host(host: str) -> None:
    """A host written one way only: lower case, no trailing dot, and a number only
    as a canonical dotted quad or IPv6 literal (WHATWG URL reads ``127.1``,
    ``0x7f.1`` or ``2130706433`` as IPv4 addresses)."""
    if host.startswith("["):
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise Refused("has an invalid IPv6 address") from None
        if f"[{address.compressed}]" != host or address.ipv4_mapped is not None:
            raise Refused(f"must write its IPv6 address as [{address.compressed}]")
        return
    if not host:
        raise Refused("needs a host")
    if host.endswith("."):
        raise Refused("must not end its host with a dot")
    if host != host.lower():
        raise Refused("must write its scheme and host in lower case")
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise Refused("has an invalid host name")
    last = labels[-1]
    if last.isdigit() or re.fullmatch(r"0x[0-9a-f]*", last):
        if len(labels) != 4 or not all(label.isdigit() and str(int(label)) == label
                                       and int(label) <= 255 for label in labels):
            raise Refused("must write a numeric host as a dotted quad like 192.0.2.1")


def _rest(rest: str) -> None:
    path = rest.partition("?")[0]
    if any(segment in (".", "..") for segment in path.split("/")):
        raise Refused("must not contain . or .. path segments")


def _parse(uri: str) -> Uri:
    """The one strict parser of http(s) redirect URIs: every part as written, or
    ``Refused`` for anything that a browser or another parser could read differently."""
    _characters(uri)
    found = _HTTP.fullmatch(uri)
    if found is None:
        scheme = uri.partition(":")[0]
        if scheme != scheme.lower():
            raise Refused("must write its scheme and host in lower case")
        raise Refused("is not an absolute http(s) URI")
    host, port, rest = found["host"], found["port"], found["rest"]
    _host(host)
    if port is not None and not (_PORT.fullmatch(port) and int(port) <= 65535):
        raise Refused("must have a port of 1-65535 without leading zeros")
    _rest(rest)
    return Uri(found["scheme"], host, port or "", rest)


def _why(uri: str) -> None:
    if uri.lower().startswith(("http:", "https:")):
        parsed = _parse(uri)
        if parsed.scheme == "https":
            return
        if parsed.host in (*LOOPBACK_HOSTS, LOCALHOST):
            return
        raise Refused("may use http only on a loopback address (use https)")
    _characters(uri)
    found = _PRIVATE.fullmatch(uri)
    if found is None:
        raise Refused("must be https, http on a loopback address, or a private-use scheme "
                      "like com.example.app:/cb")
    _rest(found["rest"])


def registrable(uri: str) -> str | None:
    """Why ``uri`` cannot be registered, or None if it can.

    https anywhere; plain http only on a loopback address or localhost (local
    development, RFC 8252 §7.3, §8.3); a private-use scheme of a native app
    (RFC 8252 §7.1: reverse domain name, so it contains a dot).
    """
    try:
        _why(uri)
    except Refused as refused:
        return str(refused)
    return None


def _loopback(registered: str) -> Uri | None:
    """``registered`` parsed, if it is an http loopback IP redirect (RFC 8252 §7.3)."""
    try:
        parsed = _parse(registered)
    except Refused:
        return None
    return parsed if parsed.scheme == "http" and parsed.host in LOOPBACK_HOSTS else None


def match(presented: str, registered: str) -> str | None:
    """The URI to redirect to if ``presented`` matches ``registered``: ``registered``
    itself, or for a loopback IP redirect ``registered`` with the presented port."""
    if registrable(registered) is not None:
        return None       # registered under older rules and bendable: matches nothing
    if presented == registered:
        return registered  # RFC 6749 §3.1.2.3, RFC 9700 §4.1.3: simple string comparison
    base = _loopback(registered)
    if base is None:
        return None
    try:
        got = _parse(presented)
    except Refused:
        return None
    if (got.scheme, got.host, got.rest) != (base.scheme, base.host, base.rest):
        return None
    chosen = base.with_port(got.port)
    # Belt and braces: what the request sent is exactly what the browser is sent to.
    return chosen if chosen == presented else None


def matches(presented: str, registered: str) -> bool:
    """RFC 6749 §3.1.2.3 exact match; loopback IP redirects match on any port."""
    return match(presented, registered) is not None


def choose(presented: str | None, registered: tuple[str, ...]) -> str | None:
    """The redirect URI of a request (RFC 6749 §3.1.2.3): a registered one (for a
    loopback IP, with the presented port); none presented: the only registered one.
    None: refused (never redirect)."""
    if presented is None:
        if len(registered) == 1 and registrable(registered[0]) is None:
            return registered[0]
        return None
    for uri in registered:
        chosen = match(presented, uri)
        if chosen is not None:
            return chosen
    return None
