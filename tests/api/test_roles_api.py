"""The roles API over HTTP (SPEC §6, issue 12): roles, policies, keys and trust
policies; the owner alone sees a role; scope, confirmation, caps and audit."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chalicelib.config import Settings
from chalicelib.errors import Unprocessable
from chalicelib.security.opaque import ROLE_KEY_SECRET, digest, is_role_key_access_id
from chalicelib.services.roles import Roles
from chalicelib.storage.roles import policy_id_for
from tests.api.helpers import bearer, body, refresh, seed, tokens

JSON = {"Content-Type": "application/json"}
POLICY = "data:get@urn:tessera:data:alice.workspace"
GITHUB = "https://token.actions.githubusercontent.com"
TRUST = {"issuer": GITHUB, "audience": "tessera", "subject": "repo:acme/app:ref:refs/heads/main",
         "claims": {"repository_owner": "acme"}}
NOT_FOUND_ROLE = {"type": "about:blank", "title": "Not Found", "status": 404,
                  "detail": "No such role"}


def call(client: Any, method: str, path: str, token: str, payload: Any = None) -> Any:
    headers = bearer(token)
    data = b""
    if payload is not None:
        data = json.dumps(payload).encode()
        headers = {**JSON, **headers}
    return getattr(client.http, method)(path, body=data, headers=headers)


def assert_problem(r: Any, status: int, detail_part: str = "") -> dict[str, Any]:
    assert r.status_code == status, r.body
    assert r.headers["Content-Type"] == "application/problem+json"
    b = body(r)
    assert b["status"] == status and b["type"] == "about:blank" and detail_part in b["detail"]
    return b


def created(r: Any) -> dict[str, Any]:
    assert r.status_code == 201, r.body
    assert r.headers["Cache-Control"] == "no-store"
    return body(r)


@pytest.fixture
def alice(client: Any, ctr: Any) -> str:
    seed(ctr)
    return str(tokens(client)["access_token"])


@pytest.fixture
def bob(client: Any, alice: str) -> str:
    return str(tokens(client, username="bob", password="password4bob")["access_token"])


@pytest.fixture
def role(client: Any, alice: str) -> dict[str, Any]:
    """alice.ci with a policy, a key and a trust policy."""
    made = created(call(client, "post", "/v1/roles", alice, {"name": "alice.ci",
                                                             "description": "CI"}))
    made["policy"] = created(call(client, "post", "/v1/roles/alice.ci/policies", alice,
                                  {"permission": POLICY}))
    made["key"] = created(call(client, "post", "/v1/roles/alice.ci/keys", alice,
                               {"description": "deploy"}))
    made["trust"] = created(call(client, "post", "/v1/roles/alice.ci/trust", alice, TRUST))
    return made


def with_settings(ctr: Any, **changes: Any) -> None:
    """The stage's settings changed; the roles service is built again with them."""
    ctr.settings = dataclasses.replace(ctr.settings, **changes)
    ctr.__dict__.pop("roles", None)


def stale_access_token(client: Any, clock: Any) -> str:
    """An access token whose session's sign-in is older than ten minutes."""
    rt = tokens(client)["refresh_token"]
    clock.advance(601)
    return str(body(refresh(client, rt))["access_token"])


# -- roles ------------------------------------------------------------------------------

def test_create_answers_201_with_the_role(client, alice):
    b = created(call(client, "post", "/v1/roles", alice, {"name": "alice.ci", "description": "CI"}))
    assert b == {"name": "alice.ci", "description": "CI", "created_at": 1_800_000_000,
                 "policies": []}


def test_the_description_is_optional(client, alice):
    assert created(call(client, "post", "/v1/roles", alice, {"name": "alice.x"}))["description"] == ""


def test_a_name_under_another_username_is_403(client, alice):
    b = assert_problem(call(client, "post", "/v1/roles", alice, {"name": "bob.ci"}), 403,
                       "A role's name starts with your username")
    assert "alice.ci" in b["detail"]
    assert body(call(client, "get", "/v1/roles", alice))["roles"] == []


