"""CORS for browser apps (SPEC §2 "Browser apps"): discovery and JWKS to anyone,
token, UserInfo, revocation and ``/v1/me`` only to a client's registered web
origins, working preflights, and introspection kept server to server."""

from __future__ import annotations

import threading

import pytest

from chalicelib.errors import BadRequest
from chalicelib.security.cors import origin_of, origin_problem
from tests.api.helpers import basic, bearer, body, form, seed
from tests.concurrency import atomic_container, run_together

SPA, SPA_ORIGIN = "spa", "https://spa.example"
OTHER, OTHER_ORIGIN = "other-spa", "https://other.example"
EVIL = "https://evil.example"
PASSWORD = {"grant_type": "password", "username": "alice", "password": "password4alice",
            "scope": "openid profile"}


@pytest.fixture
def apps(client, ctr):
    seed(ctr)
    ids = ctr.identities
    # The SPA's origin comes from its redirect URI; the other's from allowed_origins.
    ids.create_client(SPA, public=True, grant_types=["password", "refresh_token"],
                      scopes=["openid", "profile"], redirect_uris=[SPA_ORIGIN + "/callback.html"])
    ids.create_client(OTHER, public=True, grant_types=["password"], scopes=["openid", "profile"],
                      allowed_origins=[OTHER_ORIGIN])
    return client


def signed_in(client, origin: str = SPA_ORIGIN) -> dict:
    response = form(client, "/oauth/token", {"Origin": origin}, client_id=SPA, **PASSWORD)
    assert response.status_code == 200, response.body
    return body(response)


def preflight(client, path: str, origin: str, method: str = "POST"):
    return client.http.request("OPTIONS", path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type"})


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration",
                                  "/.well-known/oauth-authorization-server",
                                  "/.well-known/jwks.json"])
def test_discovery_and_jwks_may_be_read_by_any_origin_without_credentials(apps, path):
    response = apps.http.get(path, headers={"Origin": EVIL})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    answer = preflight(apps, path, EVIL, "GET")
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.headers["Access-Control-Allow-Methods"] == "GET"


@pytest.mark.parametrize(("path", "methods"), [("/oauth/token", "POST"),
                                               ("/oauth/revoke", "POST"),
                                               ("/oauth/userinfo", "GET, POST"),
                                               ("/v1/me", "GET")])
def test_a_preflight_from_a_registered_origin_names_methods_headers_and_max_age(apps, path, methods):
    answer = preflight(apps, path, SPA_ORIGIN, methods.split(",")[0])
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert answer.headers["Vary"] == "Origin"
    assert answer.headers["Access-Control-Allow-Methods"] == methods
    assert answer.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert answer.headers["Access-Control-Max-Age"] == "600"


@pytest.mark.parametrize("origin", [EVIL, "null", "https://SPA.example", SPA_ORIGIN + "/"])
def test_a_preflight_from_an_origin_no_client_registered_allows_nothing(apps, origin):
    answer = preflight(apps, "/oauth/token", origin)
    assert answer.status_code == 204
    assert not [h for h in answer.headers if h.lower().startswith("access-control-")]


def test_the_token_endpoint_echoes_the_clients_origin_with_vary(apps):
    response = form(apps, "/oauth/token", {"Origin": SPA_ORIGIN}, client_id=SPA, **PASSWORD)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert response.headers["Vary"] == "Origin"


def test_the_token_endpoint_refuses_a_browser_at_an_origin_no_client_registered(apps):
    response = form(apps, "/oauth/token", {"Origin": EVIL}, client_id=SPA, **PASSWORD)
    assert response.status_code == 400
    assert body(response) == {"error": "invalid_request", "error_description":
                              "Origin 'https://evil.example' is not a registered web origin "
                              "of this client"}
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_the_token_endpoint_refuses_another_clients_origin_but_lets_that_page_read_why(apps):
    # OTHER_ORIGIN is a web origin, of another client: the page there may read the refusal.
    response = form(apps, "/oauth/token", {"Origin": OTHER_ORIGIN}, client_id=SPA, **PASSWORD)
    assert response.status_code == 400 and body(response)["error"] == "invalid_request"
    assert response.headers["Access-Control-Allow-Origin"] == OTHER_ORIGIN
    ok = form(apps, "/oauth/token", {"Origin": OTHER_ORIGIN}, client_id=OTHER, **PASSWORD)
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == OTHER_ORIGIN


