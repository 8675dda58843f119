"""One module per grant type, all of the same shape, found through ``lookup()``.

Every grant module exports:

* ``GRANT_TYPE``: the ``grant_type`` value it handles;
* ``ANONYMOUS``: whether a request may name no client at all (the token
  exchange of a CI job token, whose token is the credential); a client that
  does identify itself is authenticated all the same;
* ``prefetch(ctx, params) -> {table kind: [keys]}``: items it needs, read by the
  token endpoint in the same BatchGetItem as the client (SPEC §9 budgets);
* ``handle(ctx, client, params, items) -> dict``: validate the request, then
  create the RFC 6749 §5.1 token response (``client`` is None only for an
  anonymous request).

A grant gets its collaborators from ``ctx.deps`` (``GrantDeps``), which the token
endpoint builds from the composition root; each is built on first use, so a
refresh never builds what only the password grant needs (cold start).

The token endpoint dispatches here; an unknown grant type is
``unsupported_grant_type`` (RFC 6749 §5.2), never an ``if`` chain.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from chalicelib.errors import InvalidRequest
from chalicelib.models import Client
from chalicelib.security.scopes import parse_scope, scope_for_client
from chalicelib.services.audiences import audience_of, parse_resources

__all__ = [
    "GrantDeps",
    "TokenContext",
    "parse_scope",
    "requested_audience",
    "required",
    "scope_for_client",
]

if TYPE_CHECKING:
    from chalicelib.services.audiences import Audiences
    from chalicelib.services.authn import PasswordSignIn
    from chalicelib.services.authorization import Authorization
    from chalicelib.services.delegation import Delegation
    from chalicelib.services.device_flow import DeviceFlow
    from chalicelib.services.federation import Federation
    from chalicelib.services.sessions import Sessions
    from chalicelib.services.tokens import TokenIssuer
    from chalicelib.storage.identities import UsersRepo
    from chalicelib.storage.throttle import ThrottleRepo

# grant_type -> its module (each module's GRANT_TYPE, checked by the tests): a token
# request imports only its grant's module (SPEC §9, cold start).
_MODULES: dict[str, str] = {
    "password": "password",
    "refresh_token": "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code": "device_code",
    "client_credentials": "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange": "token_exchange",
    "authorization_code": "authorization_code",
}

MAX_PARAM = 4096


class GrantDeps:
    """The services a grant may use. Each is given as a zero-argument callable and
    called on first use (the composition root builds each once per process)."""

    def __init__(self, *, sessions: Callable[[], Sessions],
                 token_issuer: Callable[[], TokenIssuer],
                 password_signin: Callable[[], PasswordSignIn],
                 device_flow: Callable[[], DeviceFlow], users: Callable[[], UsersRepo],
                 throttle: Callable[[], ThrottleRepo],
                 federation: Callable[[], Federation] | None = None,
                 audiences: Callable[[], Audiences] | None = None,
                 authorization: Callable[[], Authorization] | None = None,
                 delegation: Callable[[], Delegation] | None = None) -> None:
        self._sessions = sessions
        self._audiences = audiences
        self._token_issuer = token_issuer
        self._password_signin = password_signin
        self._device_flow = device_flow
        self._users = users
        self._throttle = throttle
        self._federation = federation
        self._authorization = authorization
        self._delegation = delegation

    @property
    def sessions(self) -> Sessions:
        return self._sessions()

    @property
    def token_issuer(self) -> TokenIssuer:
        return self._token_issuer()

    @property
    def password_signin(self) -> PasswordSignIn:
        return self._password_signin()

    @property
    def device_flow(self) -> DeviceFlow:
        return self._device_flow()

    @property
    def users(self) -> UsersRepo:
        return self._users()

    @property
    def throttle(self) -> ThrottleRepo:
        return self._throttle()

    @property
    def federation(self) -> Federation:
        if self._federation is None:
            raise AssertionError("no federation service was given to this grant context")
        return self._federation()

    @property
    def audiences(self) -> Audiences:
        assert self._audiences is not None, "no audiences given to this grant"
        return self._audiences()

    @property
    def authorization(self) -> Authorization:
        if self._authorization is None:
            raise RuntimeError("no authorization service was given")
        return self._authorization()

    @property
    def delegation(self) -> Delegation:
        if self._delegation is None:
            raise RuntimeError("no delegation service was given")
        return self._delegation()


@dataclass(frozen=True)
class TokenContext:
    """What a grant needs besides its parameters."""

    deps: GrantDeps
    issuer: str
    source_ip: str
    user_agent: str
    # The client the request names, not yet authenticated (prefetch may read what
    # belongs to it in the same batch); None when it names none (ANONYMOUS).
    client_id: str | None = None


def grant_types() -> tuple[str, ...]:
    """Every grant type, in the order discovery lists them; nothing imported."""
    return tuple(_MODULES)


def lookup(grant_type: str) -> ModuleType | None:
    """The module of one grant type, imported on first use; None if unknown."""
    name = _MODULES.get(grant_type)
    return importlib.import_module(f"chalicelib.grants.{name}") if name else None


def required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise InvalidRequest(f"Missing required parameter '{name}'")
    return value


def requested_audience(ctx: TokenContext, client: Client,
                       params: dict[str, str]) -> tuple[tuple[str, ...], str | list[str] | None]:
    """RFC 8707 §2: the ``resource`` values of a token request, each checked to
    be registered (else invalid_target), and the ``aud`` they give (None:
    Tessera's own API). A request naming no resource builds nothing."""
    resources = parse_resources(params.get("resource"))
    if resources:
        resources = ctx.deps.audiences.check(resources, ctx.issuer)
    return resources, audience_of(client, resources)