@pytest.mark.parametrize("name", ["ci", "Alice.ci", "alice.CI", "alice.c_i", "alice.-ci", "alice.",
                                  "alice.ci-", ".ci", "alice ci", "alice." + "x" * 65])
def test_a_malformed_name_is_422_naming_the_rule(client, alice, name):
    b = assert_problem(call(client, "post", "/v1/roles", alice, {"name": name}), 422,
                       "name must be <your username>.<name>")
    assert b["errors"][0]["pointer"] == "#/name"


@pytest.mark.parametrize("payload, pointer", [
    ({}, "#/name"), ({"name": 7}, "#/name"), ({"name": "alice.ci", "description": ""}, "#/description"),
    ({"name": "alice.ci", "policies": []}, "#/policies")])
def test_a_bad_body_is_422_with_the_field_error(client, alice, payload, pointer):
    b = assert_problem(call(client, "post", "/v1/roles", alice, payload), 422)
    assert [e["pointer"] for e in b["errors"]] == [pointer]


def test_a_taken_name_is_409(client, alice):
    created(call(client, "post", "/v1/roles", alice, {"name": "alice.ci"}))
    assert_problem(call(client, "post", "/v1/roles", alice, {"name": "alice.ci"}), 409,
                   "already have a role named alice.ci")


def test_list_and_get_show_the_callers_roles(client, alice, role):
    created(call(client, "post", "/v1/roles", alice, {"name": "alice.app"}))
    listed = body(call(client, "get", "/v1/roles", alice))["roles"]
    assert [r["name"] for r in listed] == ["alice.app", "alice.ci"]
    one = body(call(client, "get", "/v1/roles/alice.ci", alice))
    assert one == {"name": "alice.ci", "description": "CI", "created_at": 1_800_000_000,
                   "policies": [{"id": policy_id_for(POLICY), "permission": POLICY}]}
    assert listed[1] == one


def test_a_missing_role_is_404(client, alice):
    assert body(call(client, "get", "/v1/roles/alice.nope", alice)) == NOT_FOUND_ROLE
    assert body(call(client, "get", "/v1/roles/not-a-role-name", alice)) == NOT_FOUND_ROLE


def test_deleting_a_role_takes_its_keys_and_frees_the_name(client, ctr, alice, role):
    r = call(client, "delete", "/v1/roles/alice.ci", alice)
    assert r.status_code == 204 and r.body in (b"", "")
    assert call(client, "get", "/v1/roles/alice.ci", alice).status_code == 404
    assert ctr.roles_repo.get("alice.ci") is None   # the keys lived in the role's item
    assert_problem(call(client, "delete", "/v1/roles/alice.ci", alice), 404, "No such role")
    again = created(call(client, "post", "/v1/roles", alice, {"name": "alice.ci"}))
    assert again["policies"] == []
    assert body(call(client, "get", "/v1/roles/alice.ci/keys", alice))["keys"] == []


def test_the_number_of_roles_per_user_is_capped_with_409(client, ctr, alice):
    with_settings(ctr, max_roles_per_user=2)
    for name in ("alice.a", "alice.b"):
        created(call(client, "post", "/v1/roles", alice, {"name": name}))
    assert_problem(call(client, "post", "/v1/roles", alice, {"name": "alice.c"}), 409,
                   "maximum of 2 roles")
    assert call(client, "delete", "/v1/roles/alice.a", alice).status_code == 204
    created(call(client, "post", "/v1/roles", alice, {"name": "alice.c"}))


# -- who may: the owner alone, with roles:manage ----------------------------------------

