"""The admin command against moto tables (the ``ctr`` container)."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from chalicelib.security.passwords import verify_password
from chalicelib.services.identities import verify_client_secret
from tessera_admin.cli import Console, main

DEMO_SEED = Path(__file__).resolve().parents[2] / "seeds" / "demo.json"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def prompts(*answers: str):
    queue = list(answers)
    return lambda prompt: queue.pop(0)


def run(capsys, *argv: str, console: Console | None = None) -> tuple[int, str, str]:
    capsys.readouterr()   # what ran before (audit lines of the test's own sign-ins) is not the answer
    status = main(list(argv), console or Console(stdin=io.StringIO("")))
    out, err = capsys.readouterr()
    return status, out, err


def test_user_create_then_show_prints_the_profile_without_the_hash(ctr, capsys):
    status, out, _ = run(capsys, "user", "create", "Bob", "--password", "correct-horse",
                         "--email", "bob@example.com", "--firstname", "Bob", "--lastname", "Builder",
                         "--scopes", "openid,profile")
    assert status == 0 and "created user bob" in out

    status, out, _ = run(capsys, "user", "show", "bob")
    shown = json.loads(out)
    assert status == 0
    assert shown["username"] == "bob" and shown["email"] == "bob@example.com"
    assert shown["active"] is True and shown["scopes"] == ["openid", "profile"]
    assert "password_hash" not in shown and "correct-horse" not in out
    assert verify_password("correct-horse", ctr.identities.find_user("bob").password_hash)


def test_user_create_prompts_twice_on_a_terminal(ctr, capsys):
    console = Console(stdin=Terminal(), prompt=prompts("s3cret-pass", "s3cret-pass"))
    status, _, _ = run(capsys, "user", "create", "carol", console=console)
    assert status == 0
    assert verify_password("s3cret-pass", ctr.identities.find_user("carol").password_hash)


def test_user_create_refuses_mismatched_prompts(ctr, capsys):
    console = Console(stdin=Terminal(), prompt=prompts("s3cret-pass", "other-pass"))
    status, _, err = run(capsys, "user", "create", "carol", console=console)
    assert status == 1 and err == "error: passwords do not match\n"
    assert ctr.identities.find_user("carol") is None


def test_user_create_without_a_password_off_a_terminal_fails_in_one_line(ctr, capsys):
    status, _, err = run(capsys, "user", "create", "dave")
    assert status == 1 and err.startswith("error: no password given") and err.count("\n") == 1


def test_password_can_come_from_stdin(ctr, capsys):
    console = Console(stdin=io.StringIO("piped-password\n"))
    assert run(capsys, "user", "create", "erin", "--password-stdin", console=console)[0] == 0
    assert verify_password("piped-password", ctr.identities.find_user("erin").password_hash)


def test_existing_user_is_a_one_line_error(ctr, capsys):
    run(capsys, "user", "create", "bob", "--password", "correct-horse")
    status, out, err = run(capsys, "user", "create", "bob", "--password", "correct-horse")
    assert status == 1 and out == "" and err == "error: user bob exists\n"


def test_user_disable_and_enable(ctr, capsys):
    run(capsys, "user", "create", "bob", "--password", "correct-horse")
    status, out, _ = run(capsys, "user", "disable", "bob")
    assert status == 0 and out == "disabled user bob; ended 0 session(s)\n"
    assert json.loads(run(capsys, "user", "show", "bob")[1])["active"] is False
    assert run(capsys, "user", "enable", "bob")[0] == 0
    assert ctr.identities.find_user("bob").active is True


@pytest.mark.parametrize("argv", [["user", "disable", "nobody"], ["user", "show", "nobody"],
                                  ["user", "set-password", "nobody", "--password", "whatever1"],
                                  ["client", "show", "nobody"]])
def test_unknown_names_are_one_line_errors(ctr, capsys, argv):
    status, out, err = run(capsys, *argv)
    assert status == 1 and out == ""
    assert err == "error: no " + argv[0] + " nobody\n"


def test_set_password_replaces_the_hash(ctr, capsys):
    run(capsys, "user", "create", "bob", "--password", "correct-horse")
    assert run(capsys, "user", "set-password", "bob", "--password", "battery-staple")[0] == 0
    stored = ctr.identities.find_user("bob").password_hash
    assert verify_password("battery-staple", stored) and not verify_password("correct-horse", stored)


def test_short_password_is_rejected(ctr, capsys):
    status, _, err = run(capsys, "user", "create", "bob", "--password", "short")
    assert status == 1 and err == "error: password must be at least 8 characters\n"


def test_client_create_shows_a_generated_secret_once_and_stores_its_hash(ctr, capsys):
    status, out, err = run(capsys, "client", "create", "my-api", "--grant-types", "client_credentials",
                           "--scopes", "api:read", "--introspect", "--name", "My API")
    assert status == 0
    secret = out.split("client_secret: ", 1)[1].strip()
    assert secret.startswith("tsc_") and len(secret) > 40
    assert "shown once" in err

    item = ctr.table("clients").get({"client_id": "my-api"})
    assert secret not in json.dumps(item)
    assert verify_client_secret(secret, item["secret_hash"])

    status, out, _ = run(capsys, "client", "show", "my-api")
    shown = json.loads(out)
    assert status == 0 and secret not in out and "secret_hash" not in shown
    assert shown == {"client_id": "my-api", "name": "My API", "public": False,
                     "grant_types": ["client_credentials"], "scopes": ["api:read"],
                     "introspect": True, "created_at": ctr.clock.now(),
                     "id_token_signed_response_alg": None,
                     "access_token_signed_response_alg": None, "resources": [],
                     "default_audience": None,
                     "redirect_uris": [], "post_logout_redirect_uris": [],
                     "allowed_origins": [], "web_origins": [], "delegate": False,
                     "remember_consent": None, "require_mfa": False}



def test_client_create_registers_web_origins_from_redirect_uris_and_allowed_origins(ctr, capsys):
    status, _, _ = run(capsys, "client", "create", "spa", "--public",
                       "--grant-types", "authorization_code,refresh_token",
                       "--redirect-uri", "http://127.0.0.1:8700/callback.html",
                       "--allowed-origin", "https://spa.example")
    assert status == 0
    status, out, _ = run(capsys, "client", "show", "spa")
    shown = json.loads(out)
    assert shown["allowed_origins"] == ["https://spa.example"]
    assert shown["web_origins"] == ["http://127.0.0.1:8700", "https://spa.example"]
    assert ctr.clients.origin_registered("https://spa.example")
    assert ctr.clients.origin_registered("http://127.0.0.1:8700")


def test_client_create_refuses_an_origin_with_a_path(ctr, capsys):
    status, _, err = run(capsys, "client", "create", "spa", "--public",
                         "--allowed-origin", "https://spa.example/app")
    assert status != 0 and "no path" in err
    assert ctr.clients.get("spa") is None


def test_client_create_with_a_given_secret_does_not_echo_it(ctr, capsys):
    status, out, _ = run(capsys, "client", "create", "svc", "--secret", "given-secret-value",
                         "--grant-types", "client_credentials")
    assert status == 0 and "given-secret-value" not in out
    assert verify_client_secret("given-secret-value", ctr.identities.clients.get("svc").secret_hash)


def test_public_client_has_no_secret(ctr, capsys):
    status, out, _ = run(capsys, "client", "create", "cli", "--public", "--grant-types",
                         "password,refresh_token")
    assert status == 0 and "client_secret" not in out
    assert ctr.identities.clients.get("cli").public


def test_a_sign_in_client_created_without_scopes_can_log_people_in(ctr, capsys, client):
    """The README's `client create my-cli --public --grant-types password,refresh_token`
    gives a client that works: without --scopes it gets openid, profile and email."""
    from tests.api.helpers import login, seed

    seed(ctr)
    status, out, _ = run(capsys, "client", "create", "my-cli", "--public", "--grant-types",
                         "password,refresh_token")
    assert status == 0 and "with scopes openid, profile, email" in out
    assert ctr.identities.clients.get("my-cli").scopes == ("openid", "profile", "email")
    assert login(client, client_id="my-cli").status_code == 200


def test_a_service_client_without_scopes_gets_none(ctr, capsys):
    status, _, _ = run(capsys, "client", "create", "svc", "--grant-types", "client_credentials")
    assert status == 0 and ctr.identities.clients.get("svc").scopes == ()


def test_bad_client_settings_are_one_line_errors(ctr, capsys):
    status, _, err = run(capsys, "client", "create", "cli", "--public", "--grant-types", "client_credentials")
    assert status == 1 and err == "error: client_credentials needs a confidential client\n"
    status, _, err = run(capsys, "client", "create", "x", "--grant-types", "implicit")
    assert status == 1 and err == "error: unknown grant types: implicit\n"


@pytest.fixture
def local_ctr(ctr):
    """The admin command on the local stage (make run's), the only one the demo seed is for."""
    import dataclasses

    from chalicelib import container as container_module
    from chalicelib.container import Container

    local = container_module.use(Container(dataclasses.replace(ctr.settings, stage="local"), ctr.clock))
    yield local
    container_module.use(ctr)


def test_the_demo_seed_is_refused_on_a_deployed_stage(ctr, capsys, tmp_path):
    status, out, err = run(capsys, "seed", str(DEMO_SEED))
    assert status == 1 and out == ""
    assert "refused on stage dev" in err and "user create" in err
    assert ctr.identities.find_user("alice") is None
    # Under another name, or one demo credential among others: the same.
    copy = tmp_path / "first-admin.json"
    demo = json.loads(DEMO_SEED.read_text())
    copy.write_text(json.dumps({"users": [{"username": "root", "password": "a-long-local-password"}],
                                "clients": demo["clients"][1:2]}))
    status, _, err = run(capsys, "seed", str(copy))
    assert status == 1 and "published passwords" in err


def test_seed_loads_the_demo_and_is_idempotent(local_ctr, capsys):
    ctr = local_ctr
    status, out, _ = run(capsys, "seed", str(DEMO_SEED))
    assert status == 0
    assert "created user alice" in out
    assert "created client cf83e1357eefb8bd" in out and "created client resource-server" in out

    status, out, _ = run(capsys, "seed", str(DEMO_SEED))
    assert status == 0
    assert "created" not in out
    assert out.splitlines() == ["skipped existing user alice", "skipped existing client cf83e1357eefb8bd",
                                "skipped existing client resource-server",
                                "skipped existing client console", "skipped existing client spa"]
    assert verify_password("password4alice", ctr.identities.find_user("alice").password_hash)


def test_seed_errors_are_one_line(ctr, capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"users": [{"username": "x"}]}')
    status, _, err = run(capsys, "seed", str(bad))
    assert status == 1 and err == f"error: {bad}: users[0]: missing 'password'\n"

    bad.write_text("{not json")
    status, _, err = run(capsys, "seed", str(bad))
    assert status == 1 and err.startswith(f"error: {bad} is not valid JSON") and err.count("\n") == 1

    status, _, err = run(capsys, "seed", str(tmp_path / "missing.json"))
    assert status == 1 and "cannot read" in err


def test_tables_create_is_idempotent(ctr, capsys):
    status, out, _ = run(capsys, "tables", "create")
    assert status == 0 and "table test-users ready" in out


def test_missing_tables_are_a_one_line_hint(aws, settings, clock, capsys):
    from chalicelib import container as container_module
    from chalicelib.container import Container

    container_module.use(Container(settings, clock))
    try:
        status, _, err = run(capsys, "user", "show", "alice")
    finally:
        container_module.reset()
    assert status == 1 and err.count("\n") == 1
    assert err.startswith("error: AWS ResourceNotFoundException") and "tables create" in err


def test_keys_rotate_promotes_the_next_key(ctr, capsys):
    before = json.loads(ctr.keyring.jwks_json())["keys"]
    current = ctr.keyring.current_kid()
    upcoming = next(k["kid"] for k in before if k["kid"] != current)
    status, out, _ = run(capsys, "keys", "rotate")
    assert status == 0 and f"now signing with {upcoming}" in out
    assert ctr.keyring.current_kid() == upcoming
    kids = {k["kid"] for k in json.loads(ctr.keyring.jwks_json())["keys"] if k["alg"] == "ES256"}
    assert current in kids and len(kids) == 3


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["user", "frobnicate"])
    assert exc.value.code == 2


