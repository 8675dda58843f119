"""A small OIDC issuer for the federation tests: a CI platform as Tessera sees it.

It holds its own RSA and EC keys, serves its discovery document and JWKS over
real HTTP (``http.server`` on 127.0.0.1, an ephemeral port, in a thread), and
mints GitHub-Actions-shaped job tokens with ``mint``. It records every path it
was asked for (``requests``), can be taken down (``down``: every answer is 503)
and can rotate its signing key (``rotate``), so tests see exactly what Tessera
fetched and when.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/.well-known/jwks"
REPOSITORY = "acme/app"
SUBJECT = f"repo:{REPOSITORY}:ref:refs/heads/main"
AUDIENCE = "tessera"


class SigningKey:
    """A private key with its kid and algorithm, and its public JWK."""

    def __init__(self, kid: str, alg: str) -> None:
        self.kid, self.alg = kid, alg
        if alg == "ES256":
            self.private: Any = ec.generate_private_key(ec.SECP256R1())
            algorithm: Any = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256)
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            algorithm = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256)
        self.jwk: dict[str, Any] = {**algorithm.to_jwk(self.private.public_key(), as_dict=True),
                                    "kid": kid, "alg": alg, "use": "sig"}

    def sign(self, claims: dict[str, Any], kid: str | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg,
                          headers={"kid": kid or self.kid, "typ": "JWT"})


class OidcIssuer:
    def __init__(self, now: Callable[[], int]) -> None:
        self.now = now
        self.rsa = SigningKey("rsa-1", "RS256")
        self.ec = SigningKey("ec-1", "ES256")
        self.published = [self.rsa, self.ec]
        self.signer = self.rsa
        self.requests: list[str] = []
        self.down = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- the server ---------------------------------------------------------------

    def start(self) -> OidcIssuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OidcIssuer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def documents(self) -> dict[str, dict[str, Any]]:
        return {DISCOVERY: {"issuer": self.url, "jwks_uri": self.url + JWKS,
                            "subject_types_supported": ["public", "pairwise"],
                            "response_types_supported": ["id_token"],
                            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf",
                                                 "ref", "repository", "repository_owner"]},
                JWKS: {"keys": [k.jwk for k in self.published]}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests.append(self.path)
                document = issuer.documents().get(self.path)
                status = 503 if issuer.down else 200 if document is not None else 404
                data = json.dumps(document if status == 200 else {"error": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        return Handler

    # -- keys and tokens -----------------------------------------------------------

    def rotate(self) -> SigningKey:
        """A new RSA key signs from now on; the JWKS publishes it next to the old ones."""
        fresh = SigningKey(f"rsa-{len(self.published) + 1}", "RS256")
        self.published.append(fresh)
        self.signer = fresh
        return fresh

    def claims(self, sub: str = SUBJECT, aud: str | list[str] = AUDIENCE,
               lifetime: int = 300, **claims: Any) -> dict[str, Any]:
        """The claims of a GitHub Actions job token (``None`` drops a claim)."""
        now = self.now()
        base: dict[str, Any] = {
            "iss": self.url, "sub": sub, "aud": aud, "jti": secrets.token_hex(16),
            "repository": REPOSITORY, "repository_owner": REPOSITORY.split("/")[0],
            "repository_id": "74", "ref": "refs/heads/main", "ref_type": "branch",
            "workflow": "ci", "event_name": "push", "run_id": "12345",
            "iat": now, "nbf": now, "exp": now + lifetime,
        }
        base.update(claims)
        return {k: v for k, v in base.items() if v is not None}

    def mint(self, sub: str = SUBJECT, aud: str | list[str] = AUDIENCE, *,
             key: SigningKey | None = None, kid: str | None = None, lifetime: int = 300,
             **claims: Any) -> str:
        """A job token signed by ``key`` (default: the current signing key)."""
        return (key or self.signer).sign(self.claims(sub, aud, lifetime, **claims), kid=kid)
