"""The commands over a fake HTTP transport (httpx.MockTransport): what they send,
what they print, and their exit status (0 ok, 1 error, 2 usage, 4 not logged in)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from click.testing import CliRunner
from tessera_cli.config import Config
from tessera_cli.main import cli
from tessera_cli.store import Credentials, CredentialStore

SERVER = "https://tessera.example.com"
NOW = 1_800_000_000.0
DISCOVERY = {"issuer": SERVER, "token_endpoint": f"{SERVER}/oauth/token",
             "device_authorization_endpoint": f"{SERVER}/oauth/device_authorization",
             "revocation_endpoint": f"{SERVER}/oauth/revoke", "scopes_supported": ["openid"]}
ME = {"id": "u1", "email": "alice@example.com", "firstname": "Alice", "lastname": "Liddell",
      "active": True}
Handler = Callable[[httpx.Request], httpx.Response]


class Fake:
    """The server: routes ``(method, path)`` to answers and records every request."""

    def __init__(self, routes: dict[tuple[str, str], Any]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"detail": "no route"})
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, httpx.Response):
            return answer
        status, body = answer
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def invoke(fake: Fake | Handler, *args: str, env: dict[str, str] | None = None,
           stdin: str | None = None, now: float = NOW) -> Any:
    slept: list[float] = []
    obj = {"transport": httpx.MockTransport(fake), "clock": lambda: now,
           "monotonic": lambda: sum(slept), "sleep": slept.append}
    return CliRunner().invoke(cli, list(args), obj=obj, env=env, input=stdin)


def stored(config_home, **changes: Any) -> Credentials:
    creds = Credentials(server=SERVER, client_id="cli", token_endpoint=f"{SERVER}/oauth/token",
                        revocation_endpoint=f"{SERVER}/oauth/revoke", access_token="at-old",
                        refresh_token="tsr_old", expires_at=int(NOW) + 300, scope="openid")
    creds = Credentials(**{**creds.__dict__, **changes})
    CredentialStore(config_home, Config(config_home), lambda _: None).save(creds)
    return creds


def load(config_home) -> Credentials | None:
    return CredentialStore(config_home, Config(config_home), lambda _: None).load(SERVER)


# -- login -------------------------------------------------------------------

def test_login_prints_the_url_and_code_polls_and_stores_the_tokens(config_home, memory_keyring):
    polls = iter([(400, {"error": "authorization_pending"}),
                  (200, {"access_token": "at-new", "token_type": "Bearer", "expires_in": 300,
                         "refresh_token": "tsr_new", "scope": "openid profile"})])
    fake = Fake({("GET", "/.well-known/openid-configuration"): (200, DISCOVERY),
                 ("POST", "/oauth/device_authorization"): (200, {
                     "device_code": "tsd_x", "user_code": "CGAX-GSVT",
                     "verification_uri": f"{SERVER}/device",
                     "verification_uri_complete": f"{SERVER}/device?user_code=CGAX-GSVT",
                     "expires_in": 300, "interval": 5}),
                 ("POST", "/oauth/token"): lambda _: next(polls)})
    result = invoke(fake, "login", "--server", SERVER + "/", "--no-browser", "--scopes", "openid,profile",
                    env={"DISPLAY": ":0"})
    assert result.exit_code == 0, result.output
    assert result.stdout == "Login successful!\n"
    assert f"{SERVER}/device?user_code=CGAX-GSVT" in result.stderr and "CGAX-GSVT" in result.stderr
    assert "browser window" not in result.stderr
    assert form(fake.sent("POST", "/oauth/device_authorization")[0]) == {
        "client_id": "cf83e1357eefb8bd", "scope": "openid profile"}
    assert form(fake.sent("POST", "/oauth/token")[0]) == {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "tsd_x",
        "client_id": "cf83e1357eefb8bd"}
    creds = load(config_home)
    assert creds is not None and creds.access_token == "at-new" and creds.refresh_token == "tsr_new"
    assert creds.expires_at == int(NOW) + 300


def test_login_without_scopes_asks_for_none_so_the_client_gets_all_of_its_own(config_home, memory_keyring):
    fake = Fake({("GET", "/.well-known/openid-configuration"): (200, DISCOVERY),
                 ("POST", "/oauth/device_authorization"): (200, {
                     "device_code": "tsd_x", "user_code": "CGAX-GSVT",
                     "verification_uri": f"{SERVER}/device", "expires_in": 300}),
                 ("POST", "/oauth/token"): (200, {"access_token": "at", "token_type": "Bearer",
                                                  "refresh_token": "tsr_x"})})
    result = invoke(fake, "login", "--server", SERVER, "--no-browser")
    assert result.exit_code == 0, result.output
    assert form(fake.sent("POST", "/oauth/device_authorization")[0]) == {"client_id": "cf83e1357eefb8bd"}
    assert f"{SERVER}/device\n" in result.stderr  # no verification_uri_complete: the plain URI


def test_login_denied_in_the_browser_stores_nothing(config_home, memory_keyring):
    fake = Fake({("GET", "/.well-known/openid-configuration"): (200, DISCOVERY),
                 ("POST", "/oauth/device_authorization"): (200, {
                     "device_code": "tsd_x", "user_code": "CGAX-GSVT",
                     "verification_uri": f"{SERVER}/device", "expires_in": 300}),
                 ("POST", "/oauth/token"): (400, {"error": "access_denied"})})
    result = invoke(fake, "login", "--server", SERVER, "--no-browser")
    assert result.exit_code == 1
    assert "Error: the login was denied in the browser" in result.stderr
    assert load(config_home) is None and memory_keyring.items == {}


def test_login_against_something_that_is_not_tessera_says_so(config_home, memory_keyring):
    result = invoke(Fake({}), "login", "--server", SERVER, "--no-browser")
    assert result.exit_code == 1 and "not a Tessera server" in result.stderr


def test_a_server_that_is_not_a_url_is_a_usage_error(config_home):
    result = invoke(Fake({}), "whoami", "--server", "tessera.example.com")
    assert result.exit_code == 2 and "http(s) URL" in result.stderr


# -- token show, refresh -------------------------------------------------------

def test_token_show_prints_a_valid_token_without_asking_the_server(config_home, memory_keyring):
    stored(config_home)
    fake = Fake({})
    result = invoke(fake, "token", "show")
    assert result.exit_code == 0
    assert result.stdout == "at-old\n"
    assert "valid" in result.stderr and "in 5 minutes" in result.stderr
    assert fake.requests == []
    header = invoke(fake, "token", "show", "-H")
    assert header.stdout == "Authorization: Bearer at-old\n"


def test_token_show_refreshes_an_expired_token_first_and_keeps_the_rotated_refresh_token(
        config_home, memory_keyring):
    stored(config_home, expires_at=int(NOW) - 10)
    fake = Fake({("POST", "/oauth/token"): (200, {"access_token": "at-new", "token_type": "Bearer",
                                                  "expires_in": 300, "refresh_token": "tsr_new"})})
    result = invoke(fake, "token", "show")
    assert result.exit_code == 0, result.output
    assert result.stdout == "at-new\n" and "refreshed" in result.stderr
    assert form(fake.requests[0]) == {"grant_type": "refresh_token", "refresh_token": "tsr_old",
                                      "client_id": "cli"}
    creds = load(config_home)
    assert creds.refresh_token == "tsr_new" and creds.scope == "openid"


def test_an_ended_session_says_to_log_in_again_with_status_4(config_home, memory_keyring):
    stored(config_home, expires_at=int(NOW) - 10)
    fake = Fake({("POST", "/oauth/token"): (400, {"error": "invalid_grant"})})
    result = invoke(fake, "token", "show")
    assert result.exit_code == 4
    assert result.stderr.strip().endswith("run `tessera login`")
    assert len(result.stderr.strip().splitlines()) == 1


def test_token_show_without_a_login_says_to_log_in(config_home, memory_keyring):
    result = invoke(Fake({}), "token", "show", "--server", SERVER)
    assert result.exit_code == 4 and "tessera login" in result.stderr


def test_token_show_prints_the_override_token_as_given(config_home):
    result = invoke(Fake({}), "token", "show", "-H", env={"TESSERA_TOKEN": "tsp_abc",
                                                          "TESSERA_SERVER": SERVER})
    assert result.exit_code == 0 and result.stdout == "Authorization: Bearer tsp_abc\n"


# -- API commands --------------------------------------------------------------

def test_whoami_prints_a_table_and_json(config_home, memory_keyring):
    stored(config_home)
    fake = Fake({("GET", "/v1/me"): (200, ME)})
    result = invoke(fake, "whoami")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["First name  Alice", "Last name   Liddell",
                                          "Email       alice@example.com", "ID          u1",
                                          "Active      yes"]
    assert fake.requests[0].headers["authorization"] == "Bearer at-old"
    assert json.loads(invoke(fake, "whoami", "--json").stdout) == ME


def test_token_info_reads_as_words_and_utc_times(config_home, memory_keyring):
    stored(config_home)
    issued = int(NOW) - 60
    info = {"type": "access_token", "issued_at": issued, "expires_at": issued + 300, "expires_in": 240,
            "scopes": ["openid", "profile"], "client_id": "cli", "session_id": "s1",
            "session_issued_at": issued - 3600, "idle_deadline": issued + 36000,
            "session_expires_at": issued + 86400, "last_used_at": 0}
    result = invoke(Fake({("GET", "/v1/token-info"): (200, info)}), "token", "info")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "Expires in             in 4 minutes" in lines
    assert "Originally issued at   2027-01-15 06:59:00 UTC" in lines
    assert "Session idle deadline  2027-01-15 17:59:00 UTC (in 10 hours)" in lines
    assert "Last used at           1970-01-01 00:00:00 UTC" in lines
    assert "Scopes                 openid profile" in lines


def test_the_override_token_is_sent_instead_of_the_login(config_home, memory_keyring):
    stored(config_home)
    fake = Fake({("GET", "/v1/me"): (200, ME)})
    result = invoke(fake, "whoami", "--token", "tka_a:tsk_b")
    assert result.exit_code == 0
    assert fake.requests[0].headers["authorization"] == "Bearer tka_a:tsk_b"


def test_a_rejected_override_token_exits_4_without_refreshing(config_home, memory_keyring):
    stored(config_home)
    fake = Fake({("GET", "/v1/me"): (401, {"type": "about:blank", "title": "Unauthorized",
                                           "status": 401, "detail": "Provided token is not valid"})})
    result = invoke(fake, "whoami", env={"TESSERA_TOKEN": "tsp_revoked"})
    assert result.exit_code == 4
    assert result.stderr == ("Error: TESSERA_TOKEN / --token was rejected: "
                             "Provided token is not valid\n")
    assert fake.sent("POST", "/oauth/token") == []


def test_a_token_the_server_rejects_is_refreshed_once_and_the_call_retried(config_home, memory_keyring):
    stored(config_home)
    answers = iter([(401, {"detail": "Provided token is not valid"}), (200, ME)])
    fake = Fake({("GET", "/v1/me"): lambda _: next(answers),
                 ("POST", "/oauth/token"): (200, {"access_token": "at-new", "token_type": "Bearer",
                                                  "refresh_token": "tsr_new", "expires_in": 300})})
    result = invoke(fake, "whoami")
    assert result.exit_code == 0, result.output
    assert [r.headers["authorization"] for r in fake.sent("GET", "/v1/me")] == [
        "Bearer at-old", "Bearer at-new"]


def test_pat_create_prints_the_secret_alone_on_stdout(config_home, memory_keyring):
    stored(config_home)
    issued = {"id": "p1", "description": "ci", "token": "tsp_secret", "expires_at": "2026-12-27"}
    fake = Fake({("POST", "/v1/tokens"): (201, issued)})
    result = invoke(fake, "pat", "create", "--description", "ci", "--api-set", "ide-plugins")
    assert result.exit_code == 0
    assert result.stdout == "tsp_secret\n"
    assert "not shown again" in result.stderr
    assert json.loads(fake.requests[0].content) == {"description": "ci", "api_set": "ide-plugins"}


def test_a_change_that_needs_the_password_sends_it_from_stdin(config_home, memory_keyring):
    stored(config_home)
    fake = Fake({("DELETE", "/v1/tokens/p1"): (204, None)})
    result = invoke(fake, "pat", "revoke", "p1", "--password-stdin", stdin="hunter2\n")
    assert result.exit_code == 0 and result.stdout == "Revoked p1.\n"
    assert json.loads(fake.requests[0].content) == {"password": "hunter2"}


def test_a_change_that_needs_the_password_says_how_to_give_it_when_there_is_no_terminal(
        config_home, memory_keyring):
    stored(config_home)
    fake = Fake({("DELETE", "/v1/tokens/p1"): (403, {
        "type": "about:blank", "title": "Forbidden", "status": 403,
        "detail": "Confirm this change with your password (field 'password'), or sign in again"})})
    result = invoke(fake, "pat", "revoke", "p1")
    assert result.exit_code == 1
    assert "--password-stdin" in result.stderr and len(fake.requests) == 1


LASTING_GRANTS = [
    (["role", "policy", "add", "alice.ci", "data:get@x"], "/v1/roles/alice.ci/policies",
     {"id": "p1", "permission": "data:get@x"}),
    (["role", "trust", "add", "alice.ci", "--issuer", "https://issuer.example", "--subject",
      "repo:acme/app:*"], "/v1/roles/alice.ci/trust", {"id": "t1"}),
    (["role", "key", "new", "alice.ci"], "/v1/roles/alice.ci/keys",
     {"id": "k1", "access": "tka_A", "secret": "tsk_S", "token": "tka_A:tsk_S"}),
]


@pytest.mark.parametrize("args,path,created", LASTING_GRANTS,
                         ids=["policy add", "trust add", "key new"])
def test_a_lasting_grant_refused_for_an_old_sign_in_is_retried_with_the_password(
        config_home, memory_keyring, args, path, created):
    stored(config_home)

    def answer(request: httpx.Request) -> httpx.Response:
        if "password" not in json.loads(request.content):
            return httpx.Response(403, json={
                "type": "about:blank", "title": "Forbidden", "status": 403,
                "detail": "Confirm this change with your password (field 'password'), or sign "
                          "in again: the sign-in must be younger than 10 minutes"})
        return httpx.Response(201, json=created)

    fake = Fake({("POST", path): answer})
    refused = invoke(fake, *args)
    assert refused.exit_code == 1 and "--password-stdin" in refused.stderr
    assert "Traceback" not in refused.output and len(fake.requests) == 1
    confirmed = invoke(fake, *args, "--password-stdin", stdin="hunter2\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert json.loads(fake.requests[-1].content)["password"] == "hunter2"


def test_a_problem_answer_is_one_line_with_its_field_errors(config_home, memory_keyring):
    stored(config_home)
    fake = Fake({("POST", "/v1/tokens"): (422, {
        "type": "about:blank", "title": "Unprocessable Content", "status": 422,
        "detail": "The request body is invalid",
        "errors": [{"detail": "expires_at must be a date as YYYY-MM-DD, or null",
                    "pointer": "#/expires_at"}]})})
    result = invoke(fake, "pat", "create", "-d", "ci", "--scope", "openid", "--expires", "soon")
    assert result.exit_code == 1
    assert result.stderr == ("Error: The request body is invalid; expires_at: expires_at must be a "
                             "date as YYYY-MM-DD, or null\n")


@pytest.mark.parametrize("args,expected", [
    (["--format-template", "{access}:{secret}"], "tka_A:tsk_S\n"),
    (["--format-template", "docker login -u {access} -p {secret}"], "docker login -u tka_A -p tsk_S\n"),
    (["--format", "json"], None),
])
def test_role_key_new_formats_the_key(config_home, memory_keyring, args, expected):
    stored(config_home)
    created = {"id": "k1", "access": "tka_A", "secret": "tsk_S", "token": "tka_A:tsk_S"}
    fake = Fake({("POST", "/v1/roles/alice.ci/keys"): (201, created)})
    result = invoke(fake, "role", "key", "new", "alice.ci", *args)
    assert result.exit_code == 0, result.output
    if expected is None:
        assert json.loads(result.stdout) == created
    else:
        assert result.stdout == expected


def test_an_unknown_template_field_is_a_usage_error_before_any_key_is_made(config_home, memory_keyring):
    stored(config_home)
    fake = Fake({})
    result = invoke(fake, "role", "key", "new", "alice.ci", "--format-template", "{acess}:{secret}")
    assert result.exit_code == 2 and "{acess}" in result.stderr
    assert fake.requests == []


def test_role_commands_follow_the_roles_api(config_home, memory_keyring):
    stored(config_home)
    fake = Fake({("POST", "/v1/roles"): (201, {"name": "alice.ci", "description": "CI",
                                               "created_at": 1, "policies": []}),
                 ("POST", "/v1/roles/alice.ci/policies"): (201, {"id": "p1", "permission": "data:get@x"}),
                 ("POST", "/v1/roles/alice.ci/trust"): (201, {"id": "t1"}),
                 ("DELETE", "/v1/roles/alice.ci/keys/k1"): (204, None)})
    assert invoke(fake, "role", "new", "alice.ci", "-d", "CI").exit_code == 0
    assert invoke(fake, "role", "policy", "add", "alice.ci", "data:get@x").stdout == \
        "Added policy p1: data:get@x\n"
    added = invoke(fake, "role", "trust", "add", "alice.ci", "--issuer", "https://issuer.example",
                   "--subject", "repo:acme/app:*", "--claim", "repository_owner=acme")
    assert added.exit_code == 0
    assert invoke(fake, "role", "key", "revoke", "alice.ci", "k1").exit_code == 0
    bodies = [json.loads(r.content) for r in fake.requests if r.content]
    assert bodies == [{"name": "alice.ci", "description": "CI"}, {"permission": "data:get@x"},
                      {"issuer": "https://issuer.example", "audience": "tessera",
                       "subject": "repo:acme/app:*", "claims": {"repository_owner": "acme"}}]


def test_consents_list_shows_each_app_and_revoke_withdraws_one(config_home, memory_keyring):
    stored(config_home)
    consent = {"client_id": "console", "client_name": "Console", "scopes": ["openid", "profile"],
               "created_at": 0, "updated_at": 60}
    fake = Fake({("GET", "/v1/consents"): (200, {"consents": [consent]}),
                 ("DELETE", "/v1/consents/console"): (204, None)})
    listed = invoke(fake, "consents", "list")
    assert listed.stdout.splitlines() == [
        "CLIENT   NAME     SCOPES          GRANTED                  CHANGED",
        "console  Console  openid profile  1970-01-01 00:00:00 UTC  1970-01-01 00:01:00 UTC"]
    assert json.loads(invoke(fake, "consents", "list", "--json").stdout) == [consent]
    revoked = invoke(fake, "consents", "revoke", "console")
    assert revoked.exit_code == 0 and revoked.stdout == "Withdrew consent for console.\n"


def test_events_prints_a_table_follows_the_cursor_and_json_is_the_raw_list(config_home,
                                                                            memory_keyring):
    stored(config_home)
    newer = {"id": "e2", "kind": "pat_created", "time": 60, "ip": "203.0.113.9",
             "user_agent": "curl/8", "detail": {"pat_id": "p1", "description": "ci"}}
    older = {"id": "e1", "kind": "signin", "time": 0, "ip": "", "user_agent": "",
             "detail": {"client_id": "cli", "method": "pwd"}}

    def page(request: httpx.Request) -> tuple[int, dict[str, Any]]:
        cursor = request.url.params.get("cursor")
        if cursor is None:
            return 200, {"events": [newer], "next_cursor": "e2"}
        return 200, {"events": [older], "next_cursor": None}

    fake = Fake({("GET", "/v1/events"): page})
    listed = invoke(fake, "events")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == [
        "TIME                     KIND         IP           DETAIL",
        "1970-01-01 00:01:00 UTC  pat_created  203.0.113.9  pat_id=p1 description=ci",
        "1970-01-01 00:00:00 UTC  signin       -            client_id=cli method=pwd"]
    assert [r.url.params.get("cursor") for r in fake.sent("GET", "/v1/events")] == [None, "e2"]
    assert json.loads(invoke(fake, "events", "--json").stdout) == [newer, older]


def test_events_stops_at_the_limit_and_passes_the_kind(config_home, memory_keyring):
    stored(config_home)
    event = {"id": "e1", "kind": "signin_failed", "time": 0, "ip": "", "user_agent": "",
             "detail": {"reason": "wrong_password"}}
    fake = Fake({("GET", "/v1/events"): (200, {"events": [event], "next_cursor": "e1"})})
    done = invoke(fake, "events", "--kind", "signin_failed", "--limit", "1", "--json")
    assert json.loads(done.stdout) == [event]
    [sent] = fake.sent("GET", "/v1/events")
    assert dict(sent.url.params) == {"kind": "signin_failed", "limit": "1"}


# -- logout --------------------------------------------------------------------

def test_logout_revokes_the_refresh_token_then_deletes_the_login(config_home, memory_keyring):
    stored(config_home)
    fake = Fake({("POST", "/oauth/revoke"): (200, {})})
    result = invoke(fake, "logout")
    assert result.exit_code == 0
    assert form(fake.requests[0]) == {"token": "tsr_old", "token_type_hint": "refresh_token",
                                      "client_id": "cli"}
    assert load(config_home) is None


def test_logout_offline_deletes_the_login_with_a_warning(config_home, memory_keyring):
    stored(config_home)

    def offline(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = invoke(offline, "logout")
    assert result.exit_code == 0
    assert result.stderr.startswith("warning: cannot reach") and "until it expires" in result.stderr
    assert load(config_home) is None


# -- job token -----------------------------------------------------------------

EXCHANGED = {"access_token": "role-jwt", "token_type": "Bearer", "expires_in": 3600,
             "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}


def job_server(extra: dict[tuple[str, str], Any] | None = None) -> Fake:
    return Fake({("GET", "/.well-known/openid-configuration"): (200, DISCOVERY),
                 ("POST", "/oauth/token"): (200, EXCHANGED), **(extra or {})})


def test_job_token_asks_github_actions_for_an_id_token_and_exchanges_it(config_home):
    fake = job_server({("GET", "/github-oidc"): (200, {"value": "gh-jwt"})})
    env = {"ACTIONS_ID_TOKEN_REQUEST_URL": f"{SERVER}/github-oidc?api-version=2.0",
           "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-secret", "TESSERA_SERVER": SERVER}
    result = invoke(fake, "job", "token", "--role", "alice.ci", "-H", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "Authorization: Bearer role-jwt\n"
    asked = fake.sent("GET", "/github-oidc")[0]
    assert asked.headers["authorization"] == "Bearer runner-secret"
    assert dict(asked.url.params) == {"api-version": "2.0", "audience": "tessera"}
    exchange = form(fake.sent("POST", "/oauth/token")[0])
    assert exchange == {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                        "subject_token": "gh-jwt",
                        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                        "audience": "urn:tessera:role:alice.ci"}
    assert "authorization" not in fake.sent("POST", "/oauth/token")[0].headers


def test_job_token_takes_a_gitlab_id_token_from_tessera_oidc_token(config_home):
    fake = job_server()
    result = invoke(fake, "job", "token", "--role", "alice.ci", "--server", SERVER,
                    env={"TESSERA_OIDC_TOKEN": "gitlab-jwt\n"})
    assert result.stdout == "role-jwt\n"
    assert form(fake.sent("POST", "/oauth/token")[0])["subject_token"] == "gitlab-jwt"


def test_job_token_file_wins_over_the_environment(config_home, tmp_path):
    path = tmp_path / "oidc.jwt"
    path.write_text("file-jwt\n")
    fake = job_server()
    result = invoke(fake, "job", "token", "--role", "alice.ci", "--server", SERVER,
                    "--oidc-token-file", str(path), env={"TESSERA_OIDC_TOKEN": "gitlab-jwt"})
    assert result.exit_code == 0
    assert form(fake.sent("POST", "/oauth/token")[0])["subject_token"] == "file-jwt"


def test_job_token_outside_ci_is_a_usage_error(config_home):
    result = invoke(job_server(), "job", "token", "--role", "alice.ci", "--server", SERVER)
    assert result.exit_code == 2 and "no job OIDC token" in result.stderr


def test_a_refused_job_token_says_why(config_home):
    fake = job_server({("POST", "/oauth/token"): (400, {
        "error": "invalid_grant", "error_description": "No trust policy of the role matches"})})
    result = invoke(fake, "job", "token", "--role", "alice.ci", "--server", SERVER,
                    env={"TESSERA_OIDC_TOKEN": "jwt"})
    assert result.exit_code == 1
    assert result.stderr == ("Error: the server refused the job token: "
                             "No trust policy of the role matches\n")


def test_a_change_for_an_owner_with_a_second_factor_sends_the_code_too(
        config_home, memory_keyring, monkeypatch):
    """SPEC §11: with a second factor enrolled, the password alone does not confirm a
    lasting grant; the CLI adds the code from TESSERA_OTP (or asks on a terminal)."""
    stored(config_home)

    def answer(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        if "otp" not in sent:
            return httpx.Response(403, json={
                "type": "about:blank", "title": "Forbidden", "status": 403,
                "detail": "Confirm this change with your password and a code from your "
                          "authenticator app or a recovery code (field 'otp'), or sign in again "
                          "with your second factor"})
        return httpx.Response(201, json={"id": "p1", "permission": "data:get@x"})

    fake = Fake({("POST", "/v1/roles/alice.ci/policies"): answer})
    args = ["role", "policy", "add", "alice.ci", "data:get@x", "--password-stdin"]
    refused = invoke(fake, *args, stdin="hunter2\n")
    assert refused.exit_code == 1 and "TESSERA_OTP" in refused.stderr
    monkeypatch.setenv("TESSERA_OTP", "123456")
    confirmed = invoke(fake, *args, stdin="hunter2\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert json.loads(fake.requests[-1].content) == {"permission": "data:get@x",
                                                     "password": "hunter2", "otp": "123456"}