def test_disabling_a_user_ends_their_sessions_so_refresh_fails(ctr, capsys):
    from chalicelib.errors import InvalidGrant
    from chalicelib.models import user_id_for

    run(capsys, "user", "create", "carol", "--password", "correct-horse")
    session = ctr.sessions.new_session(user_id=user_id_for("carol"), client_id="cli", scope="openid")
    token = ctr.sessions.mint_refresh_token(session)
    ctr.sessions.create(session, token)
    status, out, _ = run(capsys, "user", "disable", "carol")
    assert status == 0 and out == "disabled user carol; ended 1 session(s)\n"
    with pytest.raises(InvalidGrant):
        ctr.sessions.rotate(token, "cli")


# -- rights (SPEC §6) --------------------------------------------------------------

DEFAULT_BOB = "*@urn:tessera:*:bob.*"


class Requests:
    """Records the DynamoDB requests of the container's client (botocore event hook)."""

    def __init__(self, client) -> None:
        self.client, self.seen = client, []

    def _record(self, params, model, **_) -> None:
        self.seen.append((model.name, dict(params)))

    def __enter__(self) -> Requests:
        self.client.meta.events.register("before-parameter-build.dynamodb", self._record,
                                         unique_id="admin-requests")
        return self

    def __exit__(self, *_: object) -> None:
        self.client.meta.events.unregister("before-parameter-build.dynamodb",
                                           unique_id="admin-requests")