def every_call(role: dict[str, Any], name: str) -> list[tuple[str, str, Any]]:
    pid, kid, tid = role["policy"]["id"], role["key"]["id"], role["trust"]["id"]
    return [
        ("get", f"/v1/roles/{name}", None),
        ("delete", f"/v1/roles/{name}", None),
        ("post", f"/v1/roles/{name}/policies", {"permission": POLICY}),
        ("get", f"/v1/roles/{name}/policies", None),
        ("delete", f"/v1/roles/{name}/policies/{pid}", None),
        ("post", f"/v1/roles/{name}/keys", {"description": "mine now",
                                            "password": "password4bob"}),
        ("get", f"/v1/roles/{name}/keys", None),
        ("delete", f"/v1/roles/{name}/keys/{kid}", None),
        ("post", f"/v1/roles/{name}/trust", TRUST),
        ("get", f"/v1/roles/{name}/trust", None),
        ("delete", f"/v1/roles/{name}/trust/{tid}", None),
    ]


def test_another_user_gets_404_on_every_verb_as_for_a_missing_role(client, ctr, alice, bob, role):
    before = ctr.roles_repo.get("alice.ci")
    for (method, path, payload), (_, missing, _) in zip(every_call(role, "alice.ci"),
                                                        every_call(role, "alice.nope"), strict=True):
        r = call(client, method, path, bob, payload)
        assert r.status_code == 404, (method, path, r.body)
        assert body(r) == NOT_FOUND_ROLE, (method, path)
        assert body(call(client, method, missing, bob, payload)) == body(r)
    assert ctr.roles_repo.get("alice.ci") == before
    assert body(call(client, "get", "/v1/roles", bob))["roles"] == []


def test_every_call_needs_roles_manage(client, alice, role):
    narrow = tokens(client, scope="openid profile tokens:manage")["access_token"]
    calls = [("post", "/v1/roles", {"name": "alice.x"}), ("get", "/v1/roles", None),
             *every_call(role, "alice.ci")]
    for method, path, payload in calls:
        r = call(client, method, path, narrow, payload)
        assert_problem(r, 403, "lacks the roles:manage scope")
        assert r.headers["WWW-Authenticate"] == \
            'Bearer realm="tessera", error="insufficient_scope", scope="roles:manage"'


def test_without_a_credential_it_is_the_exact_401(client, alice):
    r = client.http.get("/v1/roles")
    assert r.status_code == 401 and body(r) == {
        "type": "about:blank", "title": "Unauthorized", "status": 401,
        "detail": "Provided token is not valid"}
    assert "WWW-Authenticate" in r.headers


def test_a_pat_with_roles_manage_manages_roles_and_needs_the_password_for_keys(client, alice):
    pat = created(call(client, "post", "/v1/tokens", alice, {
        "description": "roles", "scopes": ["roles:manage"], "expires_at": "2027-02-15"}))["token"]
    created(call(client, "post", "/v1/roles", pat, {"name": "alice.ci"}))
    assert_problem(call(client, "post", "/v1/roles/alice.ci/keys", pat, {}), 403, "password")
    created(call(client, "post", "/v1/roles/alice.ci/keys", pat, {"password": "password4alice"}))


# -- policies ---------------------------------------------------------------------------

def test_a_policy_is_added_listed_and_removed(client, alice, role):
    pid = role["policy"]["id"]
    assert role["policy"] == {"id": pid, "permission": POLICY}
    assert body(call(client, "get", "/v1/roles/alice.ci/policies", alice)) == {
        "policies": [{"id": pid, "permission": POLICY}]}
    r = call(client, "delete", f"/v1/roles/alice.ci/policies/{pid}", alice)
    assert r.status_code == 204
    assert body(call(client, "get", "/v1/roles/alice.ci", alice))["policies"] == []
    assert_problem(call(client, "delete", f"/v1/roles/alice.ci/policies/{pid}", alice), 404,
                   "No such policy")
    assert_problem(call(client, "delete", "/v1/roles/alice.ci/policies/nope", alice), 404)


def test_adding_a_policy_the_role_has_changes_nothing(client, alice, role):
    again = created(call(client, "post", "/v1/roles/alice.ci/policies", alice,
                         {"permission": POLICY}))
    assert again == role["policy"]
    assert len(body(call(client, "get", "/v1/roles/alice.ci/policies", alice))["policies"]) == 1


