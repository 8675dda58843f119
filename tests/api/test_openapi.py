"""The JSON API's edge: pydantic models, 422 field errors and the OpenAPI document
(SPEC §2, §9; issue "one shape")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.helpers import bearer, body, seed, tokens
from tests.conftest import TEST_SCRYPT_LOG_N

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def alice(client: Any, ctr: Any) -> str:
    seed(ctr)
    return str(tokens(client)["access_token"])


def post(client: Any, path: str, token: str, payload: Any, method: str = "post") -> Any:
    return getattr(client.http, method)(path, body=json.dumps(payload).encode(),
                                        headers={**JSON, **bearer(token)})


# -- 422: one entry per field error (RFC 9457 §3) ---------------------------------------

def test_a_bad_pat_body_lists_each_field_error(client, alice):
    r = post(client, "/v1/tokens", alice, {"description": "", "expires_at": "15/02/2027",
                                           "scopes": "api:read", "color": "red", "size": 1})
    assert r.status_code == 422 and r.headers["Content-Type"] == "application/problem+json"
    b = body(r)
    assert (b["type"], b["title"], b["status"]) == ("about:blank", "Unprocessable Content", 422)
    assert sorted(b["errors"], key=lambda e: e["pointer"]) == [
        {"detail": "Unknown field: color", "pointer": "#/color"},
        {"detail": "description must not be empty", "pointer": "#/description"},
        {"detail": "expires_at must be a date as YYYY-MM-DD, or null", "pointer": "#/expires_at"},
        {"detail": "scopes must be a list of strings", "pointer": "#/scopes"},
        {"detail": "Unknown field: size", "pointer": "#/size"},
    ]
    assert b["detail"].startswith("Unknown fields: color, size; ")
    assert "description must not be empty" in b["detail"]


def test_a_rule_of_the_whole_body_points_at_the_body(client, alice):
    r = post(client, "/v1/tokens", alice, {"description": "d", "scopes": ["api:read"],
                                           "api_set": "ide-plugins"})
    assert body(r)["errors"] == [{"detail": "Give either scopes or api_set, not both",
                                  "pointer": "#"}]


def test_a_missing_member_is_named(client, alice):
    r = post(client, "/v1/tokens/remove", alice, {})
    assert body(r)["errors"] == [{"detail": "ids is required: a list of token ids",
                                  "pointer": "#/ids"}]


def test_pointers_escape_member_names(client, alice):
    """RFC 6901 §3 and §6: ``~`` and ``/`` escaped, then percent-encoded as a fragment."""
    r = post(client, "/v1/tokens", alice, {"description": "d", "api_set": "ide-plugins",
                                           "a/b~c d": 1})
    assert body(r)["errors"] == [{"detail": "Unknown field: a/b~c d", "pointer": "#/a~1b~0c%20d"}]


def test_bad_query_parameters_are_named_as_parameters(client, alice):
    r = client.http.get("/v1/tokens?state=gone&sort=asc", headers=bearer(alice))
    assert r.status_code == 422
    b = body(r)
    assert sorted(b["errors"], key=lambda e: e["parameter"]) == [
        {"detail": "Unknown query parameter: sort", "parameter": "sort"},
        {"detail": "state must be one of: active, expired, revoked", "parameter": "state"},
    ]
    assert b["detail"] == "Unknown query parameters: sort; state must be one of: active, " \
                          "expired, revoked"


def test_a_rule_of_the_service_is_one_error_of_the_request(client, alice):
    """Rules that need the stage or the owner (known scopes) are checked by the service:
    their 422 has the same shape, one entry without a place."""
    r = post(client, "/v1/tokens", alice, {"description": "d", "scopes": ["nope"]})
    b = body(r)
    assert r.status_code == 422 and b["errors"] == [{"detail": "Unknown scopes: nope"}]
    assert b["detail"] == "Unknown scopes: nope"


def test_a_type_is_never_coerced(client, alice):
    r = post(client, "/v1/tokens", alice, {"description": "d", "api_set": 1})
    assert body(r)["errors"] == [{"detail": "api_set must be the name of an API set "
                                            "(GET /v1/scopes)", "pointer": "#/api_set"}]


# -- SPEC §9: pydantic stays off the cold path ------------------------------------------

COLD_PATH = """
import json, sys
import chalicelib   # first, as app.py imports it before anything imports botocore
from moto import mock_aws
from chalice.test import Client
from chalicelib import container
from chalicelib.clock import FakeClock
from chalicelib.config import Settings
from chalicelib.storage.schema import create_tables
from tests.api.helpers import CLI, RS, RS_SECRET, basic, bearer, form, refresh, seed, tokens

