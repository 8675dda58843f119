"""Role keys and role tokens as credentials (SPEC §6): Bearer, both Basic forms,
client_credentials, introspection, revocation, and what ends them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from chalicelib.security.opaque import ROLE_KEY_SECRET, new_role_key_access_id
from chalicelib.storage.roles import RoleKey
from tests.api.helpers import CLI, RS, RS_SECRET, basic, bearer, body, form, seed, tokens
from tests.api.role_support import Key, make_role, mint_key
from tests.api.test_token_endpoint_errors import assert_oauth_error

UNAUTHORIZED = {"type": "about:blank", "title": "Unauthorized", "status": 401,
                "detail": "Provided token is not valid"}
READ_ALICE = "data:get@urn:tessera:data:alice.*"
WRITE_SHARED = "data:put@urn:tessera:data:shared.reports"
SHARED_RIGHT = "data:put@urn:tessera:data:shared.*"


@pytest.fixture
def alice(ctr: Any) -> Any:
    seed(ctr)
    # alice holds her default namespace and, granted on top, writing to shared.*
    return ctr.identities.grant_permission("alice", SHARED_RIGHT)


@pytest.fixture
def role(ctr: Any, alice: Any) -> Any:
    return make_role(ctr, "alice", "ci", READ_ALICE, WRITE_SHARED, description="CI")


@pytest.fixture
def key(ctr: Any, role: Any) -> Key:
    return mint_key(ctr, role)


def me(client: Any, headers: dict[str, str]) -> Any:
    return client.http.get("/v1/me", headers=headers)


def role_token(client: Any, key: Key, **params: str) -> Any:
    return form(client, "/oauth/token", headers=basic(key.access, key.secret),
                grant_type="client_credentials", **params)


def granted(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.body
    assert response.headers["Cache-Control"] == "no-store"
    parsed: dict[str, Any] = body(response)
    return parsed


def introspect(client: Any, token: str) -> dict[str, Any]:
    response = form(client, "/oauth/introspect", headers=basic(RS, RS_SECRET), token=token)
    assert response.status_code == 200, response.body
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


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401, response.body
    assert response.headers["Content-Type"] == "application/problem+json"
    assert body(response) == UNAUTHORIZED
    assert any('error="invalid_token"' in c for c in _challenges(response))


def _challenges(response: Any) -> list[str]:
    value = response.headers.get("WWW-Authenticate", "")
    return value if isinstance(value, list) else [value]


def role_profile(alice: Any) -> dict[str, Any]:
    return {"id": "role:alice.ci", "email": "", "firstname": "", "lastname": "", "active": True,
            "role": "alice.ci", "owner_id": alice.id}


# -- the three ways of presenting a role key on Tessera's API --------------------------

def test_a_role_key_as_bearer_names_the_role_and_its_owner(client, alice, key):
    r = me(client, bearer(key.token))
    assert r.status_code == 200, r.body
    assert body(r) == role_profile(alice)


def test_a_role_key_as_basic_user_and_password_halves(client, alice, key):
    r = me(client, basic(key.access, key.secret))
    assert r.status_code == 200, r.body
    assert body(r) == role_profile(alice)


@pytest.mark.parametrize("username", ["console", "any", "", "tka_x"])
def test_a_role_key_as_basic_password_with_any_username_docker_login_style(client, alice, key,
                                                                           username):
    r = me(client, basic(username, key.token))
    assert r.status_code == 200, r.body
    assert body(r) == role_profile(alice)


@pytest.mark.parametrize("value", ["Basic !!!not-base64", "Basic dGthXw==", "Basic /w==", "Basic"])
def test_bad_basic_headers_are_still_the_401(client, key, value):
    # bad base64, no colon ("tka_"), not UTF-8, no credentials at all
    r = me(client, {"Authorization": value})
    assert r.status_code == 401 and body(r) == UNAUTHORIZED


def test_token_info_names_the_role_the_owner_and_the_kind(client, alice, key, clock):
    info = body(client.http.get("/v1/token-info", headers=bearer(key.token)))
    assert info["type"] == "role_key"
    assert info["role"] == "alice.ci" and info["owner"] == alice.id
    assert info["permissions"] == [READ_ALICE, WRITE_SHARED]
    assert info["scopes"] == ["data:get", "data:put"]
    assert info["client_id"] == key.access and info["key_id"] == key.access
    assert info["expires_at"] is None and info["issued_at"] == clock.now()


# -- dead keys: the exact 401 problem JSON, zero reads when malformed ------------------

def test_a_removed_key_is_the_exact_401_on_me_and_invalid_client_on_the_token_endpoint(
        client, ctr, role, key):
    assert me(client, bearer(key.token)).status_code == 200
    assert ctr.roles_repo.remove_key(role.name, key.access) is not None
    assert_unauthorized(me(client, bearer(key.token)))
    assert_unauthorized(me(client, basic("console", key.token)))
    r = role_token(client, key)
    assert_oauth_error(r, 401, "invalid_client")
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_an_access_id_that_is_not_a_key_of_the_role_is_refused(client, ctr, role, key):
    stranger = Key(new_role_key_access_id(), key.secret)
    assert_unauthorized(me(client, bearer(stranger.token)))
    assert_oauth_error(role_token(client, stranger), 401, "invalid_client")


def test_a_forged_secret_with_a_valid_checksum_is_refused(client, ctr, role, key):
    forged = Key(key.access, ROLE_KEY_SECRET.mint(role.owner + role.id))
    assert_unauthorized(me(client, bearer(forged.token)))
    assert_oauth_error(role_token(client, forged), 401, "invalid_client")
    assert body(form(client, "/oauth/introspect", headers=basic(RS, RS_SECRET),
                     token=forged.token)) == {"active": False}


def test_a_key_of_a_disabled_owner_is_refused(client, ctr, key):
    ctr.identities.set_user_active("alice", False)
    assert_unauthorized(me(client, bearer(key.token)))
    assert_oauth_error(role_token(client, key), 401, "invalid_client")


def test_a_key_of_a_deleted_role_is_refused(client, ctr, role, key):
    ctr.roles_repo.delete(role.name)
    assert_unauthorized(me(client, bearer(key.token)))
    assert_oauth_error(role_token(client, key), 401, "invalid_client")


@pytest.fixture
def meter(ctr: Any) -> Iterator[Any]:
    from bench.dynamo_meter import DynamoMeter

    m = DynamoMeter(ctr.dynamodb())
    yield m
    m.close()


def _bad_checksum(key: Key) -> str:
    last = key.secret[-1]
    return f"{key.access}:{key.secret[:-1]}{'A' if last != 'A' else 'B'}"


def test_malformed_keys_are_refused_with_no_dynamodb_call(client, key, meter):
    malformed = [_bad_checksum(key), f"{key.access}:{key.secret[:-1]}", f"{key.access}:",
                 f"tka_short:{key.secret}", f"{key.access}:tsp_{key.secret[4:]}",
                 f"{key.access}{key.secret}"]
    meter.take()
    for token in malformed:
        assert_unauthorized(me(client, bearer(token)))
        assert_unauthorized(me(client, basic("console", token)))
        access, _, secret = token.partition(":")
        assert_oauth_error(form(client, "/oauth/token", grant_type="client_credentials",
                                client_id=access, client_secret=secret or "x"),
                           401, "invalid_client")
    assert meter.take().round_trips == 0


# -- what a role may not do -------------------------------------------------------------

@pytest.fixture
def greedy_key(ctr: Any, alice: Any) -> Key:
    """A key of a role whose policies name Tessera's account actions on alice's namespace."""
    greedy = make_role(ctr, "alice", "greedy", "tokens:manage@urn:tessera:tokens:alice.x",
                       "sessions:manage@urn:tessera:sessions:alice.x",
                       "roles:manage@urn:tessera:roles:alice.x",
                       "tokens:read@urn:tessera:tokens:alice.x")
    return mint_key(ctr, greedy)


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/tokens"), ("POST", "/v1/tokens"), ("GET", "/v1/sessions"),
    ("DELETE", "/v1/sessions/AAAAAAAAAAAAAAAA")])
def test_the_pat_and_sessions_apis_refuse_a_role_with_403(client, key, greedy_key, method, path):
    for k in (key, greedy_key):
        r = client.http.request(method, path, headers={**bearer(k.token),
                                                       "Content-Type": "application/json"},
                                body=b'{"description": "x", "scopes": ["profile"]}')
        assert r.status_code == 403, (path, r.body)
        assert r.headers["Content-Type"] == "application/problem+json"


def test_a_role_never_holds_the_account_scopes_even_if_a_policy_names_them(client, greedy_key):
    info = body(client.http.get("/v1/token-info", headers=bearer(greedy_key.token)))
    assert info["scopes"] == []
    assert_oauth_error(role_token(client, greedy_key, scope="tokens:manage"), 400,
                       "invalid_scope")


def test_logout_with_a_role_key_is_a_400_it_has_no_session(client, key):
    r = client.http.post("/v1/logout", headers=bearer(key.token))
    assert r.status_code == 400 and r.headers["Content-Type"] == "application/problem+json"


def test_a_pat_of_the_owner_is_not_what_a_role_key_sees(client, ctr, alice, key):
    access = tokens(client, scope="tokens:manage")["access_token"]
    created = client.http.post("/v1/tokens", headers={**bearer(access),
                                                      "Content-Type": "application/json"},
                               body=b'{"description": "mine", "scopes": ["profile"]}')
    assert created.status_code == 201, created.body
    assert client.http.get("/v1/tokens", headers=bearer(key.token)).status_code == 403


# -- client_credentials with a role key ---------------------------------------------------

def test_client_credentials_by_basic_gives_a_one_hour_role_token_that_verifies(client, ctr,
                                                                                alice, key):
    answer = granted(role_token(client, key))
    assert "refresh_token" not in answer and "id_token" not in answer
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600
    assert answer["scope"] == "data:get data:put"
    claims = verified(client, answer["access_token"], ctr)
    assert claims["sub"] == "role:alice.ci" and claims["role"] == "alice.ci"
    assert claims["owner"] == alice.id and claims["client_id"] == key.access
    assert claims["permissions"] == [READ_ALICE, WRITE_SHARED]
    assert claims["scope"] == "data:get data:put"
    assert claims["exp"] - claims["iat"] == 3600
    assert "sid" not in claims and "refresh_token" not in claims


def test_client_credentials_by_post_is_the_same(client, ctr, key):
    r = form(client, "/oauth/token", grant_type="client_credentials", client_id=key.access,
             client_secret=key.secret)
    claims = verified(client, granted(r)["access_token"], ctr)
    assert claims["sub"] == "role:alice.ci" and claims["client_id"] == key.access


def test_a_requested_scope_narrows_the_role_token(client, ctr, key):
    answer = granted(role_token(client, key, scope="data:get"))
    assert answer["scope"] == "data:get"
    assert verified(client, answer["access_token"], ctr)["permissions"] == [READ_ALICE]


@pytest.mark.parametrize("scope", ["data:delete", "openid", "data:get api:read"])
def test_a_scope_the_role_does_not_hold_is_invalid_scope(client, key, scope):
    assert_oauth_error(role_token(client, key, scope=scope), 400, "invalid_scope")


def test_a_role_key_without_its_secret_is_invalid_client(client, key):
    r = form(client, "/oauth/token", grant_type="client_credentials", client_id=key.access)
    assert_oauth_error(r, 401, "invalid_client")


@pytest.mark.parametrize("params", [
    {"grant_type": "password", "username": "alice", "password": "password4alice"},
    {"grant_type": "refresh_token", "refresh_token": "tsr_x"},
    {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "tsd_x"}])
def test_other_grants_with_a_role_key_are_unauthorized_client(client, key, params):
    r = form(client, "/oauth/token", headers=basic(key.access, key.secret), **params)
    assert_oauth_error(r, 400, "unauthorized_client")


def test_another_grant_with_a_dead_role_key_is_invalid_client(client, ctr, role, key):
    ctr.roles_repo.remove_key(role.name, key.access)
    r = form(client, "/oauth/token", headers=basic(key.access, key.secret), grant_type="password",
             username="alice", password="password4alice")
    assert_oauth_error(r, 401, "invalid_client")


def test_a_role_with_no_permission_in_force_gets_a_token_without_scope(client, ctr, alice):
    # a policy the owner does not hold (stored directly: the API would refuse it)
    empty = make_role(ctr, "alice", "empty", "data:get@urn:tessera:data:bob.*")
    answer = granted(role_token(client, mint_key(ctr, empty)))
    assert "scope" not in answer
    assert verified(client, answer["access_token"], ctr)["permissions"] == []


def test_discovery_lists_client_credentials(client, key):
    doc = body(client.http.get("/.well-known/openid-configuration"))
    assert "client_credentials" in doc["grant_types_supported"]


# -- narrowing the owner narrows every key and token at once -----------------------------

def test_narrowing_the_owner_narrows_the_next_token_and_introspection_at_once(client, ctr, key):
    before = granted(role_token(client, key))["access_token"]
    assert introspect(client, before)["permissions"] == [READ_ALICE, WRITE_SHARED]
    ctr.identities.revoke_permission("alice", SHARED_RIGHT)
    # the token already issued: its introspection now reports what is still in force
    now = introspect(client, before)
    assert now["active"] is True
    assert now["permissions"] == [READ_ALICE] and now["scope"] == "data:get"
    # the key itself
    assert introspect(client, key.token)["permissions"] == [READ_ALICE]
    # the next token
    after = granted(role_token(client, key))
    assert after["scope"] == "data:get"
    assert verified(client, after["access_token"], ctr)["permissions"] == [READ_ALICE]
    info = body(client.http.get("/v1/token-info", headers=bearer(before)))
    assert info["permissions"] == [READ_ALICE] and info["scopes"] == ["data:get"]


def test_a_policy_added_after_a_token_does_not_widen_that_token(client, ctr, role, key):
    from tests.api.role_support import add_policy

    narrow = granted(role_token(client, key, scope="data:get"))["access_token"]
    add_policy(ctr, role.name, "data:list@urn:tessera:data:alice.*")
    assert introspect(client, narrow)["permissions"] == [READ_ALICE]


# -- role tokens on Tessera's own endpoints ----------------------------------------------

def test_a_role_token_on_me_and_token_info_names_the_role(client, ctr, alice, key, clock):
    token = granted(role_token(client, key))["access_token"]
    r = me(client, bearer(token))
    assert r.status_code == 200, r.body
    assert body(r) == role_profile(alice)
    info = body(client.http.get("/v1/token-info", headers=bearer(token)))
    assert info["type"] == "role_token" and info["role"] == "alice.ci"
    assert info["owner"] == alice.id and info["client_id"] == key.access
    assert info["issued_at"] == clock.now() and info["expires_at"] == clock.now() + 3600
    assert info["expires_in"] == 3600


def test_a_deleted_role_kills_its_tokens_on_me_and_introspection(client, ctr, role, key):
    token = granted(role_token(client, key))["access_token"]
    assert me(client, bearer(token)).status_code == 200
    ctr.roles_repo.delete(role.name)
    assert_unauthorized(me(client, bearer(token)))
    assert introspect(client, token) == {"active": False}


def test_a_role_deleted_and_recreated_does_not_revive_old_tokens(client, ctr, alice, role, key,
                                                                 clock):
    token = granted(role_token(client, key))["access_token"]
    ctr.roles_repo.delete(role.name)
    clock.advance(5)
    again = make_role(ctr, "alice", "ci", READ_ALICE)
    # even a key of the old role stored again under the new one does not help the token
    ctr.roles_repo.add_key(again.name, RoleKey(id=key.access, secret_hash="x", description="",
                                               created_at=clock.now()), 10)
    assert_unauthorized(me(client, bearer(token)))
    assert introspect(client, token) == {"active": False}
    fresh = mint_key(ctr, again)
    assert me(client, bearer(granted(role_token(client, fresh))["access_token"])).status_code == 200


def test_a_revoked_key_kills_the_tokens_it_gave_on_tesseras_endpoints(client, ctr, role, key):
    token = granted(role_token(client, key))["access_token"]
    other = mint_key(ctr, role)
    kept = granted(role_token(client, other))["access_token"]
    ctr.roles_repo.remove_key(role.name, key.access)
    assert_unauthorized(me(client, bearer(token)))
    assert introspect(client, token) == {"active": False}
    assert me(client, bearer(kept)).status_code == 200


def test_a_role_token_of_a_disabled_owner_is_refused(client, ctr, key):
    token = granted(role_token(client, key))["access_token"]
    ctr.identities.set_user_active("alice", False)
    assert_unauthorized(me(client, bearer(token)))


def test_userinfo_refuses_role_tokens_and_keys_as_invalid_token(client, key):
    token = granted(role_token(client, key))["access_token"]
    for credential in (token, key.token):
        r = client.http.get("/oauth/userinfo", headers=bearer(credential))
        assert_oauth_error(r, 401, "invalid_token")
        assert any('error="invalid_token"' in c for c in _challenges(r))


def test_an_expired_role_token_is_refused(client, key, clock):
    token = granted(role_token(client, key))["access_token"]
    clock.advance(3601)
    assert_unauthorized(me(client, bearer(token)))
    assert introspect(client, token) == {"active": False}


# -- introspection (RFC 7662) --------------------------------------------------------------

def test_introspecting_a_role_key(client, ctr, alice, key, clock):
    assert introspect(client, key.token) == {
        "active": True, "token_type": "Bearer", "iss": ctr.settings.issuer,
        "tessera_token_kind": "role_key", "sub": "role:alice.ci", "role": "alice.ci",
        "owner": alice.id, "permissions": [READ_ALICE, WRITE_SHARED],
        "scope": "data:get data:put", "client_id": key.access, "iat": clock.now()}


def test_introspecting_a_role_token(client, ctr, alice, key):
    token = granted(role_token(client, key))["access_token"]
    claims = verified(client, token, ctr)
    assert introspect(client, token) == {
        "active": True, "token_type": "Bearer", "iss": ctr.settings.issuer,
        "tessera_token_kind": "role_token", "sub": "role:alice.ci", "role": "alice.ci",
        "owner": alice.id, "permissions": [READ_ALICE, WRITE_SHARED],
        "scope": "data:get data:put", "client_id": key.access, "iat": claims["iat"],
        "exp": claims["exp"], "jti": claims["jti"], "aud": claims["aud"]}


def test_a_role_key_may_not_introspect(client, key):
    r = form(client, "/oauth/introspect", headers=basic(key.access, key.secret), token=key.token)
    assert_oauth_error(r, 400, "unauthorized_client")


# -- revocation (RFC 7009) -------------------------------------------------------------------

def test_revoking_a_role_key_removes_it(client, ctr, role, key, audit_events):
    r = form(client, "/oauth/revoke", headers=basic(RS, RS_SECRET), token=key.token)
    assert r.status_code == 200 and body(r) == {}
    assert key.access not in ctr.roles_repo.get(role.name).keys
    assert_unauthorized(me(client, bearer(key.token)))
    assert_oauth_error(role_token(client, key), 401, "invalid_client")
    revoked = [e for e in audit_events() if e["event"] == "role_key_revoked"]
    assert [(e["role"], e["key_id"], e["client_id"]) for e in revoked] == \
        [("alice.ci", key.access, RS)]
    assert key.secret not in str(revoked)


def test_a_public_client_may_revoke_a_role_key_it_holds_as_for_pats(client, ctr, role, key):
    assert form(client, "/oauth/revoke", client_id=CLI, token=key.token).status_code == 200
    assert key.access not in ctr.roles_repo.get(role.name).keys


def test_revoking_a_key_twice_or_an_unknown_key_is_200(client, key):
    for token in (key.token, key.token, _bad_checksum(key), f"{new_role_key_access_id()}:x"):
        assert form(client, "/oauth/revoke", headers=basic(RS, RS_SECRET),
                    token=token).status_code == 200


def test_a_forged_secret_revokes_nothing(client, ctr, role, key):
    forged = f"{key.access}:{ROLE_KEY_SECRET.mint(role.owner + role.id)}"
    assert form(client, "/oauth/revoke", headers=basic(RS, RS_SECRET), token=forged).status_code == 200
    assert me(client, bearer(key.token)).status_code == 200


def test_a_role_key_revokes_itself_as_its_own_client(client, ctr, role, key):
    r = form(client, "/oauth/revoke", headers=basic(key.access, key.secret), token=key.token)
    assert r.status_code == 200
    assert key.access not in ctr.roles_repo.get(role.name).keys


def test_a_role_token_is_not_revocable_by_itself(client, key):
    token = granted(role_token(client, key))["access_token"]
    # another client: not its token (RFC 7009 §2.1)
    assert_oauth_error(form(client, "/oauth/revoke", headers=basic(RS, RS_SECRET), token=token),
                       400, "unauthorized_client")
    # its own client: nothing stands behind one role token; revoke the key instead
    r = form(client, "/oauth/revoke", headers=basic(key.access, key.secret), token=token)
    assert_oauth_error(r, 400, "unsupported_token_type")
    assert me(client, bearer(token)).status_code == 200


# -- last_used_at without a write per request ------------------------------------------------

def test_last_used_at_is_recorded_at_most_every_ten_minutes(client, ctr, role, key, clock):
    def last_used() -> int | None:
        return ctr.roles_repo.get(role.name).keys[key.access].last_used_at

    assert last_used() is None
    first = clock.now()
    me(client, bearer(key.token))
    assert last_used() == first
    clock.advance(599)
    me(client, bearer(key.token))
    granted(role_token(client, key))
    assert last_used() == first
    clock.advance(2)
    granted(role_token(client, key))
    assert last_used() == clock.now()


# -- the contract -----------------------------------------------------------------------------

def test_the_openapi_document_describes_a_role_principal(client, key):
    from chalicelib import api_models

    doc = body(client.http.get("/openapi.json"))
    schemas = doc["components"]["schemas"]
    profile = next(v for k, v in schemas.items() if k.startswith("Profile"))
    assert {"role", "owner_id"} <= set(profile["properties"])
    assert not {"role", "owner_id"} & set(profile.get("required", []))
    assert "roleKey" in doc["components"]["securitySchemes"]
    # the answers are what the models say
    api_models.Profile.model_validate(body(me(client, bearer(key.token))))
    info = api_models.TokenInfo.model_validate(
        body(client.http.get("/v1/token-info", headers=bearer(key.token))))
    assert info.role == "alice.ci" and info.permissions == [READ_ALICE, WRITE_SHARED]
