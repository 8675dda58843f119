"""Seed documents (SPEC §7 shape) loaded through the identities service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.services.identities import verify_client_secret
from tessera_admin.seed import SeedError, load_seed

DEMO = json.loads((Path(__file__).resolve().parents[2] / "seeds" / "demo.json").read_text())


def test_demo_seed_creates_the_spec_demo_account(ctr):
    report = load_seed(ctr.identities, DEMO)
    assert report.created_users == ["alice"]
    alice = ctr.identities.find_user("alice")
    assert (alice.email, alice.firstname, alice.lastname) == ("alice@example.com", "Alice", "Liddell")

    # the demo resource server is registered with its URI (RFC 8707 resource indicator)
    assert ctr.identities.clients.get("resource-server").resources == (
        "https://resource-server.example/api",)
    assert ctr.clients.resource_server("https://resource-server.example/api") == "resource-server"
    cli = ctr.identities.clients.get("cf83e1357eefb8bd")
    assert cli.public
    assert set(cli.grant_types) == {"password", "refresh_token",
                                    "urn:ietf:params:oauth:grant-type:device_code"}
    assert set(cli.scopes) == {"openid", "profile", "email", "offline_access", "tokens:read",
                               "tokens:manage", "roles:manage", "sessions:manage", "api:read",
                               "api:write"}

    rs = ctr.identities.clients.get("resource-server")
    assert rs.introspect and rs.grant_types == ("client_credentials",)
    assert verify_client_secret("resource-server-local-secret", rs.secret_hash)
    assert report.generated_secrets == {}

    # the single-page app example (examples/spa) may call from its page's origin
    spa = ctr.identities.clients.get("spa")
    assert spa.public and spa.web_origins == ("http://127.0.0.1:8700",)
    assert ctr.clients.origin_registered("http://127.0.0.1:8700")


def test_a_seeded_client_registers_its_allowed_origins(ctr):
    report = load_seed(ctr.identities, {"clients": [
        {"client_id": "spa", "public": True, "allowed_origins": ["https://spa.example"]}]})
    assert report.created_clients == ["spa"] and report.notes == []
    assert ctr.identities.clients.get("spa").allowed_origins == ("https://spa.example",)
    assert ctr.clients.origin_registered("https://spa.example")


def test_loading_twice_skips_and_reports_what_exists(ctr):
    load_seed(ctr.identities, DEMO)
    again = load_seed(ctr.identities, DEMO)
    assert again.created_users == [] and again.created_clients == []
    assert again.skipped_users == ["alice"]
    assert again.skipped_clients == ["cf83e1357eefb8bd", "resource-server", "console", "spa"]


def test_existing_entries_are_not_overwritten(ctr):
    load_seed(ctr.identities, DEMO)
    changed = {"users": [{"username": "alice", "password": "another-password", "email": "x@y.z"}]}
    load_seed(ctr.identities, changed)
    assert ctr.identities.find_user("alice").email == "alice@example.com"


def test_confidential_client_without_a_secret_gets_one_reported_once(ctr):
    report = load_seed(ctr.identities, {"clients": [{"client_id": "svc",
                                                     "grant_types": ["client_credentials"]}]})
    secret = report.generated_secrets["svc"]
    assert verify_client_secret(secret, ctr.identities.clients.get("svc").secret_hash)
    assert any(secret in line for line in report.lines())


def test_inactive_users_and_unknown_sections_and_fields(ctr):
    report = load_seed(ctr.identities, {
        "users": [{"username": "mallory", "password": "password4mallory", "active": False,
                   "nickname": "m"}],
        "widgets": [{"name": "w"}],
    })
    assert ctr.identities.find_user("mallory").active is False
    assert "ignored section 'widgets' (not loaded by this version)" in report.notes
    assert "users[0]: ignored fields nickname" in report.notes


def test_a_client_the_service_rejects_is_named(ctr):
    with pytest.raises(SeedError) as exc:
        load_seed(ctr.identities, {"clients": [{"client_id": "c", "grant_types": ["implicit"]}]})
    assert str(exc.value) == "clients[0]: unknown grant types: implicit"


def test_a_seeded_client_may_set_whether_consent_is_remembered(ctr):
    native = {"client_id": "native", "public": True, "grant_types": ["authorization_code"],
              "redirect_uris": ["http://127.0.0.1/cb"]}
    load_seed(ctr.identities, {"clients": [{**native, "remember_consent": True},
                                           {**native, "client_id": "plain"}]})
    assert ctr.identities.clients.get("native").remember_consent is True
    assert ctr.identities.clients.get("plain").remember_consent is None
    with pytest.raises(SeedError, match="remember_consent"):
        load_seed(ctr.identities, {"clients": [{**native, "client_id": "x",
                                                "remember_consent": "yes"}]})


def test_shape_errors_write_nothing(ctr):
    with pytest.raises(SeedError):
        load_seed(ctr.identities, {"users": [{"username": "ok", "password": "password4ok"},
                                             {"username": "bad"}]})
    assert ctr.identities.find_user("ok") is None


def test_a_seeded_user_without_permissions_holds_the_default(ctr):
    load_seed(ctr.identities, DEMO)
    assert ctr.identities.find_user("alice").permissions == ("*@urn:tessera:*:alice.*",)


def test_seeded_permissions_are_exactly_the_users_rights(ctr):
    load_seed(ctr.identities, {"users": [
        {"username": "bob", "password": "password4bob",
         "permissions": ["data:get@urn:tessera:data:alice.shared", "registry:*@urn:tessera:*"]},
        {"username": "carol", "password": "password4carol",
         "permissions": ["*@urn:tessera:*:carol.*", "data:get@urn:tessera:data:bob.x"]},
        {"username": "dave", "password": "password4dave", "permissions": []},
    ]})
    find = ctr.identities.find_user
    assert find("bob").permissions == ("data:get@urn:tessera:data:alice.shared",
                                       "registry:*@urn:tessera:*")
    assert find("carol").permissions == ("*@urn:tessera:*:carol.*",
                                         "data:get@urn:tessera:data:bob.x")
    assert find("dave").permissions == ()
    # Granting and revoking work on seeded rights like on any other.
    ctr.identities.grant_permission("dave", "*@urn:tessera:*:dave.*")
    assert find("dave").permissions == ("*@urn:tessera:*:dave.*",)


@pytest.mark.parametrize(("permissions", "message"), [
    ("data:get@urn:x:y", "users[1]: 'permissions' must be a list of strings"),
    (["data:get@urn:x:y", "data*:get@urn:x:y"], "users[1]: invalid permission: action: bad segment"),
])
def test_a_bad_permission_in_a_seed_is_named_and_nothing_is_written(ctr, permissions, message):
    with pytest.raises(SeedError) as exc:
        load_seed(ctr.identities, {"users": [
            {"username": "ok", "password": "password4ok"},
            {"username": "bob", "password": "password4bob", "permissions": permissions}]})
    assert str(exc.value).startswith(message)
    assert ctr.identities.find_user("ok") is None and ctr.identities.find_user("bob") is None


# -- roles (SPEC §7 "roles") ---------------------------------------------------------------

WITH_ROLES = {
    "users": [{"username": "alice", "password": "password4alice"},
              {"username": "bob", "password": "password4bob"}],
    "roles": [{"name": "alice.ci", "description": "CI",
               "policies": ["data:get@urn:tessera:data:alice.*"],
               "trust": [{"issuer": "https://token.actions.githubusercontent.com",
                          "audience": "tessera", "subject": "repo:acme/app:*"},
                         {"issuer": "https://gitlab.com", "audience": "tessera",
                          "subject": "project_path:acme/app:ref_type:branch:ref:main",
                          "claims": {"namespace_path": "acme"}}]},
              {"name": "bob.deploy"}],
}


def test_roles_load_with_their_policies_and_trust(ctr):
    report = load_seed(ctr.identities, WITH_ROLES, ctr.roles)
    assert report.created_roles == ["alice.ci", "bob.deploy"]
    assert "created role alice.ci" in report.lines()
    ci = ctr.roles_repo.get("alice.ci")
    assert ci.description == "CI" and ci.owner == ctr.identities.find_user("alice").id
    assert list(ci.policies.values()) == ["data:get@urn:tessera:data:alice.*"]
    assert sorted(t.subject for t in ci.trust.values()) == [
        "project_path:acme/app:ref_type:branch:ref:main", "repo:acme/app:*"]
    assert [t.claims for t in ci.trust.values() if t.issuer == "https://gitlab.com"] == [
        {"namespace_path": "acme"}]
    assert ci.keys == {}
    assert ctr.roles_repo.get("bob.deploy").policies == {}


def test_loading_roles_twice_skips_them_and_changes_nothing(ctr):
    load_seed(ctr.identities, WITH_ROLES, ctr.roles)
    before = ctr.roles_repo.get("alice.ci")
    ctr.roles.remove_policy(ctr.identities.find_user("alice"), "alice.ci",
                            next(iter(before.policies)))
    again = load_seed(ctr.identities, WITH_ROLES, ctr.roles)
    assert again.created_roles == [] and again.skipped_roles == ["alice.ci", "bob.deploy"]
    # An existing role is left as it is: the removed policy stays removed.
    assert ctr.roles_repo.get("alice.ci").policies == {}


def test_a_role_whose_owner_does_not_hold_a_policy_is_named_and_not_written(ctr):
    data = {"users": WITH_ROLES["users"],
            "roles": [{"name": "alice.ci", "policies": ["data:get@urn:tessera:data:bob.x"]}]}
    with pytest.raises(SeedError) as exc:
        load_seed(ctr.identities, data, ctr.roles)
    assert str(exc.value).startswith("roles[0]: alice does not hold data:get@urn:tessera:data:bob.x")
    assert ctr.roles_repo.get("alice.ci") is None
    # Granted first (as the admin command would), the same file loads.
    ctr.identities.grant_permission("alice", "data:get@urn:tessera:data:bob.x")
    assert load_seed(ctr.identities, data, ctr.roles).created_roles == ["alice.ci"]


def test_a_role_of_an_unknown_user_is_named(ctr):
    with pytest.raises(SeedError) as exc:
        load_seed(ctr.identities, {"roles": [{"name": "zed.ci"}]}, ctr.roles)
    assert str(exc.value) == "roles[0]: No user zed to own role zed.ci"


@pytest.mark.parametrize(("role", "message"), [
    ({"name": "Alice.CI"}, "roles[0]: name must be <your username>.<name>"),
    ({}, "roles[0]: missing 'name'"),
    ({"name": "alice.ci", "policies": "data:get@urn:x:y"}, "roles[0]: 'policies' must be a list"),
    ({"name": "alice.ci", "policies": ["data*:get@urn:x:y"]}, "roles[0]: invalid permission"),
    ({"name": "alice.ci", "trust": {"issuer": "x"}}, "roles[0]: 'trust' must be a list of objects"),
    ({"name": "alice.ci", "trust": [{"issuer": "https://gitlab.com", "audience": "a",
                                     "subject": "*"}]}, "roles[0]: subject must name something"),
    ({"name": "alice.ci", "trust": [{"issuer": "https://gitlab.com", "audience": "a",
                                     "subject": "s", "sub": "x"}]},
     "roles[0].trust[0]: unknown fields sub"),
])
def test_a_malformed_role_is_refused_before_anything_is_written(ctr, role, message):
    with pytest.raises(SeedError) as exc:
        load_seed(ctr.identities, {"users": WITH_ROLES["users"], "roles": [role]}, ctr.roles)
    assert str(exc.value).startswith(message)
    assert ctr.identities.find_user("alice") is None


def test_without_the_roles_service_the_section_is_noted_not_loaded(ctr):
    report = load_seed(ctr.identities, WITH_ROLES)
    assert "ignored section 'roles' (no roles service given)" in report.notes
    assert ctr.roles_repo.get("alice.ci") is None


def test_the_demo_seed_has_no_roles_and_loads_as_before(ctr):
    report = load_seed(ctr.identities, DEMO, ctr.roles)
    assert report.created_roles == [] and report.notes == []
