"""Request and response models of the JSON API (``/v1/*``, SPEC §2, §5, §6), pydantic v2.

A route parses its body or query into one of these at the edge and hands the
service typed values; ``chalicelib.openapi`` builds the OpenAPI 3.1 document from
the same classes. These models are the commands: the API routes and the ``/tokens``
dashboard validate into them once, and the services take the validated model.
A rule of form (types, lengths, dates) is written once, in ``services.pats`` or
``services.roles``, and runs here as a field validator (``_service_rule``) with
the message the API has always used; unknown members are pydantic's. Rules that
need the stage's settings or the caller (known scopes, the expiry window, the
owner's rights) stay in the services.

SPEC §9: only the routes that parse JSON import this module, lazily, so the token
endpoint, JWT verification and introspection never import pydantic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, model_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from chalicelib.errors import Unprocessable
from chalicelib.services import pats, roles, security_log

# ASCII digits only: ``\d`` would also take other scripts' digits.
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# Control characters are refused in a description (C0 and DEL).
NO_CONTROL_PATTERN = r"^[^\u0000-\u001f\u007f]*$"
# A description as given: white space around it is dropped (``str.strip``: the
# characters below, spelled out because JSON Schema's ``\s`` is another set), then
# 1 to MAX_DESCRIPTION characters, none a control character (C0 or DEL).
_SPACE = ("\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029"
          "\u202f\u205f\u3000")
_INNER = r"[^\u0000-\u001f\u007f]"
_EDGE = rf"[^\u0000-\u001f\u007f{_SPACE}]"
TEXT_PATTERN = (rf"^[{_SPACE}]*(?:{_EDGE}|{_EDGE}{_INNER}{{0,{pats.MAX_DESCRIPTION - 2}}}{_EDGE})"
                rf"[{_SPACE}]*$")


def invalid(message: str) -> PydanticCustomError:
    """A field error whose message is ``message`` as written (no pydantic prefix)."""
    return PydanticCustomError("tessera", "{reason}", {"reason": message})


def _service_rule(check: Callable[[Any], Any]) -> BeforeValidator:
    """A rule of ``services.pats`` or ``services.roles`` as a field validator: written
    once, the same message either way."""
    def run(value: Any) -> Any:
        try:
            return check(value)
        except Unprocessable as exc:
            raise invalid(exc.description) from exc
    return BeforeValidator(run)


def _check(check: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """A rule of the whole body, from the service: its message as a pydantic error."""
    try:
        check(*args, **kwargs)
    except Unprocessable as exc:
        raise invalid(exc.description) from exc


def _password(value: object) -> object:
    if value is not None and not isinstance(value, str):
        raise invalid("password must be a string")
    return value


Description = Annotated[str, Field(
    min_length=1, pattern=TEXT_PATTERN,
    description=f"What the token is for: at most {pats.MAX_DESCRIPTION} characters, no control "
                "character, once the surrounding white space is dropped."),
    _service_rule(pats.parse_description)]
# May be omitted, never null: the schema shows a string only.
NewDescription = Annotated[
    Annotated[str, Field(min_length=1, pattern=TEXT_PATTERN)] | SkipJsonSchema[None],
    _service_rule(pats.parse_description),
    Field(description="A new description; omitted: unchanged.")]
ExpiryDate = Annotated[str, Field(pattern=DATE_PATTERN, json_schema_extra={"format": "date"})]
Expiry = Annotated[ExpiryDate | None, _service_rule(pats.check_expiry), Field(
    description="The token stops at 00:00 UTC that day; null for no expiry where the stage "
                "allows it. Omitted on create: 30 days (or the stage's maximum).")]
Scopes = Annotated[Annotated[list[str], Field(min_length=1)] | None,
                   _service_rule(pats.check_scopes), Field(
    description="Explicit scopes (GET /v1/scopes); give either scopes or api_set.")]
ApiSet = Annotated[str | None, _service_rule(pats.check_api_set), Field(
    description="A named API set of the stage's catalog (GET /v1/scopes).")]
Password = Annotated[str | None, BeforeValidator(_password), Field(
    description="The owner's password: needed for a change unless the sign-in is younger "
                "than ten minutes (SPEC §5).", json_schema_extra={"writeOnly": True})]
OneTimeCode = Annotated[str | None, Field(
    max_length=64, description="With the password, for an owner with a second factor: a code "
                               "from the authenticator app or a recovery code (SPEC §11).",
    json_schema_extra={"writeOnly": True})]


def _no_null_defaults(schema: dict[str, Any]) -> None:
    """An omitted member is absent, not null: the schema shows no ``default: null``
    (a member that may not be null would otherwise document one)."""
    for prop in schema.get("properties", {}).values():
        if prop.get("default", ...) is None:
            del prop["default"]


class Body(BaseModel):
    """A JSON request body: every member known, no coercion of types."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_no_null_defaults)

    def given(self, *exclude: str) -> dict[str, Any]:
        """The members the client sent (absent differs from null), less ``exclude``."""
        return {name: getattr(self, name) for name in self.model_fields_set
                if name not in exclude}


