"""Revocation (RFC 7009), introspection (RFC 7662), UserInfo, /v1 account routes."""

import pytest

from tests.api.helpers import CLI, RS, RS_SECRET, basic, bearer, body, form, refresh, seed, tokens

PROBLEM_401 = {"type": "about:blank", "title": "Unauthorized", "status": 401,
               "detail": "Provided token is not valid"}


@pytest.fixture(autouse=True)
def _seeded(ctr):
    seed(ctr)


def introspect(client, token, auth=None):
    return form(client, "/oauth/introspect", headers=auth or basic(RS, RS_SECRET), token=token)


def revoke(client, token, client_id=CLI):
    return form(client, "/oauth/revoke", client_id=client_id, token=token)


def test_me_returns_the_profile(client):
    t = tokens(client)
    r = client.http.get("/v1/me", headers=bearer(t["access_token"]))
    assert body(r) == {"id": body(r)["id"], "email": "alice@example.com", "firstname": "Alice",
                       "lastname": "Liddell", "active": True}


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer "}, {"Authorization": "Bearer not-a-token"},
    {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
    {"Authorization": "Basic %%%"}, {"Authorization": "Digest abc"},
])
def test_bad_bearer_gets_exactly_the_spec_401(client, headers):
    r = client.http.get("/v1/me", headers=headers)
    assert r.status_code == 401
    assert r.headers["Content-Type"] == "application/problem+json"
    assert body(r) == PROBLEM_401


def test_access_token_works_as_basic_password(client):
    import base64

    t = tokens(client)
    raw = base64.b64encode(f"any:{t['access_token']}".encode()).decode()
    assert client.http.get("/v1/me", headers={"Authorization": f"Basic {raw}"}).status_code == 200


def test_token_info_describes_the_access_token(client, clock):
    t = tokens(client, scope="openid profile")
    clock.advance(10)
    info = body(client.http.get("/v1/token-info", headers=bearer(t["access_token"])))
    assert info["type"] == "access_token"
    assert info["expires_in"] == 290
    assert info["expires_at"] - info["issued_at"] == 300
    assert info["scopes"] == ["openid", "profile"]
    assert info["session_issued_at"] == info["issued_at"]
    assert info["idle_deadline"] == info["issued_at"] + 10 * 3600
    assert info["client_id"] == CLI and info["session_id"]


def test_logout_ends_the_session_at_once(client):
    t = tokens(client)
    r = client.http.post("/v1/logout", headers=bearer(t["access_token"]))
    assert r.status_code == 204
    assert refresh(client, t["refresh_token"]).status_code == 400
    assert client.http.get("/v1/me", headers=bearer(t["access_token"])).status_code == 401


def test_sessions_list_and_end_one(client):
    t1, t2 = tokens(client), tokens(client)
    listed = body(client.http.get("/v1/sessions", headers=bearer(t1["access_token"])))["sessions"]
    assert len(listed) == 2 and sum(s["current"] for s in listed) == 1
    other = next(s["id"] for s in listed if not s["current"])
    assert client.http.delete(f"/v1/sessions/{other}", headers=bearer(t1["access_token"])).status_code == 204
    assert refresh(client, t2["refresh_token"]).status_code == 400
    assert refresh(client, t1["refresh_token"]).status_code == 200


def test_cannot_end_another_users_session(client):
    alice = tokens(client)
    bob = tokens(client, username="bob", password="password4bob")
    bob_sessions = body(client.http.get("/v1/sessions", headers=bearer(bob["access_token"])))["sessions"]
    r = client.http.delete(f"/v1/sessions/{bob_sessions[0]['id']}", headers=bearer(alice["access_token"]))
    assert r.status_code == 404 and body(r)["title"] == "Not Found"
    assert refresh(client, bob["refresh_token"], ).status_code == 200


def test_introspect_active_access_token(client):
    t = tokens(client, scope="openid email")
    info = body(introspect(client, t["access_token"]))
    assert info["active"] is True and info["client_id"] == CLI and info["username"] == "alice"
    assert info["scope"] == "email openid" and info["sid"]


def test_introspect_refresh_token_and_after_rotation(client):
    t = tokens(client)
    assert body(introspect(client, t["refresh_token"]))["active"] is True
    refresh(client, t["refresh_token"])
    assert body(introspect(client, t["refresh_token"])) == {"active": False}


def test_introspect_ended_session_access_token_is_inactive_before_expiry(client):
    t = tokens(client)
    client.http.post("/v1/logout", headers=bearer(t["access_token"]))
    assert body(introspect(client, t["access_token"])) == {"active": False}