def test_a_permission_is_stored_in_its_canonical_spelling(client, alice, role):
    p = created(call(client, "post", "/v1/roles/alice.ci/policies", alice,
                     {"permission": "data:*@urn:tessera:data:alice.*"}))
    assert p["permission"] == "data:*@urn:tessera:data:alice.*"


def test_a_policy_the_owner_does_not_hold_is_403(client, alice, role):
    for permission in ("data:get@urn:tessera:data:bob.workspace", "*", "data:get@urn:tessera:*:*"):
        assert_problem(call(client, "post", "/v1/roles/alice.ci/policies", alice,
                            {"permission": permission}), 403, "alice does not hold")
    assert len(body(call(client, "get", "/v1/roles/alice.ci", alice))["policies"]) == 1


def test_a_right_granted_to_the_owner_can_become_a_policy(client, ctr, alice, role):
    shared = "data:get@urn:tessera:data:bob.shared"
    assert call(client, "post", "/v1/roles/alice.ci/policies", alice,
                {"permission": shared}).status_code == 403
    ctr.identities.grant_permission("alice", shared)
    alice_now = tokens(client)["access_token"]
    created(call(client, "post", "/v1/roles/alice.ci/policies", alice_now, {"permission": shared}))


@pytest.mark.parametrize("permission, detail", [
    ("data:get", "must be action@resource"),
    ("da*ta:get@urn:tessera:data:alice.x", "a * only as a whole segment"),
    ("data:get@arn:aws:s3", "must be a URN"),
    (7, "permission must be a string"),
])
def test_a_malformed_permission_is_422_with_the_field_error(client, alice, role, permission, detail):
    b = assert_problem(call(client, "post", "/v1/roles/alice.ci/policies", alice,
                            {"permission": permission}), 422, detail)
    assert b["errors"][0]["pointer"] == "#/permission"


def test_policies_of_a_missing_role_are_404(client, alice):
    assert_problem(call(client, "post", "/v1/roles/alice.nope/policies", alice,
                        {"permission": POLICY}), 404, "No such role")
    assert_problem(call(client, "get", "/v1/roles/alice.nope/policies", alice), 404)


def test_the_policies_per_role_are_capped_with_409(client, ctr, alice, role):
    with_settings(ctr, max_policies_per_role=2)
    created(call(client, "post", "/v1/roles/alice.ci/policies", alice,
                 {"permission": "data:put@urn:tessera:data:alice.x"}))
    assert_problem(call(client, "post", "/v1/roles/alice.ci/policies", alice,
                        {"permission": "data:del@urn:tessera:data:alice.x"}), 409,
                   "maximum of 2 policies")


# -- keys -------------------------------------------------------------------------------

def test_a_new_key_shows_its_secret_once(client, ctr, alice, role):
    k = role["key"]
    assert set(k) == {"id", "access", "secret", "token", "description", "created_at"}
    assert is_role_key_access_id(k["access"]) and k["id"] == k["access"]
    assert ROLE_KEY_SECRET.matches(k["secret"]) and k["token"] == f"{k['access']}:{k['secret']}"
    assert k["description"] == "deploy" and k["created_at"] == 1_800_000_000
    # The secret names the role: owner id + role id.
    stored = ctr.roles_repo.get("alice.ci")
    assert ROLE_KEY_SECRET.parse(k["secret"]) == stored.owner + stored.id
    assert stored.keys[k["id"]].secret_hash == digest(k["secret"])
    listed = call(client, "get", "/v1/roles/alice.ci/keys", alice)
    assert body(listed) == {"keys": [{"id": k["id"], "description": "deploy",
                                      "created_at": 1_800_000_000, "last_used_at": None}]}
    everything = json.dumps([body(call(client, "get", path, alice)) for path in
                             ("/v1/roles", "/v1/roles/alice.ci", "/v1/roles/alice.ci/keys")])
    assert k["secret"] not in everything and digest(k["secret"]) not in everything
    raw = json.dumps(ctr.roles_repo.table.get({"owner": stored.owner, "id": stored.id}))
    assert k["secret"] not in raw