class Confirmed(Body):
    """A change: it may carry the owner's password (SPEC §5)."""

    password: Password = None
    otp: OneTimeCode = None


# The body rules of the scope choice, in JSON Schema (issue 22: the document states
# every rule of shape the server enforces).
_GIVES_SCOPES = {"required": ["scopes"], "properties": {"scopes": {"type": "array"}}}
_GIVES_API_SET = {"required": ["api_set"], "properties": {"api_set": {"type": "string"}}}
NOT_BOTH: dict[str, Any] = {"not": {"allOf": [_GIVES_SCOPES, _GIVES_API_SET]}}


def _body_rules(*rules: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra`` of a body: no null defaults, then rules of the whole body."""
    def extra(schema: dict[str, Any]) -> None:
        _no_null_defaults(schema)
        schema["allOf"] = [*schema.get("allOf", []), *rules]
    return extra


class PatCreate(Confirmed):
    """``POST /v1/tokens``: a new PAT."""

    model_config = ConfigDict(json_schema_extra=_body_rules(
        NOT_BOTH, {"anyOf": [_GIVES_SCOPES, _GIVES_API_SET]}))

    description: Description
    expires_at: Expiry = None
    scopes: Scopes = None
    api_set: ApiSet = None

    @model_validator(mode="after")
    def _scopes_xor_api_set(self) -> PatCreate:
        _check(pats.check_scope_choice, self.scopes, self.api_set, required=True)
        return self


class PatEdit(Confirmed):
    """``PATCH /v1/tokens/{pat_id}``: the settings to change, at least one."""

    model_config = ConfigDict(json_schema_extra=_body_rules(
        NOT_BOTH,
        {"anyOf": [{"required": [name]} for name in
                   ("description", "expires_at", "scopes", "api_set")]},
        # New scopes are a list or an API set: null for both (or one alone) is no choice.
        {"anyOf": [{"not": {"anyOf": [{"required": ["scopes"]}, {"required": ["api_set"]}]}},
                   _GIVES_SCOPES, _GIVES_API_SET]}))

    description: NewDescription = None
    expires_at: Expiry = None
    scopes: Scopes = None
    api_set: ApiSet = None

    @model_validator(mode="after")
    def _something_to_change(self) -> PatEdit:
        # New scopes (either member given, even as null) are a list or an API set.
        _check(pats.check_scope_choice, self.scopes, self.api_set,
               required=bool({"scopes", "api_set"} & self.model_fields_set))
        if not self.given("password"):
            raise invalid("Nothing to change: give description, expires_at, scopes or api_set")
        return self


class PatCopy(Confirmed):
    """``POST /v1/tokens/{pat_id}/copy``: optional overrides of the copy's settings."""

    description: NewDescription = None
    expires_at: Expiry = None


class PatRemoveMany(Confirmed):
    """``POST /v1/tokens/remove``: ids of the caller's tokens (another user's are not found)."""

    ids: Annotated[list[str], _service_rule(pats.check_ids), Field(
        min_length=1, max_length=pats.MAX_BULK, description="a list of token ids")]


class PatConfirm(Confirmed):
    """The body of ``DELETE /v1/tokens/{pat_id}`` and ``.../regenerate``: empty, or the
    owner's password."""


def _time_filter(value: object, info: ValidationInfo) -> object:
    name = info.field_name or "filter"
    if value is None:
        return None
    try:
        if isinstance(value, str):
            pats.parse_time_filter(name, value)
            return value
    except Unprocessable as exc:
        raise invalid(exc.description) from exc
    raise invalid(f"{name} must be epoch seconds or a date as YYYY-MM-DD")


TimeFilter = Annotated[
    Annotated[str, Field(json_schema_extra={"anyOf": [
        {"pattern": r"^[0-9]{1,12}$"},
        {"pattern": DATE_PATTERN, "format": "date"}]})] | SkipJsonSchema[None],
    BeforeValidator(_time_filter), Field(description="Epoch seconds, or a date (00:00 UTC that day).")]


class PatFilters(Body):
    """The query of ``GET /v1/tokens``. A never-used token matches ``last_used_before``
    and not ``last_used_after``."""

    state: Annotated[Literal["active", "expired", "revoked"] | SkipJsonSchema[None],
                     _service_rule(pats.check_state)] = None
    created_before: TimeFilter = None
    created_after: TimeFilter = None
    last_used_before: TimeFilter = None
    last_used_after: TimeFilter = None


class EventFilters(Body):
    """The query of ``GET /v1/events`` (SPEC §11). The values are checked by the
    security log itself: a kind it does not know, a cursor it did not give or a
    limit out of range is a 400."""

    kind: Annotated[str | SkipJsonSchema[None], Field(
        description="Only events of this kind.",
        json_schema_extra={"enum": list(security_log.KINDS)})] = None
    cursor: Annotated[str | SkipJsonSchema[None], Field(
        description="The `next_cursor` of the previous page.",
        json_schema_extra={"pattern": "^[0-9A-Za-z]{16}$"})] = None
    limit: Annotated[str | SkipJsonSchema[None], Field(
        description=f"Events per page, 1 to {security_log.MAX_LIMIT} (default "
                    f"{security_log.DEFAULT_LIMIT}).",
        json_schema_extra={"pattern": "^(?:[1-9][0-9]?|100)$"})] = None


# -- roles (SPEC §6) ------------------------------------------------------------------

RoleName = Annotated[str, Field(
    min_length=3, max_length=128,
    pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$",
    description="`<your username>.<name>`: the name of lowercase letters, digits and dashes "
                "(e.g. `alice.ci`)."), _service_rule(roles.check_name)]
OptionalDescription = Annotated[
    Annotated[str, Field(min_length=1, pattern=TEXT_PATTERN)] | SkipJsonSchema[None],
    _service_rule(pats.parse_description),
    Field(description="What it is for; omitted: empty.")]
# SPEC §6's permission grammar (chalicelib.security.permissions.parse) as a pattern:
# ``*``, or ``service:verb@urn:<namespace>:<name>`` with ``*`` as a whole segment or
# at the very end of the last one.
_ACTION_SEGMENT = r"[A-Za-z0-9._-]"
_RESOURCE_SEGMENT = r"[A-Za-z0-9._~!$&'()+,;=/?#@%-]"
_ACTION = (rf"(?:(?:\*|{_ACTION_SEGMENT}+):{_ACTION_SEGMENT}+"
           rf"|(?:(?:\*|{_ACTION_SEGMENT}+):)?{_ACTION_SEGMENT}*\*)")
_RESOURCE = (rf"(?:\*|urn(?::(?:\*|{_RESOURCE_SEGMENT}+))+:{_RESOURCE_SEGMENT}+"
             rf"|urn(?::(?:\*|{_RESOURCE_SEGMENT}+))*:{_RESOURCE_SEGMENT}*\*)")
PERMISSION_PATTERN = rf"^(?:\*|{_ACTION}@{_RESOURCE})$"

PermissionText = Annotated[str, Field(
    min_length=1, max_length=512, pattern=PERMISSION_PATTERN,
    description="`action@resource` (SPEC §6), e.g. `data:get@urn:tessera:data:alice.*`; "
                "it must be covered by one of your own permissions."),
    _service_rule(roles.check_permission)]
# An issuer URL as roles.check_issuer takes it: https with a host (no user
# information, a port from 1 to 65535), or http on a loopback host; no query, no
# fragment, no white space or control character.
_PORT = (r"(?::(?:0*(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]"
         r"|6553[0-5]))?)?")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_LOOPBACK = rf"(?:[Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]|127(?:\.{_OCTET}){{3}}|\[::1\])"
ISSUER_PATTERN = (rf"^(?:[Hh][Tt][Tt][Pp][Ss]://[^\s\u0000-\u001f\u007f/?#@:\[\]]+"
                  rf"|[Hh][Tt][Tt][Pp]://{_LOOPBACK}){_PORT}(?:/[^\s\u0000-\u001f\u007f?#]*)?$")

Issuer = Annotated[str, Field(
    min_length=1, max_length=roles.MAX_ISSUER, pattern=ISSUER_PATTERN,
    description="The OIDC issuer of the CI's job tokens, e.g. "
                "`https://token.actions.githubusercontent.com`: https to a public host (an "
                "address only in its canonical spelling), or a loopback host where the stage "
                "allows it (TESSERA_FEDERATION_ALLOW_HTTP).",
    json_schema_extra={"format": "uri"}),
    _service_rule(lambda v: roles.check_issuer(v, allow_http=True))]
Audience = Annotated[str, Field(
    min_length=1, max_length=roles.MAX_AUDIENCE, pattern=NO_CONTROL_PATTERN,
    description="The `aud` the job token must carry."), _service_rule(roles.check_audience)]
Subject = Annotated[str, Field(
    min_length=1, max_length=roles.MAX_SUBJECT, pattern=r"^[^*\u0000-\u001f\u007f]+\*?$",
    description="The job token's `sub`, exactly, or a prefix ending with `*` (e.g. "
                "`repo:acme/app:*`); GitHub's start with `repo:OWNER/`, GitLab's with "
                "`project_path:GROUP/`."), _service_rule(roles.check_subject)]
Claims = Annotated[
    Annotated[dict[str, Annotated[str, Field(min_length=1, max_length=roles.MAX_CLAIM_VALUE,
                                             pattern=NO_CONTROL_PATTERN)]],
              Field(max_length=roles.MAX_CLAIMS, json_schema_extra={"propertyNames": {
                  "minLength": 1, "maxLength": roles.MAX_CLAIM_NAME, "pattern": NO_CONTROL_PATTERN,
                  "not": {"enum": sorted(roles.RESERVED_CLAIMS)}}})] | None,
    _service_rule(lambda v: None if v is None else roles.check_claims(v)),
    Field(description="Further claims of the job token that must equal these strings.")]


class RoleCreate(Body):
    """``POST /v1/roles``: a new role of the caller."""

    name: RoleName
    description: OptionalDescription = None


class PolicyAdd(Confirmed):
    """``POST /v1/roles/{name}/policies``, with the owner's password unless the
    sign-in is recent (SPEC §5, §6)."""

    permission: PermissionText


class RoleKeyCreate(Confirmed):
    """``POST /v1/roles/{name}/keys``: empty, a description, and the owner's password
    unless the sign-in is recent (SPEC §5, §6)."""

    description: OptionalDescription = None


def _subject_rules() -> tuple[dict[str, Any], ...]:
    """``roles.check_trusted_subject`` as JSON Schema: a known CI's subjects name their
    owner (chosen by the issuer, else by the subject's own kind); any other wildcard
    subject names a kind and an owner before its ``*``."""
    def subject(pattern: str) -> dict[str, Any]:
        return {"required": ["subject"], "properties": {"subject": {"pattern": pattern}}}

    def issuer(pattern: str) -> dict[str, Any]:
        return {"required": ["issuer"], "properties": {"issuer": {"pattern": pattern}}}

    github = issuer("^" + re.escape(roles.GITHUB_ISSUER) + "(?:/.*)?$")
    gitlab = issuer("^https://gitlab\\.com/*$")
    rules: list[dict[str, Any]] = []
    known = []
    for (kind, _), by_issuer in zip(roles.PROVIDER_PREFIXES.values(), (github, gitlab), strict=True):
        owner = subject("^" + re.escape(kind) + "[^*/:\\s]+/")
        by_subject = subject("^" + re.escape(kind))
        rules += [{"if": by_issuer, "then": owner}, {"if": by_subject, "then": owner}]
        known += [by_issuer, by_subject]
    prefix = roles.WILDCARD_PREFIX.pattern
    rules.append({"if": {"allOf": [{"not": {"anyOf": known}}, subject("\\*$")]},
                  "then": {"properties": {"subject": {
                      "minLength": roles.MIN_SUBJECT_PREFIX + 1, "pattern": prefix}}}})
    return tuple(rules)


class TrustAdd(Confirmed):
    """``POST /v1/roles/{name}/trust``: which CI job tokens may act as the role, with
    the owner's password unless the sign-in is recent (SPEC §5, §6)."""

    model_config = ConfigDict(json_schema_extra=_body_rules(*_subject_rules()))

    issuer: Issuer
    audience: Audience
    subject: Subject
    claims: Claims = None


# --------------------------------------------------------------------------
# responses
# --------------------------------------------------------------------------

class View(BaseModel):
    """A response body: exactly these members."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_null_defaults)


class ScopeCatalog(View):
    scopes: list[str]
    api_sets: dict[str, list[str]]


class PatView(View):
    """A PAT as the API shows it: never the secret, only its prefix and last four."""

    id: str
    description: str
    prefix: str
    last_four: str
    hint: str
    created_at: int
    expires_at: ExpiryDate | None
    expires_at_epoch: int | None
    last_used_at: int | None
    scopes: list[str]
    api_set: str | None
    state: Literal["active", "expired", "revoked"]
    regenerated_at: int | None
    revoked_at: int | None
    created_from: dict[str, str]


class IssuedPat(PatView):
    """A PAT with its secret: the only answer that carries it (SPEC §4)."""

    token: str
    note: str


class PatList(View):
    tokens: list[PatView]


class RemovedPats(View):
    removed: list[str]
    not_found: list[str]


class PolicyView(View):
    id: str
    permission: str


class RoleView(View):
    name: str
    description: str
    created_at: int
    policies: list[PolicyView]


class RoleList(View):
    roles: list[RoleView]


class PolicyList(View):
    policies: list[PolicyView]


class RoleKeyView(View):
    """A role key as listed: never its secret."""

    id: str = Field(description="The key's access id, `tka_…`.")
    description: str
    created_at: int
    last_used_at: int | None = Field(description="Kept to within ten minutes.")


class IssuedRoleKey(View):
    """A new role key: the only answer that carries its secret (SPEC §4)."""

    id: str
    access: str = Field(description="The public half, `tka_…` (the same as `id`).")
    secret: str = Field(description="The secret half, `tsk_…`: shown only here.")
    token: str = Field(description="`access:secret`, for `Authorization: Bearer` or as an "
                                   "HTTP Basic password.")
    description: str
    created_at: int


class RoleKeyList(View):
    keys: list[RoleKeyView]


class TrustView(View):
    id: str
    issuer: str
    audience: str
    subject: str
    claims: dict[str, str]
    created_at: int


class TrustList(View):
    trust: list[TrustView]


class Profile(View):
    """``/v1/me``: whoami. For a role principal (a role key or role token, SPEC §6)
    ``id`` is ``role:<name>``, the names and email are empty, and ``role`` and
    ``owner_id`` name the role and its owner's user id."""

    model_config = ConfigDict(extra="allow")

    id: str
    email: str
    firstname: str
    lastname: str
    active: bool
    # Present for a role principal only.
    role: str | SkipJsonSchema[None] = None
    owner_id: str | SkipJsonSchema[None] = None


class TokenInfo(View):
    """``/v1/token-info``: the presented token; session, PAT or role members by kind."""

    model_config = ConfigDict(extra="allow")

    type: str
    issued_at: int
    expires_at: int | None
    expires_in: int | None
    scopes: list[str]
    client_id: str | None
    # Present for the access token of a session only.
    session_id: str | SkipJsonSchema[None] = None
    session_issued_at: int | SkipJsonSchema[None] = None
    idle_deadline: int | SkipJsonSchema[None] = None
    session_expires_at: int | SkipJsonSchema[None] = None
    # Present for a role key (``type`` role_key) or role token (``role_token``) only:
    # the role, its owner's user id, and the permissions in force now.
    role: str | SkipJsonSchema[None] = None
    owner: str | SkipJsonSchema[None] = None
    permissions: list[str] | SkipJsonSchema[None] = None


class SessionView(View):
    id: str
    client_id: str
    created_at: int
    last_used_at: int
    idle_deadline: int
    expires_at: int
    device: dict[str, str]
    current: bool


class SessionList(View):
    sessions: list[SessionView]


class ConsentView(View):
    """An app the caller allowed (SPEC §2): which scopes, since when."""

    client_id: str
    client_name: str
    scopes: list[str]
    created_at: int
    updated_at: int


class ConsentList(View):
    consents: list[ConsentView]


class EventView(View):
    """One entry of the caller's security log (SPEC §11): never a secret."""

    id: str
    kind: str
    time: int
    ip: str
    user_agent: str
    detail: dict[str, Any]


class EventList(View):
    events: list[EventView]
    next_cursor: str | None = Field(description="The cursor of the next (older) page; null "
                                                "at the end.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="always about:blank: the status says it all")
    title: str
    status: int
    detail: str


class FieldError(BaseModel):
    """One field error (RFC 9457 §3's ``errors`` example): ``pointer`` is a JSON
    Pointer (RFC 6901) into the body as a URI fragment, ``parameter`` a query
    parameter; neither when the error concerns the request as a whole."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_null_defaults)

    detail: str
    pointer: str | SkipJsonSchema[None] = None
    parameter: str | SkipJsonSchema[None] = None


class ValidationProblem(Problem):
    """A 422: the problem plus an ``errors`` extension member (RFC 9457 §3.2)."""

    errors: list[FieldError] = Field(min_length=1)


# --------------------------------------------------------------------------
# second factors (SPEC §11)
# --------------------------------------------------------------------------

class MfaChange(Confirmed):
    """A change of second factors: the owner's password (and, with a factor enrolled,
    a code: ``otp``) unless the sign-in is recent (and used its second factor)."""


class TotpConfirm(Body):
    """``POST /v1/mfa/totp/confirm``: a code of the pending secret, which enrols it."""

    code: Annotated[str, Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$",
                               description="The 6-digit code the authenticator app shows.")]


class TotpState(View):
    enrolled: bool


# --------------------------------------------------------------------------
# passkeys (SPEC §11): /v1/mfa/passkeys
# --------------------------------------------------------------------------

def _passkey_name(value: Any) -> Any:
    from chalicelib.services import passkeys

    return passkeys.check_name(value)


class PasskeyOptionsAsk(Confirmed):
    """The start of adding a passkey: only the owner's password, where needed."""


# A passkey's name: as a PAT's description, 1 to 64 characters once trimmed.
NAME_PATTERN = (rf"^[{_SPACE}]*(?:{_EDGE}|{_EDGE}{_INNER}{{0,62}}{_EDGE})[{_SPACE}]*$")
B64URL_PATTERN = r"^[A-Za-z0-9_-]+$"
Base64url = Annotated[str, Field(pattern=B64URL_PATTERN, min_length=2, max_length=8000)]


class AttestationResponse(BaseModel):
    """WebAuthn L2 §5.2.1 ``AuthenticatorAttestationResponse`` as JSON (binary members
    base64url); other members a browser adds (WebAuthn L3 ``toJSON``) are ignored."""

    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra=_no_null_defaults)

    clientDataJSON: Base64url
    attestationObject: Base64url
    transports: Annotated[list[Annotated[str, Field(max_length=32)]], Field(max_length=8)] \
        | SkipJsonSchema[None] = None