def test_a_new_user_holds_the_default_right_over_their_own_namespace(ctr, capsys):
    run(capsys, "user", "create", "bob", "--password", "correct-horse")
    assert json.loads(run(capsys, "user", "show", "bob")[1])["permissions"] == [DEFAULT_BOB]
    # Nothing is stored for the default: items written before rights existed read the same.
    item = ctr.identities.users.table.get({"id": ctr.identities.find_user("bob").id})
    assert "granted_permissions" not in item and "default_permission_revoked" not in item


def test_grant_and_revoke_permission_change_only_that_right(ctr, capsys):
    run(capsys, "user", "create", "bob", "--password", "correct-horse")
    shared = "data:get@urn:tessera:data:alice.shared"
    status, out, _ = run(capsys, "user", "grant-permission", "bob", shared)
    assert status == 0 and out == f"user bob now holds {DEFAULT_BOB}, {shared}\n"
    assert run(capsys, "user", "grant-permission", "bob", shared)[0] == 0     # again: harmless
    assert json.loads(run(capsys, "user", "show", "bob")[1])["permissions"] == [DEFAULT_BOB, shared]

    status, out, _ = run(capsys, "user", "revoke-permission", "bob", DEFAULT_BOB)
    assert status == 0 and out == f"user bob now holds {shared}\n"
    status, out, _ = run(capsys, "user", "revoke-permission", "bob", shared)
    assert status == 0 and out == "user bob now holds no permissions\n"
    assert ctr.identities.find_user("bob").permissions == ()

    run(capsys, "user", "grant-permission", "bob", DEFAULT_BOB)                # the default comes back
    assert ctr.identities.find_user("bob").permissions == (DEFAULT_BOB,)


