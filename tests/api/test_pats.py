"""Personal access tokens over the API (SPEC §5, issue 5)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.security.opaque import PAT
from tests.api.helpers import RS, RS_SECRET, basic, bearer, body, form, refresh, seed, tokens

UNAUTHORIZED = {"type": "about:blank", "title": "Unauthorized", "status": 401,
                "detail": "Provided token is not valid"}
JSON = {"Content-Type": "application/json"}
# FakeClock starts at 1_800_000_000 = 2027-01-15T08:00:00Z
TOMORROW, NEXT_MONTH, FAR = "2027-01-16", "2027-02-15", "2030-01-01"


def call(client: Any, method: str, path: str, token: str, payload: Any = None,
         headers: dict[str, str] | None = None) -> Any:
    hdrs = {**bearer(token), **(headers or {})}
    data = b""
    if payload is not None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        hdrs = {**JSON, **hdrs}
    return getattr(client.http, method)(path, body=data, headers=hdrs)


def generate(client: Any, token: str, **fields: Any) -> Any:
    payload = {"description": "ci", "expires_at": NEXT_MONTH, "scopes": ["api:read"], **fields}
    return call(client, "post", "/v1/tokens", token, payload)


def new_pat(client: Any, token: str, **fields: Any) -> dict[str, Any]:
    r = generate(client, token, **fields)
    assert r.status_code == 201, r.body
    return body(r)


@pytest.fixture
def alice(client: Any, ctr: Any) -> str:
    seed(ctr)
    return tokens(client)["access_token"]


@pytest.fixture
def bob(client: Any, alice: str) -> str:
    return tokens(client, username="bob", password="password4bob")["access_token"]


def assert_problem(r: Any, status: int, detail_part: str = "") -> dict[str, Any]:
    assert r.status_code == status, r.body
    assert r.headers["Content-Type"] == "application/problem+json"
    b = body(r)
    assert b["status"] == status and b["type"] == "about:blank"
    assert detail_part in b["detail"]
    return b


# -- generate ---------------------------------------------------------------------

def test_generate_returns_the_secret_once_with_201(client, alice):
    r = generate(client, alice, description="deploy bot")
    assert r.status_code == 201
    assert r.headers["Cache-Control"] == "no-store"
    b = body(r)
    assert PAT.matches(b["token"]) and b["token"].startswith("tsp_")
    assert b["description"] == "deploy bot" and b["expires_at"] == NEXT_MONTH
    assert b["scopes"] == ["api:read"] and b["state"] == "active" and b["last_used_at"] is None
    assert b["hint"] == "tsp_…" + b["token"][-4:]
    listed = body(call(client, "get", "/v1/tokens", alice))["tokens"]
    assert [t["id"] for t in listed] == [b["id"]]
    assert "token" not in listed[0] and b["token"] not in json.dumps(listed)


def test_generate_with_an_api_set(client, alice):
    b = new_pat(client, alice, scopes=None, api_set="ide-plugins")
    assert b["api_set"] == "ide-plugins" and b["scopes"] == ["profile", "api:read"]


def test_scopes_lists_scopes_and_api_sets(client, alice):
    r = client.http.get("/v1/scopes")
    assert r.status_code == 200
    b = body(r)
    assert "tokens:manage" in b["scopes"] and "extended-access" in b["api_sets"]


@pytest.mark.parametrize(("fields", "detail"), [
    ({"description": ""}, "description must not be empty"),
    ({"description": "x" * 201}, "at most 200"),
    ({"description": 5}, "description must be a string"),
    ({"description": "a\nb"}, "control characters"),
    ({"expires_at": "2027-13-01"}, "not a valid calendar date"),
    ({"expires_at": "15/02/2027"}, "YYYY-MM-DD"),
    ({"expires_at": 1800000000}, "YYYY-MM-DD"),
    ({"expires_at": "2027-01-15"}, "2027-01-16 or later"),
    ({"expires_at": FAR}, "at most 366 days"),
    ({"expires_at": None}, "does not allow tokens without an expiry"),
    ({"scopes": []}, "must not be empty"),
    ({"scopes": "api:read"}, "list of strings"),
    ({"scopes": ["nope"]}, "Unknown scopes: nope"),
    ({"scopes": None}, "Give scopes"),
    ({"api_set": "marketplace"}, "not both"),
    ({"scopes": None, "api_set": "nope"}, "api_set must be one of"),
    ({"color": "red"}, "Unknown fields: color"),
])
def test_generate_rejects_invalid_fields_with_422(client, alice, fields, detail):
    assert_problem(generate(client, alice, **fields), 422, detail)


def test_generate_rejects_scopes_the_owner_does_not_hold(client, ctr, alice):
    ctr.identities.create_user("carol", "password4carol", scopes=["profile", "tokens:manage",
                                                                  "openid"])
    carol = tokens(client, username="carol", password="password4carol",
                   scope="openid profile tokens:manage")["access_token"]
    assert_problem(generate(client, carol, scopes=["api:write"]), 422, "do not hold these scopes")


def test_generate_rejects_malformed_bodies(client, alice):
    assert_problem(call(client, "post", "/v1/tokens", alice, b"{nope"), 400, "not valid JSON")
    assert_problem(call(client, "post", "/v1/tokens", alice, b"[1]"), 400, "JSON object")
    assert_problem(call(client, "post", "/v1/tokens", alice, b'{"a":1,"a":2}'), 400)
    assert_problem(call(client, "post", "/v1/tokens", alice, b"\xff\xfe"), 400, "UTF-8")
    r = client.http.post("/v1/tokens", body=b"description=x",
                         headers={**bearer(alice), "Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(r, 415)


def test_no_expiry_where_the_stage_allows_it(client, ctr, alice):
    ctr.settings = type(ctr.settings)(**{**ctr.settings.__dict__, "pat_allow_no_expiry": True,
                                         "pat_max_lifetime_days": 0})
    ctr.__dict__.pop("pats", None)
    b = new_pat(client, alice, expires_at=None)
    assert b["expires_at"] is None and b["expires_at_epoch"] is None
    assert new_pat(client, alice, expires_at=FAR)["expires_at"] == FAR


def test_expiry_defaults_to_thirty_days(client, alice):
    payload = {"description": "d", "scopes": ["api:read"]}
    r = call(client, "post", "/v1/tokens", alice, payload)
    assert body(r)["expires_at"] == "2027-02-14"


def test_the_number_of_tokens_per_user_is_capped(client, ctr, alice):
    ctr.pats.cap = 3
    for _ in range(3):
        new_pat(client, alice)
    assert_problem(generate(client, alice), 409, "maximum of 3")
    first = body(call(client, "get", "/v1/tokens", alice))["tokens"][0]["id"]
    assert call(client, "delete", f"/v1/tokens/{first}", alice).status_code == 204
    new_pat(client, alice)


# -- authentication and authorization ------------------------------------------------

def test_token_api_without_credentials_is_the_exact_401(client, alice):
    for method, path in [("get", "/v1/tokens"), ("post", "/v1/tokens"), ("get", "/v1/tokens/x"),
                         ("delete", "/v1/tokens/x"), ("post", "/v1/tokens/remove")]:
        r = getattr(client.http, method)(path)
        assert r.status_code == 401 and body(r) == UNAUTHORIZED
    r = client.http.get("/v1/tokens", headers=bearer("tsp_" + "A" * 60))
    assert body(r) == UNAUTHORIZED


def test_a_session_token_without_the_scope_is_403(client, alice):
    narrow = tokens(client, scope="openid profile")["access_token"]
    assert_problem(call(client, "get", "/v1/tokens", narrow), 403, "tokens:read")
    assert_problem(generate(client, narrow), 403, "tokens:manage")


def test_changes_need_a_password_after_ten_minutes(client, clock, alice):
    rt = tokens(client)["refresh_token"]
    clock.advance(601)
    at = body(refresh(client, rt))["access_token"]
    assert_problem(generate(client, at), 403, "password")
    assert_problem(generate(client, at, password="wrong-password"), 403, "Password confirmation failed")
    assert_problem(generate(client, at, password=7), 422, "password must be a string")
    assert generate(client, at, password="password4alice").status_code == 201
    # reading needs no confirmation
    assert call(client, "get", "/v1/tokens", at).status_code == 200


def test_repeated_wrong_passwords_are_throttled(client, clock, alice):
    rt = tokens(client)["refresh_token"]
    clock.advance(601)
    at = body(refresh(client, rt))["access_token"]
    for _ in range(10):
        generate(client, at, password="wrong-password")
    assert_problem(generate(client, at, password="password4alice"), 403, "Password confirmation failed")


def test_a_pat_with_tokens_manage_needs_the_password_for_changes(client, alice):
    manager = new_pat(client, alice, scopes=["tokens:manage"])["token"]
    assert call(client, "get", "/v1/tokens", manager).status_code == 200
    assert_problem(generate(client, manager), 403, "password")
    r = generate(client, manager, password="password4alice")
    assert r.status_code == 201
    assert body(r)["created_from"]["client_id"].startswith("pat:")


def test_a_pat_with_tokens_read_may_list_but_not_change(client, alice):
    reader = new_pat(client, alice, scopes=["tokens:read"])["token"]
    assert call(client, "get", "/v1/tokens", reader).status_code == 200
    assert_problem(generate(client, reader, password="password4alice"), 403, "tokens:manage")


def test_a_pat_without_token_scopes_cannot_use_the_token_api(client, alice):
    pat = new_pat(client, alice)["token"]
    assert_problem(call(client, "get", "/v1/tokens", pat), 403)


# -- list, get, filters ------------------------------------------------------------

def test_list_filters_by_state_and_time(client, ctr, clock, alice):
    new_pat(client, alice, description="a", expires_at=TOMORROW)
    clock.advance(100)
    b = new_pat(client, alice, description="b")
    c = new_pat(client, alice, description="c")
    call(client, "get", "/v1/me", c["token"])
    form(client, "/oauth/revoke", headers=basic(RS, RS_SECRET), token=b["token"])

    def ids(query: str) -> list[str]:
        r = call(client, "get", "/v1/tokens" + query, tokens(client)["access_token"])
        assert r.status_code == 200, r.body
        return sorted(t["description"] for t in body(r)["tokens"])

    assert ids("") == ["a", "b", "c"]
    assert ids("?state=revoked") == ["b"]
    assert ids("?state=active") == ["a", "c"]
    assert ids(f"?created_before={1_800_000_050}") == ["a"]
    assert ids(f"?created_after={1_800_000_050}") == ["b", "c"]
    assert ids(f"?last_used_after={1_800_000_050}") == ["c"]
    assert ids(f"?last_used_before={1_800_000_050}") == ["a", "b"]
    assert ids("?created_after=2027-01-16") == []
    clock.advance(86400)
    assert ids("?state=expired") == ["a"]


@pytest.mark.parametrize(("query", "detail"), [
    ("?state=gone", "state must be one of"),
    ("?created_before=yesterday", "epoch seconds or a date"),
    ("?sort=asc", "Unknown query parameters: sort"),
])
def test_list_rejects_bad_filters(client, alice, query, detail):
    assert_problem(call(client, "get", "/v1/tokens" + query, alice), 422, detail)


def test_list_rejects_a_repeated_filter(client, alice):
    assert_problem(call(client, "get", "/v1/tokens?state=active&state=revoked", alice), 400, "repeated")


def test_get_one_token(client, alice):
    pat = new_pat(client, alice)
    r = call(client, "get", f"/v1/tokens/{pat['id']}", alice)
    assert r.status_code == 200 and body(r)["id"] == pat["id"] and "token" not in body(r)
    assert_problem(call(client, "get", "/v1/tokens/" + "Z" * 16, alice), 404, "No such token")
    assert_problem(call(client, "get", "/v1/tokens/not-an-id", alice), 404)


# -- edit ----------------------------------------------------------------------------

def test_edit_description_expiry_and_scopes(client, alice):
    pat = new_pat(client, alice)
    r = call(client, "patch", f"/v1/tokens/{pat['id']}", alice,
             {"description": "renamed", "expires_at": TOMORROW, "scopes": ["profile", "api:write"]})
    assert r.status_code == 200, r.body
    b = body(r)
    assert (b["description"], b["expires_at"], b["scopes"]) == ("renamed", TOMORROW,
                                                                ["api:write", "profile"])
    r = call(client, "patch", f"/v1/tokens/{pat['id']}", alice, {"api_set": "marketplace"})
    assert body(r)["api_set"] == "marketplace"
    me = call(client, "get", "/v1/token-info", pat["token"])
    assert body(me)["scopes"] == ["api:read", "email", "profile"]


@pytest.mark.parametrize(("payload", "status", "detail"), [
    ({}, 422, "Nothing to change"),
    ({"expires_at": FAR}, 422, "at most 366 days"),
    ({"scopes": ["nope"]}, 422, "Unknown scopes"),
    ({"token": "x"}, 422, "Unknown fields: token"),
])
def test_edit_rejects_invalid_changes(client, alice, payload, status, detail):
    pat = new_pat(client, alice)
    assert_problem(call(client, "patch", f"/v1/tokens/{pat['id']}", alice, payload), status, detail)


def test_edit_of_a_revoked_token_is_409(client, alice):
    pat = new_pat(client, alice)
    form(client, "/oauth/revoke", headers=basic(RS, RS_SECRET), token=pat["token"])
    assert_problem(call(client, "patch", f"/v1/tokens/{pat['id']}", alice, {"description": "x"}),
                   409, "revoked")


# -- regenerate, copy, remove -------------------------------------------------------

def test_regenerate_keeps_id_and_settings_and_stops_the_old_secret(client, alice):
    pat = new_pat(client, alice, description="keep me")
    r = call(client, "post", f"/v1/tokens/{pat['id']}/regenerate", alice)
    assert r.status_code == 200, r.body
    b = body(r)
    assert b["id"] == pat["id"] and b["description"] == "keep me" and b["token"] != pat["token"]
    assert body(call(client, "get", "/v1/me", pat["token"])) == UNAUTHORIZED
    assert call(client, "get", "/v1/me", b["token"]).status_code == 200


def test_regenerate_refuses_expired_and_revoked_tokens(client, clock, alice):
    old = new_pat(client, alice, expires_at=TOMORROW)
    revoked = new_pat(client, alice)
    form(client, "/oauth/revoke", headers=basic(RS, RS_SECRET), token=revoked["token"])
    assert_problem(call(client, "post", f"/v1/tokens/{revoked['id']}/regenerate", alice), 409, "revoked")
    clock.advance(86400)
    at = tokens(client)["access_token"]
    assert_problem(call(client, "post", f"/v1/tokens/{old['id']}/regenerate", at), 409, "expired")


def test_copy_makes_a_new_token_with_the_same_settings(client, alice):
    pat = new_pat(client, alice, description="orig", scopes=["api:read", "profile"])
    r = call(client, "post", f"/v1/tokens/{pat['id']}/copy", alice)
    assert r.status_code == 201, r.body
    b = body(r)
    assert b["id"] != pat["id"] and b["token"] != pat["token"]
    assert (b["description"], b["scopes"], b["expires_at"]) == ("orig", ["api:read", "profile"],
                                                                NEXT_MONTH)
    r = call(client, "post", f"/v1/tokens/{pat['id']}/copy", alice, {"description": "copy"})
    assert body(r)["description"] == "copy"
    assert_problem(call(client, "post", f"/v1/tokens/{pat['id']}/copy", alice, {"scopes": []}),
                   422, "Unknown fields")


def test_copy_of_an_expired_token_needs_a_new_date(client, clock, alice):
    pat = new_pat(client, alice, expires_at=TOMORROW)
    clock.advance(86400)
    at = tokens(client)["access_token"]
    assert_problem(call(client, "post", f"/v1/tokens/{pat['id']}/copy", at), 422, "or later")
    r = call(client, "post", f"/v1/tokens/{pat['id']}/copy", at, {"expires_at": NEXT_MONTH})
    assert r.status_code == 201


def test_remove_one_token(client, alice):
    pat = new_pat(client, alice)
    r = call(client, "delete", f"/v1/tokens/{pat['id']}", alice)
    assert r.status_code == 204 and r.body == b""
    assert body(call(client, "get", "/v1/me", pat["token"])) == UNAUTHORIZED
    assert_problem(call(client, "delete", f"/v1/tokens/{pat['id']}", alice), 404)


def test_remove_with_a_password_in_the_body(client, clock, alice):
    pat = new_pat(client, alice)
    rt = tokens(client)["refresh_token"]
    clock.advance(601)
    at = body(refresh(client, rt))["access_token"]
    assert_problem(call(client, "delete", f"/v1/tokens/{pat['id']}", at), 403, "password")
    r = call(client, "delete", f"/v1/tokens/{pat['id']}", at, {"password": "password4alice"})
    assert r.status_code == 204


def test_bulk_remove(client, alice):
    a, b, c = (new_pat(client, alice) for _ in range(3))
    r = call(client, "post", "/v1/tokens/remove", alice, {"ids": [a["id"], b["id"], "Z" * 16, a["id"]]})
    assert r.status_code == 200, r.body
    assert body(r) == {"removed": [a["id"], b["id"]], "not_found": ["Z" * 16]}
    assert [t["id"] for t in body(call(client, "get", "/v1/tokens", alice))["tokens"]] == [c["id"]]


@pytest.mark.parametrize(("payload", "detail"), [
    ({"ids": []}, "must not be empty"),
    ({"ids": "abc"}, "list of token ids"),
    ({"ids": ["a"] * 101}, "At most 100"),
    ({}, "list of token ids"),
    ({"ids": ["a"], "all": True}, "Unknown fields: all"),
])
def test_bulk_remove_rejects_bad_input(client, alice, payload, detail):
    assert_problem(call(client, "post", "/v1/tokens/remove", alice, payload), 422, detail)


# -- isolation: bob never sees or touches alice's tokens --------------------------

@pytest.mark.parametrize(("method", "suffix", "payload"), [
    ("get", "", None),
    ("patch", "", {"description": "mine now"}),
    ("delete", "", None),
    ("post", "/regenerate", None),
    ("post", "/copy", None),
])
def test_another_users_token_is_404_for_every_verb(client, alice, bob, method, suffix, payload):
    pat = new_pat(client, alice)
    r = call(client, method, f"/v1/tokens/{pat['id']}{suffix}", bob, payload)
    assert_problem(r, 404, "No such token")
    # alice's token is untouched and still works
    assert body(call(client, "get", f"/v1/tokens/{pat['id']}", alice))["description"] == "ci"
    assert call(client, "get", "/v1/me", pat["token"]).status_code == 200


def test_another_users_tokens_are_not_listed_nor_bulk_removed(client, alice, bob):
    pat = new_pat(client, alice)
    assert body(call(client, "get", "/v1/tokens", bob))["tokens"] == []
    r = call(client, "post", "/v1/tokens/remove", bob, {"ids": [pat["id"]]})
    assert body(r) == {"removed": [], "not_found": [pat["id"]]}
    assert call(client, "get", f"/v1/tokens/{pat['id']}", alice).status_code == 200


# -- using a PAT ---------------------------------------------------------------------

def test_a_pat_works_as_bearer_basic_and_query_parameter(client, alice):
    pat = new_pat(client, alice)["token"]
    for r in (client.http.get("/v1/me", headers=bearer(pat)),
              client.http.get("/v1/me", headers=basic("any", pat)),
              client.http.get(f"/v1/me?session={pat}")):
        assert r.status_code == 200, r.body
        assert body(r)["email"] == "alice@example.com"


def test_the_query_parameter_can_be_switched_off(client, ctr, alice):
    pat = new_pat(client, alice)["token"]
    ctr.settings = type(ctr.settings)(**{**ctr.settings.__dict__, "pat_query_param": False})
    assert body(client.http.get(f"/v1/me?session={pat}")) == UNAUTHORIZED


def test_the_query_parameter_takes_only_pats_and_only_alone(client, alice):
    pat = new_pat(client, alice)["token"]
    assert body(client.http.get(f"/v1/me?session={alice}")) == UNAUTHORIZED
    assert_problem(client.http.get(f"/v1/me?session={pat}", headers=bearer(pat)), 400, "once")
    assert_problem(client.http.get(f"/v1/me?session={pat}&session={pat}"), 400, "repeated")


def test_token_info_describes_a_pat(client, alice):
    pat = new_pat(client, alice, description="info", scopes=["api:read", "profile"])
    b = body(call(client, "get", "/v1/token-info", pat["token"]))
    assert b["type"] == "pat" and b["id"] == pat["id"] and b["description"] == "info"
    assert b["expires_on"] == NEXT_MONTH and b["expires_at"] == pat["expires_at_epoch"]
    assert b["scopes"] == ["api:read", "profile"]


def test_effective_rights_are_limited_by_the_owner(client, ctr, alice):
    pat = new_pat(client, alice, scopes=["api:read", "profile"])
    ctr.users.table.update({"id": ctr.identities.find_user("alice").id}, "SET scopes = :s",
                           values={":s": ["profile", "tokens:manage"]})
    assert body(call(client, "get", "/v1/token-info", pat["token"]))["scopes"] == ["profile"]


@pytest.mark.parametrize("mutate", ["expire", "revoke", "disable", "checksum", "prefix"])
def test_dead_pats_get_the_exact_401(client, ctr, clock, alice, mutate):
    pat = new_pat(client, alice, expires_at=TOMORROW)["token"]
    if mutate == "expire":
        clock.advance(86400)
    elif mutate == "revoke":
        form(client, "/oauth/revoke", headers=basic(RS, RS_SECRET), token=pat)
    elif mutate == "disable":
        ctr.identities.set_user_active("alice", False)
    elif mutate == "checksum":
        pat = pat[:-1] + ("A" if pat[-1] != "A" else "B")
    else:
        pat = "tsx_" + pat[4:]
    for headers in (bearer(pat), basic("x", pat)):
        r = client.http.get("/v1/me", headers=headers)
        assert r.status_code == 401 and body(r) == UNAUTHORIZED


def test_last_used_is_written_at_most_once_per_resolution(client, ctr, clock, alice):
    pat = new_pat(client, alice)
    t0 = clock.now()
    call(client, "get", "/v1/me", pat["token"])
    clock.advance(200)
    call(client, "get", "/v1/me", pat["token"])
    assert body(call(client, "get", f"/v1/tokens/{pat['id']}", alice))["last_used_at"] == t0
    clock.advance(401)
    call(client, "get", "/v1/me", pat["token"])
    fresh = tokens(client)["access_token"]
    assert body(call(client, "get", f"/v1/tokens/{pat['id']}", fresh))["last_used_at"] == t0 + 601


def test_logout_with_a_pat_is_refused(client, alice):
    pat = new_pat(client, alice)["token"]
    assert_problem(client.http.post("/v1/logout", headers=bearer(pat)), 400, "no session")


# -- introspection and revocation ----------------------------------------------------

def test_introspection_reports_a_pat(client, alice):
    pat = new_pat(client, alice, scopes=["api:read"])
    r = form(client, "/oauth/introspect", headers=basic(RS, RS_SECRET), token=pat["token"])
    b = body(r)
    assert b["active"] is True and b["scope"] == "api:read" and b["token_type"] == "Bearer"
    assert b["tessera_token_kind"] == "pat"
    assert b["pat_id"] == pat["id"] and b["exp"] == pat["expires_at_epoch"]
    assert b["sub"] == body(call(client, "get", "/v1/me", alice))["id"]


def test_introspection_of_dead_or_malformed_pats_is_inactive(client, alice):
    pat = new_pat(client, alice)
    call(client, "delete", f"/v1/tokens/{pat['id']}", alice)
    for token in (pat["token"], pat["token"][:-1] + "0", "tsp_short"):
        r = form(client, "/oauth/introspect", headers=basic(RS, RS_SECRET), token=token)
        assert body(r) == {"active": False}


def test_revocation_revokes_a_pat_and_is_200_for_unknown_ones(client, alice):
    pat = new_pat(client, alice)
    for token in (pat["token"], pat["token"], "tsp_" + "1" * 60):
        r = form(client, "/oauth/revoke", headers=basic(RS, RS_SECRET), token=token)
        assert r.status_code == 200
    assert body(call(client, "get", "/v1/me", pat["token"])) == UNAUTHORIZED
    assert body(call(client, "get", f"/v1/tokens/{pat['id']}", alice))["state"] == "revoked"


def test_a_pat_in_the_session_parameter_is_no_list_filter(client, alice):
    """RFC 6750 §2.3: the ``session`` parameter carries the credential; the list does
    not take it for an unknown filter."""
    reader = new_pat(client, alice, scopes=["tokens:read"])
    r = client.http.get(f"/v1/tokens?session={reader['token']}&state=active")
    assert r.status_code == 200, r.body
    assert [t["id"] for t in body(r)["tokens"]] == [reader["id"]]
