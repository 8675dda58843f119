"""Audiences (RFC 8707, SPEC §4) and per-client signing algorithms (OIDC Core §15.1)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest

from tests.api.helpers import CLI, basic, bearer, body, form, refresh, seed, tokens
from tests.api.test_token_endpoint_errors import assert_oauth_error
from tests.api.test_www_authenticate import INVALID_TOKEN, PROBLEM_401, challenges
from tests.conftest import ISSUER

ORDERS, ORDERS_ADMIN = "https://orders.example/api", "https://orders.example/admin"
BILLING = "https://billing.example"
ORDERS_SECRET = "orders-api-secret-value"
PORTAL = "portal"
RS_CLI = "rs256-cli"
SIGNIN = ["password", "refresh_token"]
SCOPES = ["openid", "profile", "email", "api:read"]


@pytest.fixture(autouse=True)
def _seeded(ctr: Any) -> None:
    seed(ctr)
    ids = ctr.identities
    # Resource servers, registered with the URIs they answer for.
    ids.create_client("orders-api", secret=ORDERS_SECRET, grant_types=["client_credentials"],
                      scopes=["api:read"], introspect=True, resources=[ORDERS, ORDERS_ADMIN])
    ids.create_client("billing-api", secret="billing-api-secret-value", resources=[BILLING])
    ids.create_client(PORTAL, public=True, grant_types=SIGNIN, scopes=SCOPES,
                      default_audience=BILLING)
    ids.create_client(RS_CLI, public=True, grant_types=SIGNIN, scopes=SCOPES,
                      id_token_signed_response_alg="RS256",
                      access_token_signed_response_alg="RS256")


def token_request(client: Any, pairs: list[tuple[str, str]],
                  headers: dict[str, str] | None = None) -> Any:
    """A form post that may repeat a parameter (RFC 8707 §2: several ``resource``)."""
    return client.http.post("/oauth/token", body=urlencode(pairs).encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded", **(headers or {})})


def password_pairs(client_id: str = CLI, *resources: str) -> list[tuple[str, str]]:
    return [("grant_type", "password"), ("client_id", client_id), ("username", "alice"),
            ("password", "password4alice"), *(("resource", r) for r in resources)]


def claims_of(token: str) -> dict[str, Any]:
    parsed: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return parsed


def verified_with_jwks(client: Any, token: str, audience: str) -> tuple[str, dict[str, Any]]:
    """As a relying party checks it: the JWKS key named by kid, its own alg only."""
    jwks = body(client.http.get("/.well-known/jwks.json"))
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=[key["alg"]], audience=audience,
                        issuer=ISSUER, options={"verify_exp": False, "verify_iat": False})
    return key["alg"], claims


def introspect(client: Any, token: str) -> dict[str, Any]:
    response = form(client, "/oauth/introspect", headers=basic("orders-api", ORDERS_SECRET),
                    token=token)
    assert response.status_code == 200, response.body
    parsed: dict[str, Any] = body(response)
    return parsed


# -- aud follows the request ---------------------------------------------------------------

def test_a_token_request_without_resource_is_for_tesseras_own_api(client):
    answer = tokens(client)
    assert claims_of(answer["access_token"])["aud"] == ISSUER
    assert client.http.get("/v1/me", headers=bearer(answer["access_token"])).status_code == 200


def test_a_registered_resource_becomes_the_audience(client):
    response = token_request(client, password_pairs(CLI, ORDERS))
    assert response.status_code == 200, response.body
    token = body(response)["access_token"]
    assert verified_with_jwks(client, token, ORDERS)[1]["aud"] == ORDERS


def test_several_resources_give_an_audience_list(client):
    response = token_request(client, password_pairs(CLI, ORDERS, BILLING))
    assert response.status_code == 200, response.body
    assert claims_of(body(response)["access_token"])["aud"] == [ORDERS, BILLING]


def test_a_token_for_another_resource_is_refused_by_tesseras_own_api(client):
    token = body(token_request(client, password_pairs(CLI, ORDERS)))["access_token"]
    for path in ("/v1/me", "/v1/token-info", "/v1/sessions"):
        response = client.http.get(path, headers=bearer(token))
        assert response.status_code == 401 and body(response) == PROBLEM_401
        assert challenges(response) == INVALID_TOKEN
    userinfo = client.http.get("/oauth/userinfo", headers=bearer(token))
    assert userinfo.status_code == 401


def test_a_token_for_another_resource_is_introspectable_with_its_audience(client):
    token = body(token_request(client, password_pairs(CLI, ORDERS)))["access_token"]
    found = introspect(client, token)
    assert found["active"] is True and found["aud"] == ORDERS
    assert found["sub"] == claims_of(token)["sub"] and found["client_id"] == CLI


def test_the_issuer_itself_may_be_named_beside_another_resource(client):
    response = token_request(client, password_pairs(CLI, ISSUER, ORDERS))
    assert response.status_code == 200, response.body
    token = body(response)["access_token"]
    assert claims_of(token)["aud"] == [ISSUER, ORDERS]
    assert client.http.get("/v1/me", headers=bearer(token)).status_code == 200


def test_an_unknown_resource_is_invalid_target_before_any_sign_in(client, ctr):
    response = token_request(client, password_pairs(CLI, "https://unknown.example/api"))
    assert_oauth_error(response, 400, "invalid_target")
    assert ctr.users.get(ctr.identities.find_user("alice").id).sessions == {}


@pytest.mark.parametrize("resource", ["/relative/path", "https://orders.example/api#frag",
                                      "orders.example", "https://" + "a" * 1100])
def test_a_malformed_resource_is_invalid_target(client, resource):
    assert_oauth_error(token_request(client, password_pairs(CLI, resource)), 400, "invalid_target")


def test_a_resource_with_a_space_is_invalid_request(client):
    assert_oauth_error(token_request(client, password_pairs(CLI, ORDERS + " " + BILLING)), 400,
                       "invalid_request")


def test_other_parameters_still_may_not_repeat(client):
    pairs = [*password_pairs(CLI), ("username", "bob")]
    assert_oauth_error(token_request(client, pairs), 400, "invalid_request")


def test_a_client_default_audience_applies_when_no_resource_is_named(client):
    answer = tokens(client, client_id=PORTAL)
    assert claims_of(answer["access_token"])["aud"] == BILLING
    named = body(token_request(client, password_pairs(PORTAL, ORDERS)))
    assert claims_of(named["access_token"])["aud"] == ORDERS


def test_client_credentials_takes_a_resource_too(client):
    pairs = [("grant_type", "client_credentials"), ("resource", BILLING)]
    response = token_request(client, pairs, headers=basic("orders-api", ORDERS_SECRET))
    assert response.status_code == 200, response.body
    assert claims_of(body(response)["access_token"])["aud"] == BILLING
    unknown = token_request(client, [("grant_type", "client_credentials"),
                                     ("resource", "urn:unknown:thing")],
                            headers=basic("orders-api", ORDERS_SECRET))
    assert_oauth_error(unknown, 400, "invalid_target")


# -- refresh keeps, or narrows, the original resources (RFC 8707 §2.2) --------------------

def test_a_refresh_keeps_the_original_resources(client):
    first = body(token_request(client, password_pairs(CLI, ORDERS, BILLING)))
    second = refresh(client, first["refresh_token"])
    assert second.status_code == 200, second.body
    assert claims_of(body(second)["access_token"])["aud"] == [BILLING, ORDERS]


def test_a_refresh_may_narrow_to_one_of_the_original_resources(client):
    first = body(token_request(client, password_pairs(CLI, ORDERS, BILLING)))
    narrowed = refresh(client, first["refresh_token"], resource=ORDERS)
    assert narrowed.status_code == 200, narrowed.body
    assert claims_of(body(narrowed)["access_token"])["aud"] == ORDERS
    # the grant itself is not narrowed: the next refresh may name the other one
    again = refresh(client, body(narrowed)["refresh_token"], resource=BILLING)
    assert claims_of(body(again)["access_token"])["aud"] == BILLING


def test_a_refresh_may_not_widen_to_another_resource_and_keeps_its_token(client):
    first = body(token_request(client, password_pairs(CLI, ORDERS)))
    assert_oauth_error(refresh(client, first["refresh_token"], resource=BILLING), 400,
                       "invalid_target")
    plain = tokens(client)
    assert_oauth_error(refresh(client, plain["refresh_token"], resource=ORDERS), 400,
                       "invalid_target")
    # refused before any rotation: the presented token is still the current one
    assert refresh(client, first["refresh_token"]).status_code == 200


# -- per-client signing algorithms -----------------------------------------------------------

def test_a_client_registered_for_rs256_gets_rs256_tokens_that_verify_against_the_jwks(client):
    answer = tokens(client, client_id=RS_CLI, scope="openid profile")
    alg, id_claims = verified_with_jwks(client, answer["id_token"], RS_CLI)
    assert alg == "RS256" and id_claims["azp"] == RS_CLI
    alg, at_claims = verified_with_jwks(client, answer["access_token"], ISSUER)
    assert alg == "RS256" and at_claims["client_id"] == RS_CLI
    # Tessera's own API verifies its RS256 tokens as it does ES256 ones
    assert client.http.get("/v1/me", headers=bearer(answer["access_token"])).status_code == 200
    # and a refresh keeps the client's algorithm
    again = body(refresh(client, answer["refresh_token"], client_id=RS_CLI))
    assert jwt.get_unverified_header(again["access_token"])["alg"] == "RS256"


def test_other_clients_get_rs256_id_tokens_and_stage_default_es256_access_tokens(client):
    # OIDC Dynamic Client Registration §2: id_token_signed_response_alg defaults to RS256.
    answer = tokens(client, scope="openid")
    alg, _ = verified_with_jwks(client, answer["id_token"], CLI)
    assert alg == "RS256"
    assert jwt.get_unverified_header(answer["access_token"])["alg"] == "ES256"


def test_a_client_may_still_register_es256_for_its_id_tokens(client, ctr):
    ctr.identities.create_client("es-cli", public=True, grant_types=["password"],
                                 scopes=["openid"], id_token_signed_response_alg="ES256")
    answer = tokens(client, client_id="es-cli", scope="openid")
    alg, claims = verified_with_jwks(client, answer["id_token"], "es-cli")
    assert alg == "ES256" and claims["azp"] == "es-cli"


def test_an_unsupported_algorithm_is_refused_at_registration(ctr):
    from chalicelib.errors import BadRequest

    with pytest.raises(BadRequest):
        ctr.identities.create_client("hs", public=True, id_token_signed_response_alg="HS256")


def test_discovery_lists_what_the_jwks_can_verify(client, ctr):
    tokens(client, client_id=RS_CLI, scope="openid")
    doc = body(client.http.get("/.well-known/openid-configuration"))
    published = {k["alg"] for k in body(client.http.get("/.well-known/jwks.json"))["keys"]}
    assert set(doc["id_token_signing_alg_values_supported"]) == published == {"ES256", "RS256"}
    assert json.loads(json.dumps(doc)) == body(
        client.http.get("/.well-known/oauth-authorization-server"))


# -- the device grant takes resource on its token request too -------------------------------

def test_a_device_login_gets_the_resource_named_when_it_redeems_its_code(client, ctr, clock):
    from tests.api.test_device_flow import DEVICE_GRANT, approve, start

    got = start(client, scope="openid api:read")
    approve(ctr, got["user_code"])
    clock.advance(5)
    unknown = token_request(client, [("grant_type", DEVICE_GRANT), ("client_id", CLI),
                                     ("device_code", got["device_code"]),
                                     ("resource", "https://unknown.example")])
    assert_oauth_error(unknown, 400, "invalid_target")
    clock.advance(5)
    response = token_request(client, [("grant_type", DEVICE_GRANT), ("client_id", CLI),
                                      ("device_code", got["device_code"]), ("resource", ORDERS)])
    assert response.status_code == 200, response.body
    answer = body(response)
    assert claims_of(answer["access_token"])["aud"] == ORDERS
    # the session remembers it: a refresh keeps it
    assert claims_of(body(refresh(client, answer["refresh_token"]))["access_token"])["aud"] == ORDERS