class RegistrationCredential(BaseModel):
    """The ``PublicKeyCredential`` of ``navigator.credentials.create()`` as JSON."""

    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra=_no_null_defaults)

    id: Base64url
    rawId: Base64url
    type: Literal["public-key"]
    response: AttestationResponse


class PasskeyAdd(Confirmed):
    name: Annotated[Annotated[str, Field(min_length=1, pattern=NAME_PATTERN)],
                    _service_rule(_passkey_name), Field(
        description="What the owner calls it: 1 to 64 characters, no control character, once "
                    "the surrounding white space is dropped.")]
    credential: RegistrationCredential = Field(
        description="What `navigator.credentials.create()` gave for the options of "
                    "`POST /v1/mfa/passkeys/options`, as JSON (WebAuthn L2 §5.1).")


class PasskeyRemove(Confirmed):
    """Removing a passkey: only the owner's password, where needed."""


class CreationOptions(View):
    """WebAuthn L2 §5.4 ``PublicKeyCredentialCreationOptions``, binary members base64url."""

    model_config = ConfigDict(extra="allow")

    rp: dict[str, str]
    user: dict[str, str]
    challenge: str
    pubKeyCredParams: list[dict[str, Any]]   # WebAuthn's member names
    timeout: int
    excludeCredentials: list[dict[str, Any]]
    authenticatorSelection: dict[str, Any]
    attestation: str


