"""The client credentials grant for confidential service clients (RFC 6749 §4.4)."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from chalicelib.config import Settings
from tests.api.helpers import CLI, RS, RS_SECRET, basic, bearer, body, form, seed, tokens
from tests.api.test_token_endpoint_errors import assert_oauth_error
from tests.conftest import ISSUER, TEST_SCRYPT_LOG_N

SERVICE = "reports-service"
SERVICE_SECRET = "reports-service-secret-value"
NO_GRANT = "introspect-only"
NO_GRANT_SECRET = "introspect-only-secret-value"


@pytest.fixture(autouse=True)
def _seeded(ctr: Any) -> None:
    seed(ctr)
    ctr.identities.create_client(SERVICE, secret=SERVICE_SECRET,
                                 grant_types=["client_credentials"],
                                 scopes=["api:read", "api:write"])
    ctr.identities.create_client(NO_GRANT, secret=NO_GRANT_SECRET, introspect=True)


def client_token(client: Any, client_id: str = RS, secret: str = RS_SECRET, **params: str) -> Any:
    return form(client, "/oauth/token", headers=basic(client_id, secret),
                grant_type="client_credentials", **params)


def granted(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.body
    assert response.headers["Cache-Control"] == "no-store"
    parsed: dict[str, Any] = body(response)
    return parsed


def verified(client: Any, token: str, ctr: Any) -> dict[str, Any]:
    """The claims as a resource server checks them: offline, with the JWKS and PyJWT."""
    jwks = body(client.http.get("/.well-known/jwks.json"))
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"   # RFC 9068 §2.1
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims: dict[str, Any] = jwt.decode(
        token, jwt.PyJWK(key).key, algorithms=[key["alg"]], audience=ctr.settings.issuer,
        issuer=ctr.settings.issuer,
        options={"verify_exp": False, "verify_iat": False})   # the fake clock is not now
    return claims


def test_the_demo_resource_server_gets_a_token_that_verifies_against_the_jwks(client, ctr):
    answer = granted(client_token(client))
    claims = verified(client, answer["access_token"], ctr)
    assert claims["sub"] == RS and claims["client_id"] == RS
    assert "sid" not in claims and "auth_time" not in claims
    assert claims["exp"] - claims["iat"] == 3600 == answer["expires_in"]
    assert answer["token_type"] == "Bearer"


def test_no_refresh_token_is_issued(client):
    answer = granted(client_token(client, SERVICE, SERVICE_SECRET))
    assert "refresh_token" not in answer and "refresh_expires_in" not in answer
    assert "id_token" not in answer


class TestAConfiguredLifetime:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(issuer=ISSUER, table_prefix="test-", keys_secret_name="test/signing-keys",
                        client_token_seconds=600, scrypt_log_n=TEST_SCRYPT_LOG_N)

    def test_the_lifetime_follows_the_setting(self, client, ctr):
        answer = granted(client_token(client))
        claims = verified(client, answer["access_token"], ctr)
        assert answer["expires_in"] == 600 == claims["exp"] - claims["iat"]


def test_the_setting_is_read_from_the_environment():
    assert Settings.from_env({}).client_token_seconds == 3600
    assert Settings.from_env({"TESSERA_CLIENT_TOKEN_SECONDS": "900"}).client_token_seconds == 900


def test_client_secret_post_is_accepted(client, ctr):
    r = form(client, "/oauth/token", grant_type="client_credentials", client_id=SERVICE,
             client_secret=SERVICE_SECRET)
    assert verified(client, granted(r)["access_token"], ctr)["sub"] == SERVICE


def test_a_wrong_secret_is_invalid_client_with_the_basic_challenge(client):
    r = client_token(client, secret="not-the-secret")
    assert_oauth_error(r, 401, "invalid_client")
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_a_wrong_secret_by_post_is_invalid_client(client):
    r = form(client, "/oauth/token", grant_type="client_credentials", client_id=SERVICE,
             client_secret="not-the-secret")
    assert_oauth_error(r, 401, "invalid_client")


def test_a_public_client_is_refused(client):
    # RFC 6749 §4.4: "MUST only be used by confidential clients"
    r = form(client, "/oauth/token", grant_type="client_credentials", client_id=CLI)
    assert_oauth_error(r, 400, "unauthorized_client")


def test_a_client_without_the_grant_is_unauthorized_client(client):
    r = client_token(client, NO_GRANT, NO_GRANT_SECRET)
    assert_oauth_error(r, 400, "unauthorized_client")


def test_no_scope_requested_gives_every_registered_scope(client, ctr):
    answer = granted(client_token(client, SERVICE, SERVICE_SECRET))
    assert answer["scope"] == "api:read api:write"
    assert verified(client, answer["access_token"], ctr)["scope"] == "api:read api:write"


def test_a_requested_scope_narrows_the_token(client, ctr):
    answer = granted(client_token(client, SERVICE, SERVICE_SECRET, scope="api:read"))
    assert answer["scope"] == "api:read"
    assert verified(client, answer["access_token"], ctr)["scope"] == "api:read"


@pytest.mark.parametrize("scope", ["api:read openid", "no-such-scope", "tokens:manage", "a\\b"])
def test_a_scope_not_registered_for_the_client_is_invalid_scope(client, scope):
    assert_oauth_error(client_token(client, SERVICE, SERVICE_SECRET, scope=scope), 400,
                       "invalid_scope")


def test_introspection_names_the_client(client):
    token = granted(client_token(client, SERVICE, SERVICE_SECRET, scope="api:read"))["access_token"]
    r = form(client, "/oauth/introspect", headers=basic(RS, RS_SECRET), token=token)
    answer = body(r)
    assert answer["active"] is True
    assert answer["sub"] == SERVICE and answer["client_id"] == SERVICE
    assert answer["scope"] == "api:read" and answer["token_type"] == "Bearer"
    assert answer["tessera_token_kind"] == "client_access_token"
    assert "sid" not in answer and "username" not in answer


def test_an_expired_client_token_introspects_inactive(client, clock):
    token = granted(client_token(client))["access_token"]
    clock.advance(3601)
    r = form(client, "/oauth/introspect", headers=basic(RS, RS_SECRET), token=token)
    assert body(r) == {"active": False}


def test_me_refuses_a_client_token_with_a_403_problem(client):
    token = granted(client_token(client))["access_token"]
    r = client.http.get("/v1/me", headers=bearer(token))
    assert r.status_code == 403
    assert r.headers["Content-Type"] == "application/problem+json"
    assert "names no user" in body(r)["detail"]


@pytest.mark.parametrize("method,path", [("GET", "/v1/token-info"), ("POST", "/v1/logout"),
                                         ("GET", "/v1/sessions"), ("GET", "/v1/tokens")])
def test_every_user_endpoint_refuses_a_client_token_with_a_documented_403(client, method, path):
    token = granted(client_token(client, SERVICE, SERVICE_SECRET))["access_token"]
    r = client.http.request(method, path, headers=bearer(token))
    assert r.status_code == 403, r.body
    assert r.headers["Content-Type"] == "application/problem+json"
    doc = body(client.http.get("/openapi.json"))
    assert "403" in doc["paths"][path][method.lower()]["responses"]


def test_userinfo_refuses_a_client_token_as_invalid_token(client):
    token = granted(client_token(client))["access_token"]
    r = client.http.get("/oauth/userinfo", headers=bearer(token))
    assert_oauth_error(r, 401, "invalid_token")
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_a_user_token_still_introspects_with_its_session(client):
    t = tokens(client)
    answer = body(form(client, "/oauth/introspect", headers=basic(RS, RS_SECRET),
                       token=t["access_token"]))
    assert answer["tessera_token_kind"] == "access_token" and answer["sid"]


def test_discovery_lists_the_grant(client):
    doc = body(client.http.get("/.well-known/openid-configuration"))
    assert "client_credentials" in doc["grant_types_supported"]