@pytest.mark.parametrize("token", ["", "garbage", "tsr_" + "a" * 44, "eyJ.x.y"])
def test_introspect_garbage(client, token):
    r = introspect(client, token)
    if token:
        assert body(r) == {"active": False}
    else:
        assert r.status_code == 400 and body(r)["error"] == "invalid_request"


def test_introspection_requires_an_authenticated_allowed_client(client):
    t = tokens(client)
    public = form(client, "/oauth/introspect", client_id=CLI, token=t["access_token"])
    assert public.status_code == 401 and body(public)["error"] == "invalid_client"
    wrong = introspect(client, t["access_token"], auth=basic(RS, "nope"))
    assert wrong.status_code == 401


def test_revoke_refresh_token_ends_the_session(client):
    t = tokens(client)
    assert revoke(client, t["refresh_token"]).status_code == 200
    assert refresh(client, t["refresh_token"]).status_code == 400
    assert client.http.get("/v1/me", headers=bearer(t["access_token"])).status_code == 401


def test_revoke_access_token_ends_the_session(client):
    t = tokens(client)
    assert revoke(client, t["access_token"]).status_code == 200
    assert refresh(client, t["refresh_token"]).status_code == 400


def test_revoke_unknown_token_is_200(client):
    assert revoke(client, "tsr_" + "0" * 44).status_code == 200
    assert revoke(client, "whatever").status_code == 200


@pytest.mark.parametrize("kind", ["refresh_token", "access_token"])
def test_revoke_another_clients_token_is_unauthorized_client_and_changes_nothing(client, kind):
    # RFC 7009 §2.1 refuses it; RFC 6749 §5.2 unauthorized_client names the cause.
    t = tokens(client)
    r = revoke(client, t[kind], client_id="other-cli")
    assert r.status_code == 400 and body(r)["error"] == "unauthorized_client"
    assert r.headers["Cache-Control"] == "no-store"
    assert refresh(client, t["refresh_token"]).status_code == 200


def test_userinfo_returns_claims_by_scope(client):
    t = tokens(client, scope="openid email")
    claims = body(client.http.get("/oauth/userinfo", headers=bearer(t["access_token"])))
    assert claims == {"sub": claims["sub"], "email": "alice@example.com"}


def test_userinfo_without_openid_is_insufficient_scope(client):
    t = tokens(client, scope="profile")
    r = client.http.get("/oauth/userinfo", headers=bearer(t["access_token"]))
    assert r.status_code == 403 and body(r)["error"] == "insufficient_scope"


def test_userinfo_bad_token_is_invalid_token_with_challenge(client):
    r = client.http.get("/oauth/userinfo", headers=bearer("nope"))
    assert r.status_code == 401 and body(r)["error"] == "invalid_token"
    assert 'Bearer realm="tessera", error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_disabled_user_token_is_refused(client, ctr):
    t = tokens(client)
    ctr.identities.set_user_active("alice", False)
    assert client.http.get("/v1/me", headers=bearer(t["access_token"])).status_code == 401


def test_discovery_lists_what_works(client):
    doc = body(client.http.get("/.well-known/openid-configuration"))
    assert {"password", "refresh_token", "client_credentials"} <= set(doc["grant_types_supported"])
    assert "authorization_code" in doc["grant_types_supported"]
    assert doc["token_endpoint"].endswith("/oauth/token")
    for name in ("revocation_endpoint", "introspection_endpoint", "userinfo_endpoint"):
        assert doc[name].startswith("https://tessera.test/")


def test_introspection_token_type_is_bearer_and_the_kind_has_its_own_member(client):
    """RFC 7662 §2.2: token_type is the RFC 6749 §7.1 type; Tessera's kind is separate."""
    t = tokens(client)
    access, refresh_info = body(introspect(client, t["access_token"])), \
        body(introspect(client, t["refresh_token"]))
    assert (access["token_type"], access["tessera_token_kind"]) == ("Bearer", "access_token")
    assert (refresh_info["token_type"], refresh_info["tessera_token_kind"]) == \
        ("Bearer", "refresh_token")
    assert access["iss"] == refresh_info["iss"] == "https://tessera.test"
    assert "kind" not in access and "kind" not in refresh_info


def test_pat_introspection_names_the_issuer(client):
    import json

    access = tokens(client)["access_token"]
    r = client.http.post("/v1/tokens", body=json.dumps(
        {"description": "ci", "expires_at": "2027-02-15", "scopes": ["api:read"]}).encode(),
        headers={"Content-Type": "application/json", **bearer(access)})
    info = body(introspect(client, body(r)["token"]))
    assert info["active"] is True and info["iss"] == "https://tessera.test"
    assert (info["token_type"], info["tessera_token_kind"]) == ("Bearer", "pat")