with mock_aws():
    settings = Settings(issuer="https://tessera.test", table_prefix="test-",
                        keys_secret_name="test/signing-keys", scrypt_log_n=TEST_SCRYPT_LOG_N)
    c = container.Container(settings, FakeClock())
    create_tables(c.dynamodb(), settings.table_prefix)
    seed(c)
    container.use(c)
    import app
    with Client(app.app) as client:
        grant = tokens(client)
        statuses = [
            client.http.get("/v1/me", headers=bearer(grant["access_token"])).status_code,
            refresh(client, grant["refresh_token"]).status_code,
            form(client, "/oauth/introspect", headers=basic(RS, RS_SECRET),
                 token=grant["access_token"]).status_code,
            client.http.get("/.well-known/jwks.json").status_code,
        ]
print(json.dumps({"statuses": statuses,
                  "loaded": sorted(m for m in sys.modules
                                   if m.split(".")[0] == "pydantic"
                                   or m in ("chalicelib.api_models", "chalicelib.openapi",
                                            "cryptography.x509.base"))}))
"""


def test_the_token_endpoint_jwt_checks_and_introspection_never_import_pydantic():
    """A fresh interpreter imports the app, signs in, calls /v1/me, refreshes and
    introspects: neither pydantic nor the models nor the OpenAPI document is loaded,
    nor ``cryptography.x509`` (deferred by ``chalicelib/__init__.py``)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("AWS_ENDPOINT_URL", None)
    script = COLD_PATH.replace("TEST_SCRYPT_LOG_N", str(TEST_SCRYPT_LOG_N))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"statuses": [200, 200, 200, 200], "loaded": []}


# -- the OpenAPI document -------------------------------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def served(client: Any) -> dict[str, Any]:
    r = client.http.get("/openapi.json")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    return dict(body(r))


def test_the_served_document_is_valid_openapi_3_1(client):
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV31SpecValidator

    doc = served(client)
    assert doc["openapi"] == "3.1.0"
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert doc["servers"] == [{"url": "https://tessera.test"}]


def test_every_v1_route_is_documented_and_nothing_else(client):
    from app import app

    # A CORS preflight (OPTIONS) is the browser's, not an operation of the API.
    routes = {(path, method.lower()) for path, methods in app.routes.items()
              if path.startswith("/v1/") for method in methods if method != "OPTIONS"}
    documented = {(path, method) for path, item in served(client)["paths"].items()
                  for method in item}
    assert documented == routes


def test_every_documented_operation_has_its_schemas_and_security(client):
    doc = served(client)
    schemes = set(doc["components"]["securitySchemes"])
    assert {"bearerJWT", "pat", "basic"} <= schemes
    assert doc["components"]["securitySchemes"]["bearerJWT"]["bearerFormat"] == "JWT"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ok = [s for s in op["responses"] if s.startswith("2")]
            # One success, or (SPEC §11's TOTP confirmation) one with content and a 204.
            assert len(ok) == 1 or (sorted(ok) == ["200", "204"] and "content" not in
                                    op["responses"]["204"]), (method, path)
            # The catalog, and a password reset (SPEC §11: asked by someone who cannot
            # sign in), take no credential.
            if path not in ("/v1/scopes", "/v1/password-reset"):
                assert op["security"] and {"401", "503"} <= set(op["responses"]), (method, path)
                assert {name for req in op["security"] for name in req} <= schemes
            if "requestBody" in op:
                assert "422" in op["responses"]
                assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    problem = doc["components"]["responses"]["UnprocessableContent"]["content"]
    assert problem["application/problem+json"]["schema"]["$ref"].endswith("/ValidationProblem")