class PasskeyView(View):
    """A passkey or security key of the caller (never its key material)."""

    id: str
    name: str
    created_at: int
    last_used_at: int | None


class AddedPasskey(PasskeyView):
    """A passkey just added; with the first second factor, ten recovery codes, shown
    this once (as the authenticator app's confirmation gives them)."""

    recovery_codes: list[str] | SkipJsonSchema[None] = None


class RecoveryState(View):
    remaining: int


class MfaStatus(View):
    """``GET /v1/mfa`` (SPEC §11): what the caller enrolled."""

    totp: TotpState
    passkeys: list[PasskeyView]
    recovery_codes: RecoveryState


class TotpEnrolment(View):
    """A new TOTP secret, pending until a code confirms it; shown this once."""

    secret: str
    otpauth_uri: str


class RecoveryCodes(View):
    """Ten single-use recovery codes, shown this once."""

    recovery_codes: list[str]


# --------------------------------------------------------------------------
# accounts by mail (SPEC §11)
# --------------------------------------------------------------------------

Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$",
                             description="An email address.")]


class InvitationCreate(Body):
    """``POST /v1/invitations``: mail a link to create an account."""

    email: Email
    scopes: Annotated[list[str] | None, Field(
        description="The scopes the account may hold (at most the inviter's); omitted: the "
                    "inviter's.")] = None


class InvitationView(View):
    id: str
    email: str
    expires_at: int


class PasswordResetRequest(Body):
    """``POST /v1/password-reset``: mail a reset link to the account using this address."""

    email: Email


class Accepted(View):
    status: str
