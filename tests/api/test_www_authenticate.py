"""Every 401 carries a WWW-Authenticate challenge (issue 10 item 3).

RFC 9110 §11.6.1: a 401 "MUST send a WWW-Authenticate header field containing
at least one challenge"; RFC 6750 §3.1: ``error="invalid_token"`` only when a
token was presented. Where a token may come as Bearer or as the Basic password,
both schemes are offered, one header field each.
"""

from __future__ import annotations

import base64
import email.message
import io
import json
import urllib.error
import urllib.request
import urllib.response
from typing import Any

import pytest

from chalicelib.security.opaque import PAT
from tests.api.helpers import RS, basic, bearer, body, form, seed, tokens

PROBLEM_401 = {"type": "about:blank", "title": "Unauthorized", "status": 401,
               "detail": "Provided token is not valid"}
BASIC = 'Basic realm="tessera", charset="UTF-8"'
NO_ERROR = ['Bearer realm="tessera"', BASIC]
INVALID_TOKEN = ['Bearer realm="tessera", error="invalid_token"', BASIC]
V1_ROUTES = [("get", "/v1/me"), ("get", "/v1/token-info"), ("post", "/v1/logout"),
             ("get", "/v1/sessions"), ("delete", "/v1/sessions/0123456789abcdef"),
             ("get", "/v1/tokens"), ("get", "/v1/tokens/0123456789abcdef")]


@pytest.fixture(autouse=True)
def _seeded(ctr: Any) -> None:
    seed(ctr)


def challenges(r: Any) -> list[str]:
    value = r.headers["WWW-Authenticate"]
    return list(value) if isinstance(value, list) else [value]


def basic_password(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"any:{token}".encode()).decode()}


@pytest.mark.parametrize("method, path", V1_ROUTES)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "},
                                     {"Authorization": "Digest abc"}])
def test_v1_401_without_a_token_offers_both_schemes_without_an_error(client, method, path,
                                                                     headers):
    r = getattr(client.http, method)(path, headers=headers)
    assert r.status_code == 401 and body(r) == PROBLEM_401
    assert challenges(r) == NO_ERROR


@pytest.mark.parametrize("method, path", V1_ROUTES)
@pytest.mark.parametrize("headers", [
    bearer("not-a-token"), bearer("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
    bearer(PAT.prefix + "0" * 40), basic_password("not-a-token"), {"Authorization": "Basic %%%"},
])
def test_v1_401_with_a_bad_token_says_invalid_token(client, method, path, headers):
    r = getattr(client.http, method)(path, headers=headers)
    assert r.status_code == 401 and body(r) == PROBLEM_401
    assert challenges(r) == INVALID_TOKEN


def test_a_bad_pat_in_the_session_query_parameter_says_invalid_token(client):
    r = client.http.get("/v1/me?session=" + PAT.prefix + "0" * 40)
    assert r.status_code == 401 and challenges(r) == INVALID_TOKEN


def test_an_ended_sessions_access_token_says_invalid_token(client):
    t = tokens(client)
    assert client.http.post("/v1/logout", headers=bearer(t["access_token"])).status_code == 204
    r = client.http.get("/v1/me", headers=bearer(t["access_token"]))
    assert r.status_code == 401 and challenges(r) == INVALID_TOKEN


def test_userinfo_without_a_token_has_no_error_code(client):
    r = client.http.get("/oauth/userinfo")
    assert r.status_code == 401 and body(r)["error"] == "invalid_token"
    assert challenges(r) == NO_ERROR


def test_userinfo_with_a_bad_token_says_invalid_token(client):
    r = client.http.get("/oauth/userinfo", headers=bearer("nope"))
    assert r.status_code == 401 and challenges(r) == INVALID_TOKEN


def test_userinfo_insufficient_scope_names_the_scope(client):
    t = tokens(client, scope="profile")
    r = client.http.get("/oauth/userinfo", headers=bearer(t["access_token"]))
    assert r.status_code == 403
    assert challenges(r) == ['Bearer realm="tessera", error="insufficient_scope", scope="openid"']


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke",
                                  "/oauth/device_authorization"])
@pytest.mark.parametrize("auth", [basic(RS, "wrong"), basic("nobody", "x"),
                                  {"Authorization": "Basic !!!"}, {}])
def test_oauth_invalid_client_challenges_basic(client, path, auth):
    r = form(client, path, headers=auth, grant_type="password", username="alice",
             password="password4alice", token="t")
    assert r.status_code == 401 and body(r)["error"] == "invalid_client"
    assert challenges(r) == [BASIC]


class ChaliceHandler(urllib.request.BaseHandler):
    """Serves urllib's requests through the Chalice test client, so that urllib's
    own auth handlers run against the real responses."""

    handler_order = 100

    def __init__(self, client: Any) -> None:
        self.client = client

    def https_open(self, req: urllib.request.Request) -> Any:
        path = req.selector
        r = self.client.http.request(req.get_method(), path, headers=dict(req.header_items()),
                                     body=req.data or b"")
        headers = email.message.Message()
        for name, value in r.headers.items():
            for one in value if isinstance(value, list) else [value]:
                headers[name] = one
        answer = urllib.response.addinfourl(io.BytesIO(r.body), headers, req.full_url,
                                            r.status_code)
        answer.msg = ""   # the reason phrase urllib's error processor reads
        return answer


@pytest.mark.parametrize("kind", ["pat", "access_token"])
def test_pythons_basic_auth_handler_sends_the_token_after_the_challenge(client, kind):
    t = tokens(client)
    token = t["access_token"]
    if kind == "pat":
        payload = {"description": "ci", "expires_at": "2027-02-15", "scopes": ["profile"]}
        r = client.http.post("/v1/tokens", body=json.dumps(payload).encode(),
                             headers={"Content-Type": "application/json", **bearer(token)})
        token = body(r)["token"]
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, "https://tessera.test/", "any", token)
    opener = urllib.request.build_opener(ChaliceHandler(client),
                                         urllib.request.HTTPBasicAuthHandler(passwords))
    with opener.open("https://tessera.test/v1/me") as answer:
        assert answer.status == 200
        assert json.loads(answer.read())["email"] == "alice@example.com"



# -- UserInfo as OIDC Core §5.3.1 and RFC 6750 §2.2 allow: the token in a form body ----------

def test_userinfo_accepts_the_token_in_a_form_encoded_post_body(client):
    t = tokens(client, scope="openid email")
    r = form(client, "/oauth/userinfo", access_token=t["access_token"])
    assert r.status_code == 200 and body(r)["email"] == "alice@example.com"


def test_userinfo_with_a_bad_token_in_the_body_says_invalid_token_in_both_places(client):
    r = form(client, "/oauth/userinfo", access_token="nope")
    assert r.status_code == 401 and body(r)["error"] == "invalid_token"
    assert challenges(r) == INVALID_TOKEN


def test_userinfo_refuses_the_token_in_the_query_string(client):
    t = tokens(client, scope="openid")
    r = client.http.get(f"/oauth/userinfo?access_token={t['access_token']}")
    assert r.status_code == 400 and body(r)["error"] == "invalid_request"
    assert challenges(r) == ['Bearer realm="tessera", error="invalid_request"']


def test_userinfo_refuses_a_token_in_the_header_and_the_body_at_once(client):
    t = tokens(client, scope="openid")
    r = form(client, "/oauth/userinfo", headers=bearer(t["access_token"]),
             access_token=t["access_token"])
    assert r.status_code == 400 and body(r)["error"] == "invalid_request"