def test_a_key_without_a_body_has_an_empty_description(client, alice, role):
    r = client.http.post("/v1/roles/alice.ci/keys", headers=bearer(alice))
    assert created(r)["description"] == ""


def test_key_creation_needs_a_recent_sign_in_or_the_password(client, clock, alice, role):
    at = stale_access_token(client, clock)
    assert_problem(call(client, "post", "/v1/roles/alice.ci/keys", at, {}), 403, "password")
    assert_problem(call(client, "post", "/v1/roles/alice.ci/keys", at,
                        {"password": "wrong-password"}), 403, "Password confirmation failed")
    assert_problem(call(client, "post", "/v1/roles/alice.ci/keys", at, {"password": 7}), 422,
                   "password must be a string")
    assert len(body(call(client, "get", "/v1/roles/alice.ci/keys", at))["keys"]) == 1
    created(call(client, "post", "/v1/roles/alice.ci/keys", at, {"password": "password4alice"}))
    # Adding a policy grants lasting access too (the same rule); taking one away does not.
    assert_problem(call(client, "post", "/v1/roles/alice.ci/policies", at,
                        {"permission": "data:put@urn:tessera:data:alice.x"}), 403, "password")
    pid = role["policy"]["id"]
    assert call(client, "delete", f"/v1/roles/alice.ci/policies/{pid}", at).status_code == 204


def test_a_revoked_key_is_gone_and_revoking_twice_is_404(client, alice, role):
    kid = role["key"]["id"]
    assert call(client, "delete", f"/v1/roles/alice.ci/keys/{kid}", alice).status_code == 204
    assert body(call(client, "get", "/v1/roles/alice.ci/keys", alice))["keys"] == []
    assert_problem(call(client, "delete", f"/v1/roles/alice.ci/keys/{kid}", alice), 404,
                   "No such key")
    assert_problem(call(client, "delete", "/v1/roles/alice.ci/keys/tsk_x", alice), 404)


def test_the_keys_per_role_are_capped_with_409(client, ctr, alice, role):
    with_settings(ctr, max_keys_per_role=2)
    created(call(client, "post", "/v1/roles/alice.ci/keys", alice, {}))
    assert_problem(call(client, "post", "/v1/roles/alice.ci/keys", alice, {}), 409,
                   "maximum of 2 keys")


def test_keys_of_a_missing_role_are_404(client, alice):
    assert_problem(call(client, "post", "/v1/roles/alice.nope/keys", alice, {}), 404,
                   "No such role")


# -- trust ------------------------------------------------------------------------------

def test_a_trust_policy_is_added_listed_and_removed(client, alice, role):
    t = role["trust"]
    assert t == {"id": t["id"], "issuer": GITHUB, "audience": "tessera",
                 "subject": "repo:acme/app:ref:refs/heads/main",
                 "claims": {"repository_owner": "acme"}, "created_at": 1_800_000_000}
    assert body(call(client, "get", "/v1/roles/alice.ci/trust", alice)) == {"trust": [t]}
    assert call(client, "delete", f"/v1/roles/alice.ci/trust/{t['id']}", alice).status_code == 204
    assert body(call(client, "get", "/v1/roles/alice.ci/trust", alice)) == {"trust": []}
    assert_problem(call(client, "delete", f"/v1/roles/alice.ci/trust/{t['id']}", alice), 404,
                   "No such trust policy")


def test_adding_a_trust_policy_the_role_has_changes_nothing(client, clock, alice, role):
    clock.advance(5)
    again = created(call(client, "post", "/v1/roles/alice.ci/trust", alice, TRUST))
    assert again == role["trust"]


def test_a_subject_may_end_with_a_star_and_claims_are_optional(client, alice, role):
    t = created(call(client, "post", "/v1/roles/alice.ci/trust", alice,
                     {"issuer": "https://gitlab.com", "audience": "tessera",
                      "subject": "project_path:acme/app:*"}))
    assert t["subject"] == "project_path:acme/app:*" and t["claims"] == {}


