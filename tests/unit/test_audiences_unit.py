"""Resolving an access token's audience (RFC 8707 §2), with a fake clients table."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.clock import FakeClock
from chalicelib.errors import InvalidTarget
from chalicelib.models import Client
from chalicelib.services.audiences import Audiences, audience_of, parse_resources
from chalicelib.services.tokens import audience as own_audience
from tests.unit.fakes import ISSUER, settings

ORDERS, BILLING = "https://orders.example/api", "urn:example:billing"


class FakeClients:
    """Resource URIs -> their server; counts lookups."""

    def __init__(self, **servers: str) -> None:
        self.servers = {uri: server for server, uri in servers.items()}
        self.lookups: list[str] = []

    def resource_server(self, uri: str) -> str | None:
        self.lookups.append(uri)
        return self.servers.get(uri)


def audiences(clients: FakeClients, clock: FakeClock | None = None, **overrides: Any) -> Audiences:
    return Audiences(clients, clock or FakeClock(), settings(**overrides))  # type: ignore[arg-type]


def resolve(service: Audiences, client: Client, resources: tuple[str, ...]) -> str | list[str]:
    """The ``aud`` of an access token (RFC 8707 §2), as the grants compose it: the
    checked resource(s), or the client's default audience, else Tessera's own API."""
    return audience_of(client, service.check(resources, ISSUER)) \
        or own_audience(service.settings, ISSUER)


def test_no_resource_is_the_client_default_else_tesseras_own_api():
    service = audiences(FakeClients())
    assert resolve(service, Client("cli"), ()) == ISSUER
    assert resolve(service, Client("cli", default_audience=ORDERS), ()) == ORDERS
    assert resolve(audiences(FakeClients(), audience="https://api.tessera.test"),
                   Client("cli"), ()) == "https://api.tessera.test"


def test_one_resource_is_a_string_several_are_a_list():
    service = audiences(FakeClients(orders=ORDERS, billing=BILLING))
    assert resolve(service, Client("cli"), (ORDERS,)) == ORDERS
    assert resolve(service, Client("cli"), (ORDERS, BILLING)) == [ORDERS, BILLING]
    assert audience_of(Client("cli"), ()) is None


def test_an_unregistered_resource_is_invalid_target_but_the_issuer_is_always_known():
    clients = FakeClients(orders=ORDERS)
    service = audiences(clients)
    with pytest.raises(InvalidTarget):
        resolve(service, Client("cli"), (ORDERS, "https://nobody.example"))
    assert resolve(service, Client("cli"), (ISSUER,)) == ISSUER
    assert ISSUER not in clients.lookups


def test_registrations_are_cached_for_a_minute():
    clients, clock = FakeClients(orders=ORDERS), FakeClock()
    service = audiences(clients, clock)
    for _ in range(3):
        service.check((ORDERS,), ISSUER)
    assert clients.lookups == [ORDERS]
    clock.advance(60)
    service.check((ORDERS,), ISSUER)
    assert clients.lookups == [ORDERS, ORDERS]


@pytest.mark.parametrize("raw", ["relative/path", "/abs/path", "https://a.example/#f",
                                 "https://a.example/#", "1http://x", "https://" + "a" * 1100,
                                 "https://a.example/\x7f"])
def test_a_malformed_resource_is_invalid_target(raw):
    with pytest.raises(InvalidTarget):
        parse_resources(raw)


def test_resources_are_deduplicated_in_order_and_capped():
    assert parse_resources(f"{ORDERS} {BILLING} {ORDERS}") == (ORDERS, BILLING)
    assert parse_resources(None) == ()
    with pytest.raises(InvalidTarget):
        parse_resources(" ".join(f"urn:example:r{i}" for i in range(11)))