def test_the_committed_document_is_current():
    """Regenerate with ``python -m chalicelib.openapi > docs/openapi.json``."""
    from chalicelib import openapi

    committed = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert committed == openapi.render(openapi.document()), \
        "docs/openapi.json is stale: run python -m chalicelib.openapi > docs/openapi.json"


def test_the_served_document_is_the_committed_one_with_its_server(client):
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    doc = served(client)
    doc.pop("servers")
    assert doc == committed


# -- every rule of shape is in the document (issue 22) ---------------------------------

def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker

    return Draft202012Validator({**schema, "components": doc["components"]},
                                format_checker=FormatChecker())


def _body_schema(doc: dict[str, Any], path: str, method: str) -> Any:
    return _validator(doc, doc["paths"][path][method]["requestBody"]["content"]
                      ["application/json"]["schema"])


def test_the_document_refuses_scopes_and_api_set_together(client):
    doc = served(client)
    create = _body_schema(doc, "/v1/tokens", "post")
    edit = _body_schema(doc, "/v1/tokens/{pat_id}", "patch")
    both = {"description": "d", "scopes": ["api:read"], "api_set": "ide-plugins"}
    assert not create.is_valid(both) and not edit.is_valid(both)
    assert not create.is_valid({"description": "d"})            # neither
    assert not edit.is_valid({"api_set": None})                  # null is no choice
    assert not edit.is_valid({})                                 # nothing to change
    assert create.is_valid({"description": "d", "api_set": "ide-plugins"})
    assert create.is_valid({"description": "d", "scopes": ["api:read"], "api_set": None})
    assert edit.is_valid({"scopes": ["api:read"]}) and edit.is_valid({"expires_at": None})
    assert not create.is_valid({"description": "d", "scopes": ["nope"]})   # the stage's catalog
    assert not create.is_valid({"description": "   ", "api_set": "ide-plugins"})


def test_the_document_states_the_time_filters_and_permission_grammar(client):
    doc = served(client)
    params = {p["name"]: p["schema"] for p in doc["paths"]["/v1/tokens"]["get"]["parameters"]}
    created_before = _validator(doc, params["created_before"])
    assert created_before.is_valid("2027-02-15") and created_before.is_valid("1796396000")
    for bad in ("2027-13-45", "2027-02-30", "٢٠٢٧", "1e9", "2027-2-15"):
        assert not created_before.is_valid(bad), bad
    policy = _body_schema(doc, "/v1/roles/{name}/policies", "post")
    for good in ("*", "data:get@urn:tessera:data:alice.*", "data:*@urn:*", "*:get@urn:a:b"):
        assert policy.is_valid({"permission": good}), good
    for bad in ("data@urn:a:b", "data:get@urn:a", "a*b:c@urn:a:b", "data:get@arn:a:b", "0" * 90):
        assert not policy.is_valid({"permission": bad}), bad


def test_time_filters_refuse_digits_of_other_scripts(client, alice):
    """``str.isdigit`` takes '²'; ``int`` does not: a 422, never a 500."""
    r = client.http.get("/v1/tokens?created_before=%C2%B2", headers=bearer(alice))
    assert r.status_code == 422