def test_a_loopback_http_issuer_is_accepted_where_the_stage_allows_it(client, alice, role):
    t = created(call(client, "post", "/v1/roles/alice.ci/trust", alice,
                     {**TRUST, "issuer": "http://127.0.0.1:8123"}))
    assert t["issuer"] == "http://127.0.0.1:8123"


@pytest.mark.parametrize("field, value, detail", [
    ("issuer", "http://ci.example.com", "issuer must be an https URL"),
    ("issuer", "ftp://ci.example.com", "issuer must be an https URL"),
    ("issuer", "https://ci.example.com/?x=1", "no query or fragment"),
    ("issuer", "https://", "issuer must be an https URL"),
    ("issuer", "https://u:p@ci.example.com", "user information"),
    ("audience", "", "audience must not be empty"),
    ("subject", "", "subject must not be empty"),
    ("subject", "repo:*:main", "only at its very end"),
    ("subject", "*", "must name something before"),
    ("claims", {"sub": "x"}, "cannot be matched in claims"),
    ("claims", {"a": 1}, "must be a string"),
    ("claims", {"a": ""}, "must not be empty"),
    ("claims", "acme", "claims must be an object"),
])
def test_a_bad_trust_policy_is_422_with_the_field_error(client, alice, role, field, value, detail):
    b = assert_problem(call(client, "post", "/v1/roles/alice.ci/trust", alice,
                            {**TRUST, field: value}), 422, detail)
    assert b["errors"][0]["pointer"] == f"#/{field}"


def test_a_trust_policy_needs_issuer_audience_and_subject(client, alice, role):
    b = assert_problem(call(client, "post", "/v1/roles/alice.ci/trust", alice, {}), 422)
    assert sorted(e["pointer"] for e in b["errors"]) == ["#/audience", "#/issuer", "#/subject"]


def test_the_trust_policies_per_role_are_capped_with_409(client, ctr, alice, role):
    with_settings(ctr, max_trust_per_role=2)
    created(call(client, "post", "/v1/roles/alice.ci/trust", alice,
                 {**TRUST, "subject": "repo:acme/a"}))
    assert_problem(call(client, "post", "/v1/roles/alice.ci/trust", alice,
                        {**TRUST, "subject": "repo:acme/b"}), 409, "maximum of 2 trust policies")


def test_plain_http_issuers_are_refused_unless_the_stage_allows_them(ctr, alice):
    strict = Roles(ctr.roles_repo, ctr.clock, Settings(federation_allow_http=False),
                   users=ctr.users)
    owner = ctr.identities.find_user("alice")
    strict.create(owner, "alice.ci")
    with pytest.raises(Unprocessable, match="issuer must be an https URL"):
        strict.add_trust(owner, "alice.ci", {**TRUST, "issuer": "http://127.0.0.1:8123"})
    loose = Roles(ctr.roles_repo, ctr.clock, Settings(federation_allow_http=True), users=ctr.users)
    for host in ("127.0.0.1:8123", "localhost", "[::1]:9000", "127.1.2.3"):
        loose.add_trust(owner, "alice.ci", {**TRUST, "issuer": f"http://{host}"})
    with pytest.raises(Unprocessable):
        loose.add_trust(owner, "alice.ci", {**TRUST, "issuer": "http://10.0.0.1"})


def test_the_settings_default_to_the_issue_s_caps_and_no_plain_http():
    s = Settings.from_env({})
    assert (s.max_roles_per_user, s.max_policies_per_role, s.max_keys_per_role,
            s.max_trust_per_role, s.federation_allow_http) == (50, 50, 10, 20, False)
    assert Settings.from_env({"TESSERA_FEDERATION_ALLOW_HTTP": "true"}).federation_allow_http
    assert "roles:manage" in s.scopes


# -- audit ------------------------------------------------------------------------------