def test_a_refresh_from_a_foreign_origin_is_refused_before_the_token_rotates(apps):
    tokens = signed_in(apps)
    stolen = form(apps, "/oauth/token", {"Origin": EVIL}, client_id=SPA,
                  grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert stolen.status_code == 400
    again = form(apps, "/oauth/token", {"Origin": SPA_ORIGIN}, client_id=SPA,
                 grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert again.status_code == 200, again.body


def test_a_request_without_origin_is_not_a_browsers_and_gets_no_cors_header(apps):
    response = form(apps, "/oauth/token", client_id=SPA, **PASSWORD)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("path", ["/oauth/userinfo", "/v1/me"])
def test_userinfo_and_me_answer_a_registered_origin_only(apps, path):
    token = signed_in(apps)["access_token"]
    mine = apps.http.get(path, headers={**bearer(token), "Origin": SPA_ORIGIN})
    assert mine.status_code == 200
    assert mine.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert mine.headers["Vary"] == "Origin"
    foreign = apps.http.get(path, headers={**bearer(token), "Origin": EVIL})
    assert "Access-Control-Allow-Origin" not in foreign.headers
    assert foreign.headers["Vary"] == "Origin"


def test_an_error_answer_to_a_registered_origin_carries_cors_too(apps):
    response = apps.http.get("/oauth/userinfo", headers={"Origin": SPA_ORIGIN})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN


def test_revocation_answers_a_registered_origin(apps):
    tokens = signed_in(apps)
    response = form(apps, "/oauth/revoke", {"Origin": SPA_ORIGIN}, client_id=SPA,
                    token=tokens["refresh_token"])
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN


def test_introspection_stays_server_to_server(apps):
    token = signed_in(apps)["access_token"]
    response = form(apps, "/oauth/introspect",
                    {**basic("resource-server", "resource-server-secret-value"),
                     "Origin": SPA_ORIGIN}, token=token)
    assert response.status_code == 200 and body(response)["active"] is True
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]
    from app import app

    assert "OPTIONS" not in app.routes["/oauth/introspect"]   # no preflight either


class CountingOrigins:
    """A clients repository that knows one origin and counts the lookups."""

    def __init__(self, known: str) -> None:
        self.known, self.reads = known, []

    def origin_registered(self, origin: str) -> bool:
        self.reads.append(origin)
        return origin == self.known


def test_an_origin_lookup_is_cached_per_instance_for_a_minute(clock):
    from chalicelib.services.web_origins import WebOrigins

    repo = CountingOrigins(SPA_ORIGIN)
    origins = WebOrigins(repo, clock)   # type: ignore[arg-type]
    assert [origins.registered(o) for o in (SPA_ORIGIN, EVIL, SPA_ORIGIN, EVIL)] == [
        True, False, True, False]
    assert origins.registered("null") is False   # not an origin a client could register: no read
    assert repo.reads == [SPA_ORIGIN, EVIL]
    clock.advance(61)
    assert origins.registered(SPA_ORIGIN) and repo.reads == [SPA_ORIGIN, EVIL, SPA_ORIGIN]


# -- registration -------------------------------------------------------------------

@pytest.mark.parametrize(("uri", "origin"), [
    ("https://App.Example/cb?x=1", "https://app.example"),
    ("https://app.example:443/cb", "https://app.example"),
    ("https://app.example:8443/cb", "https://app.example:8443"),
    ("http://127.0.0.1:8700/callback.html", "http://127.0.0.1:8700"),
    ("http://localhost/cb", "http://localhost"),
    ("http://[::1]:9000/cb", "http://[::1]:9000"),
    ("com.example.app:/cb", None),
])
def test_a_redirect_uri_gives_the_origin_a_browser_sends(uri, origin):
    assert origin_of(uri) == origin


@pytest.mark.parametrize("origin", [
    "https://app.example/", "https://app.example/path", "https://*.example", "*",
    "http://app.example", "HTTPS://app.example", "https://App.example", "https://app.example:443",
    "https://user@app.example", "https://app.example?x", "https://app.example#f", "null",
    "ftp://app.example", "https://", "https://app.example:99999",
])
def test_an_allowed_origin_must_be_exactly_scheme_host_and_port(ctr, origin):
    assert origin_problem(origin) is not None
    with pytest.raises(BadRequest, match="allowed origin"):
        ctr.identities.create_client("spa", public=True, allowed_origins=[origin])
    assert ctr.clients.get("spa") is None


@pytest.mark.parametrize("origin", ["https://app.example", "https://app.example:8443",
                                    "http://127.0.0.1:8700", "http://localhost:3000",
                                    "http://[::1]:9000"])
def test_well_formed_origins_may_be_registered(ctr, origin):
    ctr.identities.create_client("spa", public=True, allowed_origins=[origin])
    assert ctr.clients.get("spa").web_origins == (origin,)
    assert ctr.clients.origin_registered(origin)


def test_two_clients_may_share_an_origin_and_both_are_listed(ctr):
    ctr.identities.create_client("a", public=True, allowed_origins=[SPA_ORIGIN])
    ctr.identities.create_client("b", public=True, redirect_uris=[SPA_ORIGIN + "/cb"])
    item = ctr.table("clients").get({"client_id": "origin " + SPA_ORIGIN})
    assert item["clients"] == {"a", "b"}


def test_clients_registering_one_origin_at_once_are_all_listed_under_it(ctr):
    """Twelve clients registered at once with the same web origin: every one is in the
    origin's item (ADD to a set in each client's own transaction, never a lost update)."""
    atomic = atomic_container(ctr)
    ids = iter(f"spa-{i}" for i in range(12))
    lock = threading.Lock()

    def register() -> str:
        with lock:
            client_id = next(ids)
        atomic.identities.create_client(client_id, public=True, grant_types=["authorization_code"],
                                        scopes=["openid"],
                                        redirect_uris=[f"https://shared.example/{client_id}"])
        return client_id

    results = run_together(12, register)
    assert [kind for kind, _ in results] == ["ok"] * 12
    item = ctr.clients.get_item("origin https://shared.example")
    assert item is not None and set(item["clients"]) == {f"spa-{i}" for i in range(12)}
    assert ctr.clients.origin_registered("https://shared.example")