def test_links_lead_from_a_created_pat_or_role_to_its_sub_resources(client):
    doc = served(client)
    ops = {op["operationId"] for item in doc["paths"].values() for op in item.values()}

    def links(path: str, method: str, status: str) -> dict[str, Any]:
        found = doc["paths"][path][method]["responses"][status]["links"]
        assert {link["operationId"] for link in found.values()} <= ops
        return {name: link["parameters"] for name, link in found.items()}

    pat = links("/v1/tokens", "post", "201")
    assert {"GetToken", "EditToken", "RemoveToken", "RegenerateToken", "CopyToken"} <= set(pat)
    assert pat["GetToken"] == {"pat_id": "$response.body#/id"}
    role = links("/v1/roles", "post", "201")
    assert {"AddPolicy", "ListPolicies", "CreateKey", "ListKeys", "AddTrust", "ListTrust"} <= set(role)
    assert role["AddPolicy"] == {"name": "$response.body#/name"}
    assert links("/v1/roles/{name}/keys", "post", "201")["RevokeKey"] == {
        "name": "$request.path.name", "key_id": "$response.body#/id"}


def test_every_operation_documents_a_misdirected_host(client):
    doc = served(client)
    assert all("421" in op["responses"] for item in doc["paths"].values() for op in item.values())
    r = client.http.get("/v1/me", headers={"Host": "elsewhere.example"})
    assert r.status_code == 421


def test_a_role_name_with_a_final_newline_is_refused_as_the_document_says(client, alice):
    """The document's pattern ends in ``$``, the end of the text in ECMA-262 (JSON
    Schema's regex dialect); so the server refuses ``alice.ci\\n`` too (Python's ``$``
    alone also matches before a final newline)."""
    r = post(client, "/v1/roles", alice, {"name": "alice.ci\n"})
    assert r.status_code == 422 and body(r)["errors"][0]["pointer"] == "#/name"


def test_the_document_states_the_trust_rules(client):
    doc = served(client)
    trust = _body_schema(doc, "/v1/roles/{name}/trust", "post")
    base = {"audience": "tessera", "subject": "repo:acme/app:*"}
    for good in ("https://token.actions.githubusercontent.com", "https://gitlab.com:8443/x",
                 "http://127.0.0.1:9000"):
        assert trust.is_valid({**base, "issuer": good}), good
    for bad in ("http://example.com", "https://u@gitlab.com", "https://gitlab.com:0",
                "https://gitlab.com?x=1", "https://:443"):
        assert not trust.is_valid({**base, "issuer": bad}), bad
    issuer = "https://token.actions.githubusercontent.com"
    assert trust.is_valid({**base, "issuer": issuer, "claims": None})
    assert trust.is_valid({**base, "issuer": issuer, "claims": {"ref": "main"}})
    for claims in ({"sub": "x"}, {"ref": "a\tb"}, {"a\u0001": "x"}, {"": "x"}):
        assert not trust.is_valid({**base, "issuer": issuer, "claims": claims}), claims


@pytest.mark.parametrize(("issuer", "subject", "valid"), [
    ("https://token.actions.githubusercontent.com", "repo:acme/app:*", True),
    ("https://token.actions.githubusercontent.com", "r*", False),
    ("https://token.actions.githubusercontent.com", "0000000000*", False),
    ("https://token.actions.githubusercontent.com/acme", "repo:acme/app", True),
    ("https://gitlab.com", "project_path:group/app:*", True),
    ("https://gitlab.com", "repo:acme/app:*", False),
    ("https://ci.example", "repo:*", False),
    ("https://ci.example", "organization:acme:*", True),
    ("https://ci.example", "org:*", False),
    ("https://ci.example", "an-exact-subject", True),
])
def test_the_document_states_the_trust_subject_rule_as_the_server_does(client, issuer,
                                                                subject, valid):
    trust = _body_schema(served(client), "/v1/roles/{name}/trust", "post")
    body_ = {"issuer": issuer, "audience": "tessera", "subject": subject}
    assert trust.is_valid(body_) is valid
    from chalicelib.errors import Unprocessable
    from chalicelib.services import roles

    try:
        roles.check_trusted_subject(issuer, roles.check_subject(subject))
        accepted = True
    except Unprocessable:
        accepted = False
    assert accepted is valid
