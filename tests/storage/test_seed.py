"""Seed documents (SPEC §7 shape) loaded through the identities service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.seed import SeedError, load_seed
from chalicelib.services.identities import verify_client_secret

DEMO = json.loads((Path(__file__).resolve().parents[2] / "seeds" / "demo.json").read_text())


def test_demo_seed_creates_the_spec_demo_account(ctr):
    report = load_seed(ctr.identities, DEMO)
    assert report.created_users == ["alice"]
    alice = ctr.identities.find_user("alice")
    assert (alice.email, alice.firstname, alice.lastname) == ("alice@example.com", "Alice", "Liddell")

    cli = ctr.identities.clients.get("cf83e1357eefb8bd")
    assert cli.public
    assert set(cli.grant_types) == {"password", "refresh_token",
                                    "urn:ietf:params:oauth:grant-type:device_code"}
    assert set(cli.scopes) == {"openid", "profile", "email", "offline_access", "tokens:read",
                               "tokens:manage", "sessions:manage", "api:read", "api:write"}

    rs = ctr.identities.clients.get("resource-server")
    assert rs.introspect and rs.grant_types == ("client_credentials",)
    assert verify_client_secret("resource-server-local-secret", rs.secret_hash)
    assert report.generated_secrets == {}


def test_loading_twice_skips_and_reports_what_exists(ctr):
    load_seed(ctr.identities, DEMO)
    again = load_seed(ctr.identities, DEMO)
    assert again.created_users == [] and again.created_clients == []
    assert again.skipped_users == ["alice"]
    assert again.skipped_clients == ["cf83e1357eefb8bd", "resource-server", "console"]


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
        "roles": [{"name": "acme.alice.ci"}],
    })
    assert ctr.identities.find_user("mallory").active is False
    assert "ignored section 'roles' (not loaded by this version)" in report.notes
    assert "users[0]: ignored fields nickname" in report.notes


def test_a_client_the_service_rejects_is_named(ctr):
    with pytest.raises(SeedError) as exc:
        load_seed(ctr.identities, {"clients": [{"client_id": "c", "grant_types": ["implicit"]}]})
    assert str(exc.value) == "clients[0]: unknown grant types: implicit"


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