def test_every_change_is_one_audit_line_without_a_secret(client, alice, audit_events, capsys):
    audit_events()
    created(call(client, "post", "/v1/roles", alice, {"name": "alice.ci"}))
    pid = created(call(client, "post", "/v1/roles/alice.ci/policies", alice,
                       {"permission": POLICY}))["id"]
    k = created(call(client, "post", "/v1/roles/alice.ci/keys", alice, {}))
    tid = created(call(client, "post", "/v1/roles/alice.ci/trust", alice, TRUST))["id"]
    for path in (f"policies/{pid}", f"keys/{k['id']}", f"trust/{tid}", ""):
        assert call(client, "delete", f"/v1/roles/alice.ci/{path}".rstrip("/"), alice).status_code == 204
    out = capsys.readouterr().out
    assert k["secret"] not in out and digest(k["secret"]) not in out
    events = [json.loads(line) for line in out.splitlines()
              if line.startswith("{") and '"logger":"tessera.audit"' in line]
    roles_events = [e for e in events if e["event"].startswith("role_")]
    assert [e["event"] for e in roles_events] == [
        "role_created", "role_policy_added", "role_key_created", "role_trust_added",
        "role_policy_removed", "role_key_revoked", "role_trust_removed", "role_deleted"]
    assert all(e["role"] == "alice.ci" for e in roles_events)
    assert roles_events[2]["key_id"] == k["id"] and roles_events[1]["permission"] == POLICY


# -- trust subjects that name one owner at least (issue item 5) ----------------------------

GITLAB = "https://gitlab.com"
OTHER_CI = "https://ci.example.com"


@pytest.mark.parametrize("issuer, subject, detail", [
    (GITHUB, "r*", "must start with repo:OWNER/"),
    (GITHUB, "repo:*", "must start with repo:OWNER/"),
    (GITHUB, "repo:acme*", "must start with repo:OWNER/"),
    (GITHUB, "repo:ac*", "must start with repo:OWNER/"),
    (GITHUB, "repo:/app:*", "must start with repo:OWNER/"),
    (GITHUB, "acme/app:*", "must start with repo:OWNER/"),
    (GITHUB, "a", "must start with repo:OWNER/"),
    (GITHUB + "/acme-enterprise", "repo:*", "must start with repo:OWNER/"),
    (GITLAB, "p*", "must start with project_path:GROUP/"),
    (GITLAB, "project_path:*", "must start with project_path:GROUP/"),
    (GITLAB, "project_path:acme*", "must start with project_path:GROUP/"),
    (OTHER_CI, "repo:*", "must start with repo:OWNER/"),                 # GitHub Enterprise Server
    (OTHER_CI, "project_path:*", "must start with project_path:GROUP/"),  # self-managed GitLab
    (OTHER_CI, "r*", "at least a kind and an owner"),
    (OTHER_CI, "org:*", "at least a kind and an owner"),
    (OTHER_CI, "organization:acme*", "at least a kind and an owner"),
    (OTHER_CI, "a:b:*", "at least a kind and an owner"),
])
def test_a_trust_subject_that_trusts_every_owner_is_422(client, alice, role, issuer, subject,
                                                         detail):
    assert_problem(call(client, "post", "/v1/roles/alice.ci/trust", alice,
                        {**TRUST, "issuer": issuer, "subject": subject}), 422, detail)


@pytest.mark.parametrize("issuer, subject", [
    (GITHUB, "repo:acme/*"), (GITHUB, "repo:acme/app:*"),
    (GITHUB, "repo:acme/app:environment:prod"), (GITHUB + "/acme-enterprise", "repo:acme/*"),
    (GITLAB, "project_path:acme/*"), (GITLAB, "project_path:acme/sub/app:ref_type:branch:*"),
    (OTHER_CI, "organization:acme:pipeline:*"), (OTHER_CI, "org/1234/project/*"),
    (OTHER_CI, "a-job-subject"), (OTHER_CI, "repo:acme/app:*"),
])
def test_a_trust_subject_naming_its_owner_is_accepted(client, alice, role, issuer, subject):
    assert created(call(client, "post", "/v1/roles/alice.ci/trust", alice,
                        {**TRUST, "issuer": issuer, "subject": subject}))["subject"] == subject
