"""OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414 §2).

Lists exactly what works: the route passes the grant types of the grant
registry and the endpoints whose routes exist. The same document is served at
``/.well-known/openid-configuration`` and ``/.well-known/oauth-authorization-server``
(RFC 8414 §3).
"""

from __future__ import annotations

import json
from functools import lru_cache

from chalicelib.config import Settings
from chalicelib.services.mfa_policy import ACR_MFA, ACR_PASSWORD
from chalicelib.services.signing import supported_algorithms


@lru_cache(maxsize=8)
def metadata_json(issuer: str, settings: Settings, grant_types: tuple[str, ...],
                  endpoints: tuple[tuple[str, str], ...]) -> str:
    """The discovery document for one issuer, built once and kept as text.

    ``endpoints``: (metadata name, path) of each endpoint that exists.
    """
    grants = sorted(grant_types)
    auth_methods = ["client_secret_basic", "client_secret_post", "none"]
    doc: dict[str, object] = {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": list(settings.scopes),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "subject_types_supported": ["public"],
        # OIDC Discovery §3: the levels acr_values may ask for (SPEC §11).
        "acr_values_supported": [ACR_PASSWORD, ACR_MFA],
        # OIDC Core §15.1: RS256 always, beside the stage's default (SPEC §4).
        "id_token_signing_alg_values_supported": list(supported_algorithms(settings.signing_alg)),
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "sid", "nonce",
                             "at_hash", "azp", "amr", "acr",
                             "email", "given_name", "family_name", "preferred_username"],
    }
    if grants:
        doc["token_endpoint"] = f"{issuer}/oauth/token"
        doc["grant_types_supported"] = grants
        doc["token_endpoint_auth_methods_supported"] = auth_methods
    for name, path in endpoints:
        doc[name] = f"{issuer}{path}"
        if name in ("revocation_endpoint", "introspection_endpoint"):
            doc[name.replace("_endpoint", "_endpoint_auth_methods_supported")] = (
                auth_methods if name == "revocation_endpoint" else auth_methods[:2])
    return json.dumps(doc, separators=(",", ":"))
