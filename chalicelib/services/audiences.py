"""Audiences of access tokens: resource indicators (RFC 8707) and defaults (SPEC §4).

A resource server is a client registered with the URIs it answers for
(``Client.resources``). A token request may name one or more of them with
``resource``; the access token's ``aud`` is then that URI, or the list of them.
With no ``resource``, ``aud`` is the client's ``default_audience`` if it has
one, else Tessera's own API (the configured audience, else the issuer). The
issuer itself is always a valid ``resource``: a token for Tessera's own API and
another resource names both.

Registered URIs are configuration, like clients: cached per instance for a
minute, so a warm token request spends no read on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import InvalidTarget
from chalicelib.models import Client
from chalicelib.services.memo import Memo
from chalicelib.services.tokens import audience as own_audience
from chalicelib.storage.identities import ClientsRepo

# A request may name this many resources at most (each one a lookup when not cached).
MAX_RESOURCES = 10
MAX_RESOURCE_LENGTH = 1024


def well_formed_resource(uri: str) -> bool:
    """RFC 8707 §2: "an absolute URI, as specified by Section 4.3 of [RFC3986]";
    it "MUST NOT include a fragment component"."""
    if not uri or len(uri) > MAX_RESOURCE_LENGTH or not uri.isprintable() or " " in uri:
        return False
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return bool(parts.scheme) and parts.scheme[0].isalpha() and "#" not in uri \
        and bool(parts.netloc or parts.path)


def parse_resources(raw: str | None) -> tuple[str, ...]:
    """The ``resource`` values of a token request (the form parser joins a
    repeated ``resource`` with spaces, which no URI contains), deduplicated."""
    if not raw:
        return ()
    values = tuple(dict.fromkeys(raw.split(" ")))
    if len(values) > MAX_RESOURCES:
        raise InvalidTarget(f"At most {MAX_RESOURCES} resources may be requested at once")
    for uri in values:
        if not well_formed_resource(uri):
            raise InvalidTarget("The resource parameter must be an absolute URI without a fragment")
    return values


def audience_of(client: Client, resources: Sequence[str]) -> str | list[str] | None:
    """The ``aud`` for resources already checked: one URI, a list of them, the
    client's default audience, or None for Tessera's own API."""
    if not resources:
        return client.default_audience or None
    return resources[0] if len(resources) == 1 else list(resources)


class Audiences:
    def __init__(self, clients: ClientsRepo, clock: Clock, settings: Settings,
                 ttl: int = 60) -> None:
        self.clients = clients
        self.clock = clock
        self.settings = settings
        self._registered: Memo[bool] = Memo(clock, ttl)

    def registered(self, uri: str) -> bool:
        """Whether a resource server answers for ``uri`` (cached a minute)."""
        return self._registered.answer(
            uri, lambda u: self.clients.resource_server(u) is not None)

    def check(self, resources: Sequence[str], issuer: str) -> tuple[str, ...]:
        """RFC 8707 §2: every requested resource is known, else invalid_target."""
        own = own_audience(self.settings, issuer)
        unknown = [uri for uri in resources if uri != own and not self.registered(uri)]
        if unknown:
            raise InvalidTarget(f"Unknown resource: {unknown[0]}")
        return tuple(resources)
