"""The scope parameter (RFC 6749 §3.3) and what a client may ask for: one rule for
the token endpoint, the device authorization endpoint and the authorization endpoint."""

from __future__ import annotations

from chalicelib.errors import InvalidScope
from chalicelib.models import Client

# RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E
_SCOPE_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}


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