def test_revoking_a_right_still_covered_by_another_says_so(ctr, capsys):
    run(capsys, "user", "create", "bob", "--password", "correct-horse")
    status, _, err = run(capsys, "user", "revoke-permission", "bob",
                         "data:get@urn:tessera:data:bob.files")
    assert status == 0
    assert err == f"note: data:get@urn:tessera:data:bob.files is still covered by {DEFAULT_BOB}\n"


def test_a_permission_change_is_one_conditional_update_and_no_read(ctr, capsys):
    run(capsys, "user", "create", "bob", "--password", "correct-horse")
    for action, permission in (("grant-permission", "data:get@urn:tessera:data:x.y"),
                               ("revoke-permission", "data:get@urn:tessera:data:x.y"),
                               ("revoke-permission", DEFAULT_BOB),
                               ("grant-permission", DEFAULT_BOB)):
        with Requests(ctr.dynamodb()) as requests:
            assert run(capsys, "user", action, "bob", permission)[0] == 0
        assert [name for name, _ in requests.seen] == ["UpdateItem"]
        assert requests.seen[0][1]["ConditionExpression"] == "attribute_exists(id)"


def test_concurrent_grants_and_revocations_lose_no_update(ctr):
    from tests.concurrency import atomic_container, run_together

    identities = atomic_container(ctr).identities
    identities.create_user("bob", "correct-horse")
    identities.grant_permission("bob", "data:get@urn:tessera:data:old.0")
    granted = iter(f"data:get@urn:tessera:data:new.{i}" for i in range(20))
    lock = threading.Lock()

    def work() -> None:
        with lock:
            permission = next(granted)
        identities.grant_permission("bob", permission)
        identities.revoke_permission("bob", "data:get@urn:tessera:data:old.0")

    assert all(status == "ok" for status, _ in run_together(20, work))
    held = set(ctr.identities.find_user("bob").permissions)
    assert held == {DEFAULT_BOB} | {f"data:get@urn:tessera:data:new.{i}" for i in range(20)}


