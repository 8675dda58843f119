"""Issue 12 "Done means", through the API: create ``alice.ci``, add a policy, create a
key; the key names the role on ``/v1/me`` and gets a 1 h JWT that verifies against
the JWKS; after ``DELETE`` of the key both fail exactly; deleting the role kills its
tokens; the key's listing shows its last use."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt

from tests.api.helpers import bearer, body, form, seed, tokens
from tests.api.test_token_endpoint_errors import assert_oauth_error

UNAUTHORIZED = {"type": "about:blank", "title": "Unauthorized", "status": 401,
                "detail": "Provided token is not valid"}
POLICY = "data:get@urn:tessera:data:alice.*"


def call(client: Any, method: str, path: str, token: str, payload: Any = None) -> Any:
    headers = bearer(token)
    data = None
    if payload is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(payload).encode()
    return client.http.request(method.upper(), path, headers=headers, body=data)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_a_key_made_through_the_roles_api_works_until_it_is_deleted(client, ctr, clock):
    seed(ctr)
    alice = tokens(client, scope="roles:manage")["access_token"]
    assert call(client, "post", "/v1/roles", alice, {"name": "alice.ci"}).status_code == 201
    assert call(client, "post", "/v1/roles/alice.ci/policies", alice,
                {"permission": POLICY}).status_code == 201
    made = call(client, "post", "/v1/roles/alice.ci/keys", alice, {"description": "ci"})
    assert made.status_code == 201, made.body
    key = body(made)
    owner = ctr.identities.find_user("alice").id

    # curl -u tka_…:tsk_… …/v1/me names the role
    me = client.http.get("/v1/me", headers=basic(key["access"], key["secret"]))
    assert me.status_code == 200, me.body
    assert body(me) == {"id": "role:alice.ci", "email": "", "firstname": "", "lastname": "",
                        "active": True, "role": "alice.ci", "owner_id": owner}
    listed = body(call(client, "get", "/v1/roles/alice.ci/keys", alice))["keys"]
    assert listed[0]["last_used_at"] == clock.now()

    # client_credentials with that key: a 1 h JWT that verifies against the JWKS
    answer = body(form(client, "/oauth/token", headers=basic(key["access"], key["secret"]),
                       grant_type="client_credentials"))
    assert answer["expires_in"] == 3600 and "refresh_token" not in answer
    jwks = body(client.http.get("/.well-known/jwks.json"))
    header = jwt.get_unverified_header(answer["access_token"])
    public = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(answer["access_token"], jwt.PyJWK(public).key, algorithms=[public["alg"]],
                        audience=ctr.settings.issuer, issuer=ctr.settings.issuer,
                        options={"verify_exp": False, "verify_iat": False})
    assert (claims["sub"], claims["role"], claims["owner"]) == ("role:alice.ci", "alice.ci", owner)
    assert claims["permissions"] == [POLICY] and claims["scope"] == "data:get"
    assert claims["exp"] - claims["iat"] == 3600

    # after DELETE of the key both fail: the exact 401 problem JSON, invalid_client
    assert call(client, "delete", f"/v1/roles/alice.ci/keys/{key['id']}", alice).status_code == 204
    gone = client.http.get("/v1/me", headers=basic(key["access"], key["secret"]))
    assert gone.status_code == 401 and body(gone) == UNAUTHORIZED
    assert_oauth_error(form(client, "/oauth/token", headers=basic(key["access"], key["secret"]),
                            grant_type="client_credentials"), 401, "invalid_client")

    # a second key's token dies with the role
    other = body(call(client, "post", "/v1/roles/alice.ci/keys", alice, {}))
    token = body(form(client, "/oauth/token", headers=basic(other["access"], other["secret"]),
                      grant_type="client_credentials"))["access_token"]
    assert client.http.get("/v1/me", headers=bearer(token)).status_code == 200
    assert call(client, "delete", "/v1/roles/alice.ci", alice).status_code == 204
    dead = client.http.get("/v1/me", headers=bearer(token))
    assert dead.status_code == 401 and body(dead) == UNAUTHORIZED


def test_a_role_key_cannot_manage_roles(client, ctr):
    seed(ctr)
    alice = tokens(client, scope="roles:manage")["access_token"]
    call(client, "post", "/v1/roles", alice, {"name": "alice.ci"})
    key = body(call(client, "post", "/v1/roles/alice.ci/keys", alice, {}))
    for method, path in (("get", "/v1/roles"), ("post", "/v1/roles/alice.ci/keys"),
                         ("delete", "/v1/roles/alice.ci")):
        r = call(client, method, path, key["token"], {} if method == "post" else None)
        assert r.status_code == 403, (path, r.body)
    assert call(client, "get", "/v1/roles/alice.ci", alice).status_code == 200
