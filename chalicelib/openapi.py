"""The OpenAPI 3.1 document of the JSON API (``/v1/*``, SPEC §2), built from the
pydantic models that validate its requests (``chalicelib.api_models``).

Served at ``GET /openapi.json`` (with the stage's issuer as its server) and
committed as ``docs/openapi.json``; regenerate the committed copy with

    python -m chalicelib.openapi > docs/openapi.json

SPEC §9: only the ``/openapi.json`` route imports this module.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib import api_models as m
from chalicelib.config import DEFAULT_API_SETS, DEFAULT_SCOPES

SCHEMAS = "#/components/schemas/"
TOKENS, ROLES, ACCOUNT, CATALOG = "Personal access tokens", "Roles", "Account", "Catalog"
MFA = "Second factors"

# Every problem status of the JSON API, as RFC 9110 names it.
PROBLEMS = {
    400: ("BadRequest", "The request is malformed: not JSON, not an object, a repeated query "
                        "parameter, or a token presented twice."),
    401: ("Unauthorized", "No valid credential. The `WWW-Authenticate` challenges name the "
                          "schemes (RFC 9110 §11.6.1, RFC 6750 §3)."),
    403: ("Forbidden", "The credential lacks the scope, or the change is not confirmed: give "
                       "the owner's `password` or sign in again (SPEC §5); for roles also a "
                       "name of another user or a policy the owner does not hold (SPEC §6)."),
    404: ("NotFound", "No such resource of the caller (another user's is not found either)."),
    409: ("Conflict", "The change conflicts with the resource's state (cap reached, revoked, "
                      "expired, changed meanwhile)."),
    413: ("PayloadTooLarge", "The body exceeds 16 KiB."),
    415: ("UnsupportedMediaType", "The body is not `application/json`."),
    421: ("MisdirectedRequest", "The `Host` is not this stage's issuer (RFC 9110 §15.5.20): "
                                "nothing ran."),
    422: ("UnprocessableContent", "The body or query breaks a rule: `errors` lists each field "
                                  "error (RFC 9457 §3)."),
    503: ("ServiceUnavailable", "Storage is throttled or unreachable: retry after "
                                "`Retry-After` seconds."),
}

SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "bearerJWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                  "description": "An RFC 9068 access token from `/oauth/token`."},
    "pat": {"type": "http", "scheme": "bearer", "bearerFormat": "PAT",
            "description": "A personal access token (`tsp_…`, SPEC §4)."},
    "roleKey": {"type": "http", "scheme": "bearer", "bearerFormat": "role key",
                "description": "A role key `tka_…:tsk_…` (SPEC §6): the caller is the role."},
    "basic": {"type": "http", "scheme": "basic",
              "description": "Any user name, and a PAT, role key (`tka_…:tsk_…`) or access "
                             "token as the password; or a role key's access id `tka_…` as the "
                             "user name and its secret `tsk_…` as the password (RFC 7617)."},
    "patQuery": {"type": "apiKey", "in": "query", "name": "session",
                 "description": "A PAT in the `session` query parameter, where the stage "
                                "allows it; never together with an Authorization header."},
}
ANY_CREDENTIAL: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
# OpenAPI links of an answer: the operation ids it leads to, with the values of their
# parameters (runtime expressions, OpenAPI 3.1 §4.8.20.4).
Links = tuple[tuple[tuple[str, ...], dict[str, str]], ...]


@dataclass(frozen=True)
class Operation:
    """One route of ``/v1/*``: what it takes, what it answers, which problems it may give."""

    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    ok: int = 200
    response: type[BaseModel] | None = None     # None: no content
    body: type[BaseModel] | None = None
    body_optional: bool = False
    query: type[BaseModel] | None = None
    authenticated: bool = True
    problems: tuple[int, ...] = ()
    description: str = ""
    # OpenAPI links of the success answer: operation ids reached with the path
    # parameters of this request or the members of its answer.
    links: Links = ()
    # Another success without content the operation may answer (204).
    also_empty: int | None = None

    def statuses(self) -> list[int]:
        found = set(self.problems) | {421}   # any operation, before it runs
        if self.authenticated:
            found |= {400, 401, 503}
        if self.body is not None:
            found |= {400, 413, 415, 422}
        if self.query is not None:
            found |= {400, 422}
        if "{" in self.path:
            found.add(404)
        return sorted(found)


CONFIRMED = "a confirmed change (the owner's `password` in the body, or a sign-in younger than " \
            "ten minutes; a PAT or a delegated token is no sign-in)"
MFA_CONFIRMED = ("a confirmed change (the owner's `password` and, with a second factor enrolled, "
                 "a code in `otp`; or a sign-in younger than ten minutes that used the second "
                 "factor)")
MANAGE = f"Needs `tokens:manage` and {CONFIRMED}. A role key or role token never holds it: 403."
READ = "Needs `tokens:read` or `tokens:manage`; a role key or role token holds neither: 403."
SESSIONS = "Needs `sessions:manage`; a role key or role token never holds it: 403."
PASSKEYS = f"Needs `sessions:manage` and {CONFIRMED}."
ROLE = "Needs `roles:manage`. Another user's role is not found (404), like a missing one."
ROLE_KEY = f"{ROLE} Also {CONFIRMED}. The secret is in this answer only."
CLIENT_TOKEN = "A client credentials token (RFC 6749 §4.4) names no user: 403."
ROLE_PRINCIPAL = ("A role key or role token (SPEC §6) answers for its role: `id` is `role:<name>`, with "
        "`role` and `owner_id`.")

# Where a created PAT or role leads (OpenAPI 3.1 §4.8.20, Link Object).
PAT_LINKS = ((("get_token", "edit_token", "remove_token", "regenerate_token", "copy_token"),
              {"pat_id": "$response.body#/id"}),)
ROLE_LINKS = ((("get_role", "delete_role", "add_policy", "list_policies", "create_key",
                "list_keys", "add_trust", "list_trust"), {"name": "$response.body#/name"}),)
IN_ROLE = "$request.path.name"


def _first(member: str, links: Links) -> Links:
    """``links`` from the first item of a list answer's ``member``."""
    return tuple((targets, {name: value.replace("#/", f"#/{member}/0/")
                            for name, value in params.items()}) for targets, params in links)


OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/v1/scopes", "scopes", CATALOG, "The stage's scopes and API sets",
              response=m.ScopeCatalog, authenticated=False),
    Operation("post", "/v1/tokens", "generate", TOKENS, "Generate a PAT; its secret is in this "
              "answer only", ok=201, response=m.IssuedPat, body=m.PatCreate,
              problems=(403, 409), description=MANAGE, links=PAT_LINKS),
    Operation("get", "/v1/tokens", "list_tokens", TOKENS, "The caller's PATs, newest first",
              response=m.PatList, query=m.PatFilters, problems=(403,), description=READ,
              links=_first("tokens", PAT_LINKS)),
    Operation("post", "/v1/tokens/remove", "remove_many", TOKENS, "Remove many PATs",
              response=m.RemovedPats, body=m.PatRemoveMany, problems=(403,),
              description=MANAGE),
    Operation("get", "/v1/tokens/{pat_id}", "get_token", TOKENS, "One PAT",
              response=m.PatView, problems=(403,), description=READ),
    Operation("patch", "/v1/tokens/{pat_id}", "edit_token", TOKENS,
              "Edit a PAT's description, expiry or scopes", response=m.PatView,
              body=m.PatEdit, problems=(403, 409), description=MANAGE),
    Operation("delete", "/v1/tokens/{pat_id}", "remove_token", TOKENS, "Remove a PAT", ok=204,
              body=m.PatConfirm, body_optional=True, problems=(403,), description=MANAGE),
    Operation("post", "/v1/tokens/{pat_id}/regenerate", "regenerate_token", TOKENS,
              "A new secret for a PAT; the old one stops at once", response=m.IssuedPat,
              body=m.PatConfirm, body_optional=True, problems=(403, 409),
              description=MANAGE, links=PAT_LINKS),
    Operation("post", "/v1/tokens/{pat_id}/copy", "copy_token", TOKENS,
              "A new PAT with the settings of another", ok=201, response=m.IssuedPat,
              body=m.PatCopy, body_optional=True, problems=(403, 409), description=MANAGE,
              links=PAT_LINKS),
    Operation("post", "/v1/roles", "create_role", ROLES, "Create a role of the caller",
              ok=201, response=m.RoleView, body=m.RoleCreate, problems=(403, 409),
              description=f"{ROLE} The name starts with the caller's username (403 otherwise); "
                          "a name in use, or the cap of roles, is a 409.", links=ROLE_LINKS),
    Operation("get", "/v1/roles", "list_roles", ROLES, "The caller's roles",
              response=m.RoleList, problems=(403,), description=ROLE,
              links=_first("roles", ROLE_LINKS)),
    Operation("get", "/v1/roles/{name}", "get_role", ROLES, "One role with its policies",
              response=m.RoleView, problems=(403,), description=ROLE),
    Operation("delete", "/v1/roles/{name}", "delete_role", ROLES,
              "Delete a role: its keys and tokens stop working", ok=204, problems=(403,),
              description=ROLE),
    Operation("post", "/v1/roles/{name}/policies", "add_policy", ROLES, "Add a policy",
              ok=201, response=m.PolicyView, body=m.PolicyAdd, problems=(403, 409),
              description=f"{ROLE} Also {CONFIRMED}. The permission must be covered by one "
                          "of the caller's own (403 otherwise). Adding one the role has changes "
                          "nothing.",
              links=((("remove_policy",), {"name": IN_ROLE, "policy_id": "$response.body#/id"}),)),
    Operation("get", "/v1/roles/{name}/policies", "list_policies", ROLES,
              "The role's policies", response=m.PolicyList, problems=(403,), description=ROLE,
              links=((("remove_policy",), {"name": IN_ROLE,
                                           "policy_id": "$response.body#/policies/0/id"}),)),
    Operation("delete", "/v1/roles/{name}/policies/{policy_id}", "remove_policy", ROLES,
              "Remove a policy", ok=204, problems=(403,), description=ROLE),
    Operation("post", "/v1/roles/{name}/keys", "create_key", ROLES,
              "Create a role key; its secret is in this answer only", ok=201,
              response=m.IssuedRoleKey, body=m.RoleKeyCreate, body_optional=True,
              problems=(403, 409), description=ROLE_KEY,
              links=((("revoke_key",), {"name": IN_ROLE, "key_id": "$response.body#/id"}),)),
    Operation("get", "/v1/roles/{name}/keys", "list_keys", ROLES,
              "The role's keys (never their secrets)", response=m.RoleKeyList, problems=(403,),
              description=ROLE,
              links=((("revoke_key",), {"name": IN_ROLE, "key_id": "$response.body#/keys/0/id"}),)),
    Operation("delete", "/v1/roles/{name}/keys/{key_id}", "revoke_key", ROLES,
              "Revoke a role key: it stops working at once", ok=204, problems=(403,),
              description=ROLE),
    Operation("post", "/v1/roles/{name}/trust", "add_trust", ROLES,
              "Trust a CI's job tokens (federation)", ok=201, response=m.TrustView,
              body=m.TrustAdd, problems=(403, 409),
              description=f"{ROLE} Also {CONFIRMED}. Adding one the role has changes "
                          "nothing.",
              links=((("remove_trust",), {"name": IN_ROLE, "trust_id": "$response.body#/id"}),)),
    Operation("get", "/v1/roles/{name}/trust", "list_trust", ROLES,
              "The role's trust policies", response=m.TrustList, problems=(403,),
              description=ROLE,
              links=((("remove_trust",), {"name": IN_ROLE,
                                          "trust_id": "$response.body#/trust/0/id"}),)),
    Operation("delete", "/v1/roles/{name}/trust/{trust_id}", "remove_trust", ROLES,
              "Remove a trust policy", ok=204, problems=(403,), description=ROLE),
    Operation("get", "/v1/me", "me", ACCOUNT, "Who am I", response=m.Profile,
              problems=(403,),
              description=f"Any valid credential of a user or a role. {ROLE_PRINCIPAL} {CLIENT_TOKEN}"),
    Operation("get", "/v1/token-info", "token_info", ACCOUNT, "About the presented token",
              response=m.TokenInfo, problems=(403,),
              description="Any valid credential of a user or a role; for a role key "
                          "(`type` role_key) or role token (role_token) also `role`, `owner` "
                          f"and `permissions`. {CLIENT_TOKEN}"),
    Operation("post", "/v1/logout", "logout", ACCOUNT, "End the caller's session", ok=204,
              problems=(403,),
              description="The access token of a session, whatever its scopes; a credential "
                          f"without a session (a PAT, a role key or role token) is a 400. {CLIENT_TOKEN}"),
    Operation("get", "/v1/sessions", "list_sessions", ACCOUNT, "The caller's live sessions",
              response=m.SessionList, problems=(403,), description=SESSIONS),
    Operation("delete", "/v1/sessions/{session_id}", "end_session", ACCOUNT, "End a session",
              ok=204, problems=(403,), description=SESSIONS),
    Operation("get", "/v1/events", "list_events", ACCOUNT,
              "The caller's security log, newest first", response=m.EventList,
              query=m.EventFilters, problems=(403,),
              description=f"{SESSIONS} Only the caller's own events; a kind, cursor or limit "
                          "the log does not take is a 400. Follow `next_cursor` for older "
                          "events (a page filtered by kind may come back short with a "
                          "cursor). Events older than the stage's retention "
                          "(`TESSERA_EVENTS_TTL_DAYS`, default 90) are gone."),
    Operation("get", "/v1/consents", "list_consents", ACCOUNT,
              "The apps the caller consented to", response=m.ConsentList, problems=(403,),
              description=SESSIONS),
    Operation("delete", "/v1/consents/{client_id}", "withdraw_consent", ACCOUNT,
              "Withdraw a consent: that app's sessions of the caller end at once", ok=204,
              problems=(403, 404), description=SESSIONS),
    Operation("post", "/v1/invitations", "invite", ACCOUNT,
              "Invite someone: a single-use link to create an account, valid 7 days", ok=201,
              response=m.InvitationView, body=m.InvitationCreate, problems=(403, 409),
              description="Needs `users:invite`. The scopes given are at most the inviter's "
                          "(403 otherwise); an address an account uses is a 409."),
    Operation("post", "/v1/password-reset", "password_reset", ACCOUNT,
              "Mail a password reset link", ok=202, response=m.Accepted,
              body=m.PasswordResetRequest, authenticated=False, problems=(400,),
              description="The same answer whatever the address: whether an account uses it "
                          "is never said. The link works once, for 30 minutes."),
    Operation("get", "/v1/mfa", "mfa_status", MFA, "The caller's second factors",
              response=m.MfaStatus, problems=(403,), description=SESSIONS),
    Operation("post", "/v1/mfa/totp", "begin_totp", MFA,
              "Start enrolling an authenticator app: a secret, pending until confirmed",
              ok=201, response=m.TotpEnrolment, body=m.MfaChange, body_optional=True,
              problems=(403, 409), description=f"{SESSIONS} Also {MFA_CONFIRMED}."),
    Operation("post", "/v1/mfa/totp/confirm", "confirm_totp", MFA,
              "Confirm the pending secret with a code: the authenticator app is enrolled",
              response=m.RecoveryCodes, body=m.TotpConfirm, problems=(403, 409), also_empty=204,
              description=f"{SESSIONS} The first second factor answers 200 with ten recovery "
                          "codes (shown this once); a later one 204."),
    Operation("delete", "/v1/mfa/totp", "remove_totp", MFA, "Remove the authenticator app",
              ok=204, body=m.MfaChange, body_optional=True, problems=(403, 409),
              description=f"{SESSIONS} Also {MFA_CONFIRMED}."),
    Operation("post", "/v1/mfa/recovery-codes", "regenerate_recovery_codes", MFA,
              "Ten new recovery codes; the old ones stop working", ok=201,
              response=m.RecoveryCodes, body=m.MfaChange, body_optional=True,
              problems=(403, 409), description=f"{SESSIONS} Also {MFA_CONFIRMED}."),
    Operation("post", "/v1/mfa/passkeys/options", "passkey_options", ACCOUNT,
              "WebAuthn creation options for a new passkey", response=m.CreationOptions,
              body=m.PasskeyOptionsAsk, body_optional=True, problems=(403, 409),
              description=f"{PASSKEYS} Give them to `navigator.credentials.create()`; the "
                          "challenge is good for five minutes, once."),
    Operation("post", "/v1/mfa/passkeys", "add_passkey", ACCOUNT,
              "Add a passkey or security key", ok=201, response=m.AddedPasskey,
              body=m.PasskeyAdd, problems=(403, 409), description=PASSKEYS,
              links=((("remove_passkey",), {"passkey_id": "$response.body#/id"}),)),
    Operation("delete", "/v1/mfa/passkeys/{passkey_id}", "remove_passkey", ACCOUNT,
              "Remove a passkey", ok=204, body=m.PasskeyRemove, body_optional=True,
              problems=(403,), description=PASSKEYS),
)

PATH_PARAMETERS = {
    "client_id": "The app's client id.",
    "pat_id": "The PAT's id (16 base62 characters).",
    "session_id": "The session's id (16 base62 characters).",
    "name": "The role's name, `<username>.<name>`.",
    "policy_id": "The policy's id (16 base62 characters).",
    "key_id": "The role key's access id, `tka_…`.",
    "trust_id": "The trust policy's id (16 base62 characters).",
    "passkey_id": "The passkey's id (16 base62 characters).",
}


def _schemas() -> tuple[dict[str, str], dict[str, Any]]:
    """Component schemas of every model, requests as validated, answers as serialized."""
    requests: set[type[BaseModel]] = set()
    answers: set[type[BaseModel]] = {m.Problem, m.ValidationProblem}
    for op in OPERATIONS:
        requests |= {model for model in (op.body, op.query) if model is not None}
        answers |= {op.response} if op.response is not None else set()
    validation: JsonSchemaMode = "validation"
    serialization: JsonSchemaMode = "serialization"
    pairs = [(model, validation) for model in sorted(requests, key=lambda x: x.__name__)]
    pairs += [(model, serialization) for model in sorted(answers, key=lambda x: x.__name__)]
    keys, top = models_json_schema(pairs, ref_template=SCHEMAS + "{model}")
    refs = {model.__name__: keys[(model, mode)]["$ref"] for model, mode in pairs}
    return refs, top.get("$defs", {})


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    out = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        prop.pop("title", None)
        text = prop.pop("description", "")
        out.append({"name": name, "in": "query", "required": False, "schema": prop,
                    **({"description": text} if text else {})})
    return out


def _responses(op: Operation, refs: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if op.response is None:
        out[str(op.ok)] = {"description": "Done; no content."}
    else:
        out[str(op.ok)] = {"description": "OK", "content": {
            "application/json": {"schema": {"$ref": refs[op.response.__name__]}}}}
    links = {_link_name(target): {"operationId": target, "parameters": params}
             for targets, params in op.links for target in targets}
    if links:
        out[str(op.ok)]["links"] = links
    if op.also_empty is not None:
        out[str(op.also_empty)] = {"description": "Done; no content."}
    for status in op.statuses():
        out[str(status)] = {"$ref": f"#/components/responses/{PROBLEMS[status][0]}"}
    return out


# Request bodies the server accepts from alice of the demo seed (the renderer shows
# them; schemathesis sends them first).
BODY_EXAMPLES: dict[str, dict[str, Any]] = {
    "generate": {"description": "CI deploys", "api_set": "ide-plugins"},
    "edit_token": {"description": "CI deploys (staging)"},
    "remove_many": {"ids": ["4Vq8cUj0SLWc1YkX"]},
    "copy_token": {"description": "CI deploys (copy)"},
    "create_role": {"name": "alice.ci", "description": "CI"},
    "add_policy": {"permission": "data:get@urn:tessera:data:alice.*"},
    "create_key": {"description": "deploy job"},
    "add_trust": {"issuer": "https://token.actions.githubusercontent.com", "audience": "tessera",
                  "subject": "repo:acme/app:*"},
}


def _link_name(operation_id: str) -> str:
    return "".join(part.capitalize() for part in operation_id.split("_"))


def _operation(op: Operation, refs: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "tags": [op.tag],
                           "summary": op.summary}
    if op.description:
        out["description"] = op.description
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"},
               "description": text} for name, text in PATH_PARAMETERS.items()
              if "{" + name + "}" in op.path]
    if op.query is not None:
        params += _query_parameters(op.query)
    if params:
        out["parameters"] = params
    if op.body is not None:
        media: dict[str, Any] = {"schema": {"$ref": refs[op.body.__name__]}}
        if op.operation_id in BODY_EXAMPLES:
            media["example"] = BODY_EXAMPLES[op.operation_id]
        out["requestBody"] = {"required": not op.body_optional,
                              "content": {"application/json": media}}
    out["responses"] = _responses(op, refs)
    out["security"] = ANY_CREDENTIAL if op.authenticated else []
    return out


def _problem_responses(refs: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, (name, text) in PROBLEMS.items():
        model = m.ValidationProblem if status == 422 else m.Problem
        response: dict[str, Any] = {"description": text, "content": {
            "application/problem+json": {"schema": {"$ref": refs[model.__name__]}}}}
        if status == 401:
            response["headers"] = {"WWW-Authenticate": {
                "description": "One challenge per field: Bearer and Basic.",
                "schema": {"type": "string"}}}
        if status == 503:
            response["headers"] = {"Retry-After": {"description": "Seconds to wait.",
                                                   "schema": {"type": "string"}}}
        out[name] = response
    return out


def _with_catalog(schemas: dict[str, Any], scopes: tuple[str, ...],
                  api_sets: tuple[str, ...]) -> None:
    """The stage's scope catalog (GET /v1/scopes) as the enums of a PAT's ``scopes``
    and ``api_set``: the server refuses any other name (422)."""
    for name in ("PatCreate", "PatEdit"):
        props = schemas[name]["properties"]
        props["scopes"]["anyOf"][0]["items"]["enum"] = list(scopes)
        props["api_set"]["anyOf"][0]["enum"] = list(api_sets)


@functools.cache
def document(scopes: tuple[str, ...] = DEFAULT_SCOPES,
             api_sets: tuple[str, ...] = tuple(sorted(DEFAULT_API_SETS))) -> dict[str, Any]:
    """The document without ``servers``, for a stage's scope catalog (the committed
    copy: the default catalog)."""
    refs, schemas = _schemas()
    _with_catalog(schemas, scopes, api_sets)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tessera JSON API", "version": "1",
                 "description": "Personal access tokens, roles and the caller's account "
                                "(SPEC §2, §5, §6). Errors are RFC 9457 problem JSON. The "
                                "OAuth 2 and OpenID Connect endpoints are described by "
                                "`/.well-known/openid-configuration`."},
        "tags": [{"name": TOKENS}, {"name": ROLES}, {"name": ACCOUNT}, {"name": CATALOG}],
        "paths": paths,
        "components": {"schemas": schemas, "responses": _problem_responses(refs),
                       "securitySchemes": SECURITY_SCHEMES},
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def served(issuer: str, scopes: tuple[str, ...] = DEFAULT_SCOPES,
           api_sets: tuple[str, ...] = tuple(sorted(DEFAULT_API_SETS))) -> str:
    """The document as ``GET /openapi.json`` serves it: the stage's issuer is its server,
    its scope catalog names the scopes and API sets a PAT may have."""
    return json.dumps({**document(scopes, api_sets), "servers": [{"url": issuer}]},
                      separators=(",", ":"), ensure_ascii=False)


if __name__ == "__main__":
    sys.stdout.write(render(document()))
