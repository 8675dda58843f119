"""Roles that trust CI issuers, made through ``RolesRepo`` (the /v1/roles API is
another part of the work), and the token exchange request of a CI job."""

from __future__ import annotations

from typing import Any

from chalicelib.storage.roles import Role, TrustPolicy, owner_id_of
from tests.api.helpers import form

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ROLE = "alice.ci"
POLICY = "data:get@urn:tessera:data:alice.*"


def trust(issuer: str, subject: str = "repo:acme/app:ref:refs/heads/main", *,
          audience: str = "tessera", trust_id: str = "t1", **claims: str) -> TrustPolicy:
    return TrustPolicy(id=trust_id, issuer=issuer, audience=audience, subject=subject,
                       claims=claims, created_at=1)


def make_role(ctr: Any, *policies: TrustPolicy, name: str = ROLE,
              permissions: tuple[str, ...] = (POLICY,)) -> Role:
    owner = owner_id_of(name)
    assert owner is not None
    role = Role(name=name, owner=owner, description="CI", created_at=ctr.clock.now(),
                policies={f"p{i}": p for i, p in enumerate(permissions)},
                trust={p.id: p for p in policies})
    ctr.roles_repo.create(role)
    return role


def exchange(client: Any, subject_token: str | None, role: str = ROLE,
             headers: dict[str, str] | None = None, **params: str | None) -> Any:
    fields = {"grant_type": EXCHANGE, "subject_token": subject_token,
              "subject_token_type": ID_TOKEN, "audience": f"urn:tessera:role:{role}", **params}
    return form(client, "/oauth/token", headers=headers,
                **{k: v for k, v in fields.items() if v is not None})


class Listener:
    """A bare TCP listener on 127.0.0.1 (an ephemeral port) that records every
    connection made to it and the first bytes sent (a TLS ClientHello names its
    SNI there), answering nothing: the target an SSRF would reach."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.connections: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:          # the accept timeout, or the socket closed
                continue
            with conn:
                conn.settimeout(0.5)
                try:
                    first = conn.recv(4096)
                except OSError:
                    first = b""
                self.connections.append(first)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
