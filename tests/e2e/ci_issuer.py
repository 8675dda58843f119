"""A local OIDC issuer standing in for GitHub Actions (SPEC §6 federation, issue 14).

It publishes discovery and a JWKS like ``token.actions.githubusercontent.com``,
and answers the runner's ID-token request (``ACTIONS_ID_TOKEN_REQUEST_URL``,
``Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN``, ``&audience=…``) with
``{"value": <ES256 JWT>}`` for a fixed job. Plain HTTP on 127.0.0.1: Tessera
accepts it only with ``TESSERA_FEDERATION_ALLOW_HTTP`` on, as the local stage sets.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

RUNNER_SECRET = "runner-request-token"
KID = "ci-key-1"


@dataclass
class CiIssuer:
    url: str
    subject: str
    claims: dict[str, Any]
    requests: list[dict[str, Any]]


@contextmanager
def ci_issuer(subject: str = "repo:acme/app:ref:refs/heads/main",
              claims: dict[str, Any] | None = None) -> Iterator[CiIssuer]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    extra = {"repository_owner": "acme", "repository": "acme/app", **(claims or {})}
    state = CiIssuer("", subject, extra, [])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _json(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/.well-known/openid-configuration":
                self._json(200, {"issuer": state.url, "jwks_uri": f"{state.url}/.well-known/jwks",
                                 "id_token_signing_alg_values_supported": ["ES256"],
                                 "response_types_supported": ["id_token"],
                                 "subject_types_supported": ["public", "pairwise"]})
            elif url.path == "/.well-known/jwks":
                self._json(200, {"keys": [{**public, "kid": KID, "alg": "ES256", "use": "sig"}]})
            elif url.path == "/token-request":
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                state.requests.append({"query": query, "authorization": self.headers.get("Authorization")})
                if self.headers.get("Authorization", "").lower() != f"bearer {RUNNER_SECRET}":
                    self._json(401, {"message": "bad runner token"})
                    return
                now = int(time.time())
                token = jwt.encode({"iss": state.url, "sub": state.subject,
                                    "aud": query.get("audience", state.url), "iat": now, "nbf": now,
                                    "exp": now + 300, "jti": str(uuid.uuid4()), **state.claims},
                                   key, algorithm="ES256", headers={"kid": KID})
                self._json(200, {"count": 1, "value": token})
            else:
                self._json(404, {"message": "not found"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