@pytest.mark.parametrize("permission", ["data:get", "da*ta:get@urn:x:y", "data:get@arn:x:y"])
def test_an_invalid_permission_is_a_one_line_error_and_changes_nothing(ctr, capsys, permission):
    run(capsys, "user", "create", "bob", "--password", "correct-horse")
    status, out, err = run(capsys, "user", "grant-permission", "bob", permission)
    assert status == 1 and out == "" and err.startswith("error: invalid permission: ")
    assert err.count("\n") == 1
    assert ctr.identities.find_user("bob").permissions == (DEFAULT_BOB,)


@pytest.mark.parametrize("action", ["grant-permission", "revoke-permission"])
def test_a_permission_change_for_an_unknown_user_creates_nobody(ctr, capsys, action):
    status, out, err = run(capsys, "user", action, "nobody", "data:get@urn:tessera:data:x.y")
    assert status == 1 and out == "" and err == "error: no user nobody\n"
    assert ctr.identities.find_user("nobody") is None


def test_client_create_registers_redirect_uris_for_the_code_flow(ctr, capsys):
    status, _, err = run(capsys, "client", "create", "web", "--grant-types", "authorization_code",
                         "--redirect-uri", "https://app.example/cb",
                         "--redirect-uri", "http://127.0.0.1/cb",
                         "--post-logout-redirect-uri", "https://app.example/", "--delegate")
    assert status == 0, err
    client = ctr.identities.clients.get("web")
    assert client.redirect_uris == ("https://app.example/cb", "http://127.0.0.1/cb")
    assert client.post_logout_redirect_uris == ("https://app.example/",) and client.delegate


