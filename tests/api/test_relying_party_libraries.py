"""Discovery and tokens as unmodified relying-party libraries see them.

* Authlib's metadata models (``OpenIDProviderMetadata``, RFC 8414's
  ``AuthorizationServerMetadata``) validate every field this service publishes.
  ``authorization_endpoint`` and ``response_types_supported`` come with the
  authorization endpoint (issue 13, web sign-in): until then the two validators
  that require them are the only ones not run here.
* requests-oauth2client, whose clients expect RS256 ID tokens by default, gets
  its tokens over its own HTTP code (routed into the app in process) and
  validates the ID token of a client registered for RS256 with its defaults.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata
from requests_oauth2client import AuthorizationResponse, OAuth2Client

from tests.api.helpers import CLI, body, seed
from tests.conftest import ISSUER

RS_CLI = "rs256-cli"
# Helpers of the models, not validators of a field.
HELPERS = {"validate_array_value", "validate_language_tags_array", "validate_boolean_value"}


@pytest.fixture(autouse=True)
def _seeded(ctr: Any) -> None:
    seed(ctr)
    ctr.identities.create_client(RS_CLI, public=True, grant_types=["password", "refresh_token"],
                                 scopes=["openid", "profile", "email"],
                                 id_token_signed_response_alg="RS256")


def field_validators(model: type) -> list[str]:
    return sorted(n for n in dir(model) if n.startswith("validate_") and n not in HELPERS)


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration",
                                  "/.well-known/oauth-authorization-server"])
@pytest.mark.parametrize("model", [OpenIDProviderMetadata, AuthorizationServerMetadata])
def test_authlib_validates_every_published_field_of_discovery(client, path, model):
    doc = body(client.http.get(path))
    metadata = model(doc)
    validators = field_validators(model)
    for name in validators:
        getattr(metadata, name)()          # raises ValueError on a bad or missing field
    metadata.validate()                    # and all of them at once, as a client would
    assert "validate_authorization_endpoint" in validators
    assert "validate_id_token_signing_alg_values_supported" in validators \
        or model is AuthorizationServerMetadata


def test_authlib_refuses_discovery_without_rs256(client):
    """The validator the RS256 family satisfies (OIDC Discovery §3: RS256 MUST be listed)."""
    doc = body(client.http.get("/.well-known/openid-configuration"))
    doc["id_token_signing_alg_values_supported"] = ["ES256"]
    with pytest.raises(ValueError, match="RS256"):
        OpenIDProviderMetadata(doc).validate_id_token_signing_alg_values_supported()


class ChaliceAdapter(requests.adapters.BaseAdapter):
    """A requests transport that hands each request to the app in process."""

    def __init__(self, app_client: Any) -> None:
        super().__init__()
        self.app_client = app_client

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        data = request.body.encode() if isinstance(request.body, str) else request.body
        answer = self.app_client.http.request(request.method or "GET", path,
                                              headers=dict(request.headers), body=data or b"")
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers.update({k: v if isinstance(v, str) else ", ".join(v)
                                 for k, v in answer.headers.items()})
        response._content = answer.body
        response.url, response.request = request.url or "", request
        return response

    def close(self) -> None:
        pass


def library_client(app_client: Any, client_id: str) -> OAuth2Client:
    session = requests.Session()
    session.mount(ISSUER, ChaliceAdapter(app_client))
    discovery = session.get(ISSUER + "/.well-known/openid-configuration").json()
    jwks = session.get(discovery["jwks_uri"]).json()
    return OAuth2Client.from_discovery_document(discovery, issuer=ISSUER, client_id=client_id,
                                                authorization_server_jwks=jwks, session=session)


def test_requests_oauth2client_validates_an_rs256_id_token_with_its_defaults(client, ctr):
    ctr.keyring.ensure("RS256")    # as registering the client with the admin command does
    rp = library_client(client, RS_CLI)
    assert rp.id_token_signed_response_alg == "RS256"    # the library's default, untouched
    token = rp.resource_owner_password("alice", "password4alice", scope="openid profile")
    validated = token.validate_id_token(rp, AuthorizationResponse(code="unused", issuer=ISSUER))
    assert validated.id_token is not None
    assert validated.id_token.alg == "RS256" and validated.id_token.audiences == [RS_CLI]
    assert validated.id_token.claims["preferred_username"] == "alice"


def test_requests_oauth2client_validates_the_id_token_of_a_client_that_registered_no_alg(client, ctr):
    """What the issue reported: a client left at the defaults got ES256 ID tokens and the
    library's RS256 default refused them; OIDC Registration §2 makes RS256 the default."""
    ctr.keyring.ensure("RS256")    # as registering any OpenID client with the admin command does
    rp = library_client(client, CLI)
    assert rp.id_token_signed_response_alg == "RS256"    # the library's default, untouched
    token = rp.resource_owner_password("alice", "password4alice", scope="openid profile")
    validated = token.validate_id_token(rp, AuthorizationResponse(code="unused", issuer=ISSUER))
    assert validated.id_token is not None and validated.id_token.alg == "RS256"
    assert validated.id_token.claims["preferred_username"] == "alice"
    # access tokens keep the stage default
    assert jwt.get_unverified_header(str(token.access_token))["alg"] == "ES256"
