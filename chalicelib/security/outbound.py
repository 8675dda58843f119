"""Which hosts and addresses the service may connect to on a caller's word (CI
federation's issuers and their ``jwks_uri``): public ones only.

A host is checked twice. Written down (a trust policy, a discovery document), it
is a DNS name or an address in its one canonical spelling: ``127.1``,
``2130706433``, ``0x7f000001``, ``0177.0.0.1`` are numbers a URL parser turns
into addresses (WHATWG URL "ends in a number"), so they are refused as written
(``host_problem``). Resolved, every address it has must be public
(``address_problem``): not loopback, private, link-local, multicast, reserved,
unspecified, shared (RFC 6598) or any other special-purpose block of the IANA
registries (RFC 6890), IPv4 inside IPv6 (mapped, NAT64, 6to4) judged as the IPv4
address it carries. The caller then connects to an address it checked, never
resolving the name again.

Loopback (127.0.0.0/8, ::1, ``localhost``) is allowed only where the caller says
so: the local stage's ``federation_allow_http``.
"""

from __future__ import annotations

import ipaddress
import re

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Special-purpose blocks that Python's ``is_private``/``is_global`` miss in some
# versions (3.11 counts multicast, 192.0.0.0/24 beyond /29 and several IPv6
# blocks as global). IANA IPv4/IPv6 Special-Purpose Address Registries, RFC 6890.
_NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20",
    "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")      # RFC 6052 §2.1, the well-known prefix
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMBER = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")
MAX_HOST = 253
LOCALHOST = "localhost"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: mapped (RFC 4291 §2.5.5.2), NAT64
    (RFC 6052) or 6to4 (RFC 3056)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_problem(address: Address, *, allow_loopback: bool = False) -> str | None:
    """Why the service may not connect to ``address``, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return f"{address} has a zone index"
        inner = _embedded_ipv4(address)
        if inner is not None:
            problem = address_problem(inner, allow_loopback=allow_loopback)
            return f"{address} carries {problem}" if problem else None
    kind = ("unspecified" if address.is_unspecified
            else "loopback" if address.is_loopback
            else "link-local" if address.is_link_local
            else "multicast" if address.is_multicast
            else "private" if address.is_private
            else "reserved" if address.is_reserved
            else "site-local" if isinstance(address, ipaddress.IPv6Address)
            and address.is_site_local
            else "special-purpose" if any(address in n for n in _NOT_PUBLIC
                                          if n.version == address.version)
            else "not globally reachable" if not address.is_global
            else None)
    if kind == "loopback" and allow_loopback:
        return None
    if kind is None:
        return None
    return f"{address}, {'an' if kind[0] in 'aeiou' else 'a'} {kind} address"


def host_problem(host: str, *, allow_loopback: bool = False) -> str | None:
    """Why ``host`` (a URL's host, lower case, IPv6 without brackets, as
    ``urlsplit(...).hostname`` gives it) may not be named, or None when it may.

    An address in its canonical spelling only (IPv4 dotted decimal, IPv6 as RFC
    5952 writes it), and public; or a DNS name of letters, digits, ``-`` and
    ``_`` labels with no trailing dot, whose last label is not a number (it would
    be read as an address), and not ``localhost`` (RFC 6761 §6.3) unless loopback
    is allowed. Where the name leads is ``address_problem``'s, once resolved.
    """
    if not host:
        return "no host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if str(address) != host:
            return (f"host {host} is an address in a non-canonical spelling; write it as "
                    f"{address}")
        problem = address_problem(address, allow_loopback=allow_loopback)
        return f"host {problem}; only public addresses may be used" if problem else None
    if len(host) > MAX_HOST or not host.isascii():
        return f"host {host[:80]!r} is not a DNS name (use its A-label, xn--, form)"
    labels = host.split(".")
    if labels[-1] == "":
        return f"host {host} ends with a dot"
    if _NUMBER.match(labels[-1]) or ":" in host:
        return (f"host {host} is a numeric address in a non-canonical spelling; write an "
                "IPv4 address as four decimal numbers without leading zeros (e.g. 203.0.113.7)")
    if not all(_LABEL.match(label) for label in labels):
        return f"host {host[:80]!r} is not a DNS name"
    if (labels[-1] == LOCALHOST) and not allow_loopback:
        return f"host {host} is a loopback name; only public hosts may be used"
    return None