def test_client_create_sets_whether_consent_is_remembered(ctr, capsys):
    for flag, client_id in (("--remember-consent", "yes"), ("--no-remember-consent", "no")):
        status, _, err = run(capsys, "client", "create", client_id, "--public",
                             "--grant-types", "authorization_code",
                             "--redirect-uri", "http://127.0.0.1/cb", flag)
        assert status == 0, err
    run(capsys, "client", "create", "default", "--public", "--grant-types", "authorization_code",
        "--redirect-uri", "http://127.0.0.1/cb")
    got = {c: ctr.identities.clients.get(c).remember_consent for c in ("yes", "no", "default")}
    assert got == {"yes": True, "no": False, "default": None}
    status, out, _ = run(capsys, "client", "show", "default")
    assert status == 0 and json.loads(out)["remember_consent"] is None


def test_client_create_refuses_a_code_client_without_or_with_a_bad_redirect_uri(ctr, capsys):
    status, _, err = run(capsys, "client", "create", "web", "--grant-types", "authorization_code")
    assert status == 1 and "needs at least one redirect URI" in err
    status, _, err = run(capsys, "client", "create", "web", "--grant-types", "authorization_code",
                         "--redirect-uri", "http://app.example/cb")
    assert status == 1 and "http only on a loopback address" in err
    status, _, err = run(capsys, "client", "create", "web", "--grant-types", "authorization_code",
                         "--redirect-uri", "https://app.example/cb#frag")
    assert status == 1 and "fragment" in err


@pytest.mark.parametrize(("uri", "why"), [
    ("http://evil.example\\@127.0.0.1/callback", "userinfo"),
    ("http://user:pw@127.0.0.1:7/callback", "userinfo"),
    ("http://127.0.0.1/call%5Cback", "%5C"), ("http://127.0.0.1/callback\t", "tabs"),
    ("http://127.0.0.1./callback", "dot"), ("http://0x7f.1/callback", "dotted quad"),
    ("HTTP://127.0.0.1/callback", "lower case"), ("http://[0:0:0:0:0:0:0:1]/cb", "[::1]"),
])
def test_client_create_refuses_a_redirect_uri_that_could_be_bent(ctr, capsys, uri, why):
    status, _, err = run(capsys, "client", "create", "web", "--grant-types", "authorization_code",
                         "--redirect-uri", uri)
    assert status == 1 and why in err, err
    assert ctr.identities.clients.get("web") is None


# -- roles -----------------------------------------------------------------------------

def test_role_create_and_list_show_the_role_without_secrets(ctr, capsys):
    run(capsys, "user", "create", "bob", "--password", "correct-horse")
    status, out, _ = run(capsys, "role", "create", "bob.ci", "--description", "CI")
    assert status == 0 and out == "created role bob.ci\n"
    bob = ctr.identities.find_user("bob")
    key = ctr.roles.create_key(bob, "bob.ci", "deploy")
    status, out, _ = run(capsys, "role", "list", "bob")
    shown = json.loads(out)["roles"]
    assert status == 0 and [r["name"] for r in shown] == ["bob.ci"]
    assert shown[0]["description"] == "CI" and shown[0]["policies"] == []
    assert [k["id"] for k in shown[0]["keys"]] == [key.key.id] and shown[0]["trust"] == []
    assert key.secret not in out and "secret_hash" not in out


@pytest.mark.parametrize(("argv", "error"), [
    (("role", "create", "zed.ci"), "error: No user zed to own role zed.ci\n"),
    (("role", "create", "Bob.CI"), "error: name must be <your username>.<name>"),
    (("role", "list", "zed"), "error: no user zed\n"),
    (("role", "delete", "bob.gone"), "error: No such role\n"),
])
def test_role_errors_are_one_line(ctr, capsys, argv, error):
    run(capsys, "user", "create", "bob", "--password", "correct-horse")
    status, out, err = run(capsys, *argv)
    assert status == 1 and out == "" and err.startswith(error) and err.count("\n") == 1


