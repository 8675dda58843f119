"""Discovery (OIDC Discovery, RFC 8414), the JWK Set (RFC 7517) and the OpenAPI
document of the JSON API (SPEC §2)."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.container import container
from chalicelib.http import api_endpoint, issuer_of, json_response
from chalicelib.routes import endpoints
from chalicelib.routes.cors import cors, preflight

bp = Blueprint(__name__)

PUBLIC_CACHE = {"Cache-Control": "public, max-age=300"}
PUBLIC_PATHS = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
                "/.well-known/jwks.json")


def _metadata() -> Response:
    from chalicelib import grants
    from chalicelib.services.discovery import metadata_json

    c = container()
    document = metadata_json(issuer_of(bp.current_request, c.settings), c.settings,
                             grants.grant_types(), tuple(endpoints().items()))
    return json_response(document, headers=PUBLIC_CACHE, no_store=False)


@bp.route("/.well-known/openid-configuration", methods=["GET"])
@cors(bp, public=True)
@api_endpoint
def openid_configuration() -> Response:
    """OIDC Discovery 1.0 §4."""
    return _metadata()


@bp.route("/.well-known/oauth-authorization-server", methods=["GET"])
@cors(bp, public=True)
@api_endpoint
def oauth_authorization_server() -> Response:
    """RFC 8414 §3: the same metadata (Tessera's issuer has no path component)."""
    return _metadata()


@bp.route("/.well-known/jwks.json", methods=["GET"])
@cors(bp, public=True)
@api_endpoint
def jwks() -> Response:
    return json_response(container().keyring.jwks_json(), headers=PUBLIC_CACHE, no_store=False)


# Browser apps read these from any origin, without credentials (SPEC §2).
for _path in PUBLIC_PATHS:
    preflight(bp, _path, "GET", public=True)


@bp.route("/openapi.json", methods=["GET"])
@api_endpoint
def openapi() -> Response:
    from chalicelib import openapi as spec  # here, not at import: SPEC §9

    c = container()
    return json_response(spec.served(issuer_of(bp.current_request, c.settings), c.settings.scopes,
                                     tuple(sorted(c.settings.api_sets))),
                         headers=PUBLIC_CACHE, no_store=False)
