"""Every answer of ``/v1/*`` is the one the OpenAPI document promises (SPEC §2).

Requests are drawn from the document itself: path, query and body values from
their JSON Schemas (``from_schema`` below: the keywords the models use), mixed
with bodies that pass and the seeded account's real ids, and sent to the app in
process. The oracle: the
status is one the operation documents, the content type is the documented one,
and the body matches the schema documented for that status.
"""

from __future__ import annotations

import collections
import json
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from chalicelib import openapi
from tests.fuzz.conftest import EXAMPLES
from tests.fuzz.strategies import FuzzRequest

DOC = openapi.document()
OPERATIONS = sorted((path, method) for path, item in DOC["paths"].items() for method in item)
STATUSES: collections.Counter[tuple[str, str, int]] = collections.Counter()

# Bodies that pass validation, so that the services' answers are reached too.
PASSING: dict[str, tuple[dict[str, Any], ...]] = {
    "generate": ({"description": "ci", "api_set": "ide-plugins"},
                 {"description": "ci", "scopes": ["api:read"], "expires_at": "2027-02-15"}),
    "edit_token": ({"description": "edited"}, {"api_set": "marketplace"}),
    "copy_token": ({}, {"description": "copy"}),
    "remove_many": ({"ids": ["Z" * 16]},),
    "regenerate_token": ({},),
    "remove_token": ({},),
    "create_role": ({"name": "alice.made"}, {"name": "alice.ci", "description": "CI"}),
    "add_policy": ({"permission": "data:get@urn:tessera:data:alice.x"},
                   {"permission": "data:get@urn:tessera:data:bob.x"}),
    "create_key": ({}, {"description": "ci"}),
    "add_trust": ({"issuer": "https://gitlab.com", "audience": "tessera",
                   "subject": "project_path:acme/app:*"},),
}


def resolve(node: Any) -> Any:
    """The schema with every local ``$ref`` replaced by its target (the models hold no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = DOC
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve(target)
        return {key: resolve(value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item) for item in node]
    return node


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a resolved JSON Schema: the keywords pydantic writes for our models.

    Values mostly fit the schema; the services' own rules (known scopes, the expiry
    window) still refuse most of them, which is what the oracle should see too.
    """
    if "anyOf" in schema:
        return st.one_of([from_schema(branch) for branch in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(-(2**40), 2**40)
    if kind == "string":
        if schema.get("format") == "date":
            return st.dates().map(lambda day: day.isoformat())
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda text: schema.get("minLength", 0) <= len(text) <= schema.get("maxLength", 10**6))
        return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 40))
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {"type": "string"})),
                        min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 5), 5))
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {name: from_schema(props[name]) for name in props if name in required},
            optional={name: from_schema(props[name]) for name in props if name not in required})
    return st.text(max_size=10)


VALIDATOR = Draft202012Validator({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                  "components": DOC["components"]})


def documented(path: str, method: str, status: int) -> dict[str, Any] | None:
    responses = DOC["paths"][path][method]["responses"]
    response = responses.get(str(status))
    return None if response is None else resolve(response)


@st.composite
def requests(draw: st.DrawFn, creds: Any) -> tuple[str, str, FuzzRequest]:
    path, method = draw(st.sampled_from(OPERATIONS))
    op = DOC["paths"][path][method]
    url = path
    query: dict[str, str] = {}
    for param in op.get("parameters", []):
        schema = resolve(param["schema"])
        if param["in"] == "path":
            real = {"pat_id": creds.pat_id, "session_id": creds.session_id,
                    **creds.extra}[param["name"]]
            value = draw(st.one_of(st.just(real), from_schema(schema)))
            url = url.replace("{" + param["name"] + "}", quote(value, safe="") or "x")
        elif draw(st.booleans()):
            query[param["name"]] = draw(from_schema(schema))
    if query:
        url += "?" + urlencode(query)
    headers = {"Authorization": f"Bearer {draw(st.sampled_from([creds.access_token] * 3 + [creds.pat]))}"}
    body = b""
    if "requestBody" in op:
        schema = resolve(op["requestBody"]["content"]["application/json"]["schema"])
        data = draw(st.one_of(st.sampled_from(PASSING.get(op["operationId"], ({},))),
                              from_schema(schema)))
        # A wrong password costs a confirmation; the recent sign-in confirms instead.
        if "password" in data and draw(st.integers(0, 9)):
            del data["password"]
        if data or op["requestBody"]["required"] or draw(st.booleans()):
            body = json.dumps(data).encode()
            headers["Content-Type"] = "application/json"
    return path, method, FuzzRequest(method.upper(), url, headers, body)


def breaches(path: str, method: str, status: int, headers: dict[str, str], raw: bytes) -> list[str]:
    response = documented(path, method, status)
    if response is None:
        return [f"status {status} is not documented for {method.upper()} {path}"]
    content = response.get("content")
    if not content:
        return [] if raw == b"" else [f"{status} has a body where none is documented"]
    ctype = headers.get("content-type", "").split(";", 1)[0].strip()
    if ctype not in content:
        return [f"{status} as {ctype!r}, documented {sorted(content)}"]
    found = [f"{status}: {error.message} at {'/'.join(map(str, error.absolute_path))}"
             for error in VALIDATOR.evolve(schema=content[ctype]["schema"] | {
                 "components": DOC["components"]}).iter_errors(json.loads(raw))]
    if status == 401 and "www-authenticate" not in headers:
        found.append("401 without WWW-Authenticate")
    return found


@seed(20261201)
@settings(max_examples=max(60, EXAMPLES // 2), deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(data=st.data())
def test_every_answer_matches_the_documented_schema(target: Any, data: st.DataObject) -> None:
    server, account = target
    path, method, request = data.draw(requests(account.creds))
    answer = server.send(request)
    STATUSES[(method, path, answer.status)] += 1
    found = breaches(path, method, answer.status, dict(answer.headers), answer.body)
    account.heal()
    assert not found, f"{found}\nrequest: {request.describe()}\nanswer: {answer.status} " \
                      f"{answer.body[:400]!r}"


def test_the_campaign_reaches_success_and_validation_answers() -> None:
    """Runs after the campaign: the answers it checked include successes and 422s, so
    the response schemas were exercised, not only the problems."""
    if not STATUSES:
        return   # the campaign was not selected
    statuses = {status for (_, _, status) in STATUSES}
    assert {200, 201, 204, 422} <= statuses, sorted(STATUSES.items())