def test_a_role_policy_needs_the_owner_to_hold_it_first(ctr, capsys):
    run(capsys, "user", "create", "bob", "--password", "correct-horse")
    run(capsys, "role", "create", "bob.ci")
    shared = "data:get@urn:tessera:data:alice.shared"
    status, _, err = run(capsys, "role", "policy", "add", "bob.ci", shared)
    assert status == 1 and err.startswith(f"error: bob does not hold {shared}")
    assert ctr.roles_repo.get("bob.ci").policies == {}
    run(capsys, "user", "grant-permission", "bob", shared)
    status, out, _ = run(capsys, "role", "policy", "add", "bob.ci", shared)
    assert status == 0 and out.endswith(f" {shared}\n")
    assert list(ctr.roles_repo.get("bob.ci").policies.values()) == [shared]


def test_role_trust_add_takes_claims(ctr, capsys):
    run(capsys, "user", "create", "bob", "--password", "correct-horse")
    run(capsys, "role", "create", "bob.ci")
    status, out, _ = run(capsys, "role", "trust", "add", "bob.ci",
                         "--issuer", "https://token.actions.githubusercontent.com",
                         "--audience", "tessera", "--subject", "repo:acme/app:*",
                         "--claim", "repository_owner=acme", "--claim", "ref=refs/heads/main")
    assert status == 0 and "trust policy" in out
    (trust,) = ctr.roles_repo.get("bob.ci").trust.values()
    assert trust.subject == "repo:acme/app:*"
    assert trust.claims == {"repository_owner": "acme", "ref": "refs/heads/main"}
    status, _, err = run(capsys, "role", "trust", "add", "bob.ci", "--issuer", "https://x.test",
                         "--audience", "a", "--subject", "s", "--claim", "novalue")
    assert status == 1 and err == "error: --claim novalue: give it as name=value\n"
    status, _, err = run(capsys, "role", "trust", "add", "bob.ci", "--issuer", "https://x.test",
                         "--audience", "a", "--subject", "*")
    assert status == 1 and err.startswith("error: subject must name something")


def test_role_delete_removes_the_role_and_its_keys(ctr, capsys):
    run(capsys, "user", "create", "bob", "--password", "correct-horse")
    run(capsys, "role", "create", "bob.ci")
    ctr.roles.create_key(ctr.identities.find_user("bob"), "bob.ci")
    status, out, _ = run(capsys, "role", "delete", "bob.ci")
    assert status == 0 and out.startswith("deleted role bob.ci")
    assert ctr.roles_repo.get("bob.ci") is None


def test_seed_loads_roles_and_skips_them_the_second_time(ctr, capsys, tmp_path):
    seed_file = tmp_path / "roles.json"
    seed_file.write_text(json.dumps({
        "users": [{"username": "alice", "password": "a-password-of-alice"}],
        "roles": [{"name": "alice.ci", "description": "CI",
                   "policies": ["data:get@urn:tessera:data:alice.*"],
                   "trust": [{"issuer": "https://token.actions.githubusercontent.com",
                              "audience": "tessera", "subject": "repo:acme/app:*"}]}]}))
    status, out, _ = run(capsys, "seed", str(seed_file))
    assert status == 0 and "created role alice.ci" in out.splitlines()
    status, out, _ = run(capsys, "seed", str(seed_file))
    assert status == 0 and "skipped existing role alice.ci" in out.splitlines()
    role = ctr.roles_repo.get("alice.ci")
    assert list(role.policies.values()) == ["data:get@urn:tessera:data:alice.*"]
    assert [t.subject for t in role.trust.values()] == ["repo:acme/app:*"]


