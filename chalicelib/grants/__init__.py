"""One module per grant type, all of the same shape, found through ``registry()``.

Every grant module exports:

* ``GRANT_TYPE``: the ``grant_type`` value it handles;
* ``prefetch(ctx, params) -> {table kind: [keys]}``: items it needs, read by the
  token endpoint in the same BatchGetItem as the client (SPEC §9 budgets);
* ``handle(ctx, client, params, items) -> dict``: validate the request, then
  create the RFC 6749 §5.1 token response.

The token endpoint dispatches here; an unknown grant type is
``unsupported_grant_type`` (RFC 6749 §5.2), never an ``if`` chain.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import Any

from chalicelib.container import Container
from chalicelib.errors import InvalidRequest, InvalidScope
from chalicelib.models import Client

_MODULES: tuple[str, ...] = ("password", "refresh_token", "device_code")

# RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E
_SCOPE_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}
MAX_PARAM = 4096


@dataclass
class TokenContext:
    """What a grant needs besides its parameters."""

    c: Container
    issuer: str
    source_ip: str
    user_agent: str
    items: dict[str, dict[str, Any]] = field(default_factory=dict)


@lru_cache(maxsize=1)
def registry() -> dict[str, ModuleType]:
    """grant_type -> module, imported on first use."""
    found: dict[str, ModuleType] = {}
    for name in _MODULES:
        module = importlib.import_module(f"chalicelib.grants.{name}")
        found[module.GRANT_TYPE] = module
    return found


def required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise InvalidRequest(f"Missing required parameter '{name}'")
    return value


def parse_scope(raw: str | None) -> tuple[str, ...] | None:
    """RFC 6749 §3.3: space-delimited, case-sensitive scope tokens."""
    if raw is None:
        return None
    tokens = raw.split(" ")
    if any(not t or not set(t) <= _SCOPE_CHARS for t in tokens):
        raise InvalidScope("The scope parameter is malformed")
    return tuple(dict.fromkeys(tokens))


def scope_for_client(client: Client, requested: tuple[str, ...] | None) -> tuple[str, ...]:
    """Requested scopes must be allowed to the client; none requested: all of them."""
    if requested is None:
        return client.scopes
    extra = [s for s in requested if s not in client.scopes]
    if extra:
        raise InvalidScope(f"Scope not allowed for this client: {' '.join(extra)}")
    return requested