def test_client_create_registers_algorithms_and_resources_and_makes_the_rs256_keys(ctr, capsys):
    status, _, err = run(capsys, "client", "create", "orders-api", "--grant-types",
                         "client_credentials", "--resources",
                         "https://orders.example/api,https://orders.example/admin")
    assert status == 0, err
    assert ctr.keystore.load() is None      # an ES256-only client makes no keys
    status, _, err = run(capsys, "client", "create", "portal", "--grant-types", "password",
                         "--id-token-signed-response-alg", "RS256",
                         "--default-audience", "https://orders.example/api")
    assert status == 0, err
    status, out, _ = run(capsys, "client", "show", "portal")
    shown = json.loads(out)
    assert shown["id_token_signed_response_alg"] == "RS256"
    assert shown["access_token_signed_response_alg"] is None
    assert shown["default_audience"] == "https://orders.example/api"
    # registering an RS256 client made the RS256 family at once, not at its first sign-in
    assert "RS256" in {k["alg"] for k in ctr.keystore.load()["keys"]}
    status, out, _ = run(capsys, "client", "show", "orders-api")
    assert json.loads(out)["resources"] == ["https://orders.example/api",
                                            "https://orders.example/admin"]


def test_client_create_refuses_an_unknown_default_audience_or_a_taken_resource(ctr, capsys):
    status, _, err = run(capsys, "client", "create", "portal", "--grant-types", "password",
                         "--default-audience", "https://nobody.example")
    assert status == 1 and "not a registered resource" in err
    assert run(capsys, "client", "create", "api-1", "--resources", "https://api.example")[0] == 0
    status, _, err = run(capsys, "client", "create", "api-2", "--resources", "https://api.example")
    assert status == 1 and "already registered" in err
    assert ctr.clients.get("api-2") is None     # all or nothing
    status, _, err = run(capsys, "client", "create", "api-3", "--resources", "https://api.example/#x")
    assert status == 1 and "without a fragment" in err


def test_user_create_refuses_a_username_with_the_namespace_separator(ctr, capsys):
    status, out, err = run(capsys, "user", "create", "bob.x", "--password", "correct-horse")
    assert status == 1 and out == ""
    assert err.startswith("error: username must be") and "no dot" in err and err.count("\n") == 1
    assert ctr.identities.find_user("bob.x") is None


def test_check_names_reports_the_users_from_before_the_rule_and_disable_ends_them(ctr, capsys,
                                                                                  client):
    from chalicelib.models import User, user_id_for
    from chalicelib.security.passwords import hash_password
    from tests.api.helpers import CLI, login, seed
    from tests.conftest import TEST_SCRYPT_LOG_N

    seed(ctr)
    for name in ("alice.x", "bob@corp"):    # as the old rule let them be written
        ctr.identities.users.create(User(id=user_id_for(name), username=name,
                                         password_hash=hash_password("password4legacy",
                                                                       log_n=TEST_SCRYPT_LOG_N)))
    assert login(client, username="alice.x", password="password4legacy",
                 client_id=CLI).status_code == 200

    status, out, _ = run(capsys, "user", "check-names")
    report = json.loads(out)
    assert status == 0 and "no dot" in report["rule"]
    assert report["users"] == [
        {"id": user_id_for("alice.x"), "username": "alice.x", "active": True,
         "holds_namespace": False, "inside_namespace_of": "alice"},
        {"id": user_id_for("bob@corp"), "username": "bob@corp", "active": True,
         "holds_namespace": True, "inside_namespace_of": None}]
    shown = json.loads(run(capsys, "user", "show", "alice.x")[1])
    assert shown["username_rule"] == "broken" and shown["permissions"] == []
    assert json.loads(run(capsys, "user", "show", "alice")[1])["username_rule"] == "met"

    status, out, _ = run(capsys, "user", "check-names", "--disable")
    disabled = {u["username"]: u for u in json.loads(out)["users"]}
    assert status == 0
    assert disabled["alice.x"]["active"] is False and disabled["alice.x"]["ended_sessions"] == 1
    assert disabled["bob@corp"]["active"] is True and "ended_sessions" not in disabled["bob@corp"]
    assert login(client, username="alice.x", password="password4legacy",
                 client_id=CLI).status_code == 400
