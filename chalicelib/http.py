"""Parsing requests and rendering responses: the only module routes lean on.

Errors are rendered here and nowhere else: RFC 6749 §5.2 JSON with
``Cache-Control: no-store`` on the OAuth endpoints, RFC 9457 problem JSON
elsewhere (a 422 lists each field error in an ``errors`` member), HTML for the
web pages. JSON bodies and queries of ``/v1/*`` are validated into pydantic
models (``chalicelib.api_models``); pydantic is imported on the first such
request only (SPEC §9). Chalice's own ``{"Code", "Message"}`` bodies
(405, 415, 500) are re-rendered by ``error_middleware`` (on the pages by
``web.errors``) so they never reach a client.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote, unquote_to_bytes

from chalice.app import Request, Response

from chalicelib import deadline
from chalicelib.audit import log
from chalicelib.config import Settings
from chalicelib.errors import (
    BASIC_CHALLENGE,
    BadRequest,
    InvalidRequest,
    NotFound,
    OAuthError,
    PayloadTooLarge,
    StorageUnavailable,
    TemporarilyUnavailable,
    TesseraError,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
    bearer_challenge,
)
from chalicelib.security.opaque import PAT, ROLE_KEY_SECRET, is_role_key_access_id

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM = "application/x-www-form-urlencoded"
PROBLEM = "application/problem+json"
MAX_BODY = 16 * 1024
RETRY_AFTER_SECONDS = "1"
# DynamoDB's limit for a sort key (a partition key may have 2,048): no path id is longer.
MAX_KEY_BYTES = 1024

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
M = TypeVar("M", bound="BaseModel")
Headers = dict[str, str | list[str]]


# --------------------------------------------------------------------------
# responses
# --------------------------------------------------------------------------

def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None,
                  *, no_store: bool = True) -> Response:
    out: Headers = {"Content-Type": "application/json"}
    if no_store:
        out.update(NO_STORE)
    out.update(headers or {})
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return Response(body=text, status_code=status, headers=out)


def problem_response(status: int, title: str, detail: str,
                     headers: Mapping[str, str | list[str]] | None = None,
                     extra: Mapping[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail}
    body.update(extra or {})
    out: Headers = {"Content-Type": PROBLEM, **NO_STORE, **(headers or {})}
    return Response(body=json.dumps(body), status_code=status, headers=out)


def _with_challenges(err: TesseraError, default: tuple[str, ...]) -> Headers:
    """The error's headers plus its ``WWW-Authenticate`` challenges, one field each.

    RFC 9110 §11.6.1: a 401 "MUST send a WWW-Authenticate header field containing at
    least one challenge"; a 401 raised without one gets ``default``.
    """
    headers: Headers = dict(err.headers)
    challenges = err.challenges or (default if err.status == 401 else ())
    if challenges and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = challenges[0] if len(challenges) == 1 else list(challenges)
    return headers


def oauth_error_response(err: OAuthError) -> Response:
    body: dict[str, Any] = {"error": err.error, "error_description": err.description}
    body.update(err.extra)
    headers: Headers = {"Content-Type": "application/json", **NO_STORE,
                        **_with_challenges(err, (BASIC_CHALLENGE,))}
    return Response(body=json.dumps(body), status_code=err.status, headers=headers)


def _log_error(err: TesseraError, path: str) -> None:
    # Internal detail goes to the log, never to the client; secrets go nowhere.
    log.info(json.dumps({"event": "request_error", "path": path, "status": err.status,
                         "error": type(err).__name__, "detail": err.detail}))


def render_oauth_error(err: TesseraError, path: str = "") -> Response:
    _log_error(err, path)
    if isinstance(err, StorageUnavailable):
        err = TemporarilyUnavailable("The service is temporarily unavailable, retry shortly",
                                     headers={"Retry-After": RETRY_AFTER_SECONDS})
    if not isinstance(err, OAuthError):
        err = InvalidRequest(err.description)
    return oauth_error_response(err)


def render_problem(err: TesseraError, path: str = "") -> Response:
    _log_error(err, path)
    headers = _with_challenges(err, token_challenges(presented=False))
    if isinstance(err, StorageUnavailable):
        headers["Retry-After"] = RETRY_AFTER_SECONDS
        return problem_response(503, "Service Unavailable",
                                "The service is temporarily unavailable, retry shortly", headers)
    if isinstance(err, OAuthError):
        # An OAuth-flavoured error raised under /v1: keep its status, speak problem JSON.
        return problem_response(err.status, err.title, err.description, headers)
    extra = err.extra
    if err.status == 422 and "errors" not in extra:
        # Every 422 has the same shape: a rule of the service is one error of the request.
        extra = {**extra, "errors": [{"detail": err.description}]}
    return problem_response(err.status, err.title, err.description, headers, extra)


def oauth_endpoint(fn: F) -> F:
    """Route decorator: OAuth errors as RFC 6749 §5.2 JSON, always ``no-store``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TesseraError as err:
            return render_oauth_error(err, fn.__name__)

    return wrapper  # type: ignore[return-value]


def api_endpoint(fn: F) -> F:
    """Route decorator: errors as RFC 9457 problem JSON; path ids that could name no
    stored item are 404 before any storage call."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            for value in kwargs.values():
                if isinstance(value, str) and not storable_key(value):
                    raise NotFound("No such resource")
            return fn(*args, **kwargs)
        except TesseraError as err:
            return render_problem(err, fn.__name__)

    return wrapper  # type: ignore[return-value]


def chalice_error(response: Response) -> tuple[int, str, str, dict[str, str]] | None:
    """Status, title, detail and ``Allow`` header of an error Chalice answered itself
    (a ``{"Code", "Message"}`` body: 405, 415, 500); None for any other response."""
    body = response.body
    if not (isinstance(body, dict) and set(body) == {"Code", "Message"}):
        return None
    status = response.status_code
    titles = {405: "Method Not Allowed", 415: "Unsupported Media Type", 400: "Bad Request",
              500: "Internal Server Error"}
    title = titles.get(status, "Error")
    detail = {405: "This method is not allowed on this resource",
              415: "Unsupported media type",
              500: "An internal error occurred"}.get(status, title)
    headers = {k: str(v) for k, v in response.headers.items() if k.lower() == "allow"}
    return status, title, detail, headers


def _chalice_error_to_ours(request: Request | None, response: Response) -> Response:
    """The web pages answer theirs as HTML (``web.errors``, an inner middleware)."""
    found = chalice_error(response)
    if found is None:
        return response
    status, title, detail, headers = found
    path = request.path if request is not None else ""
    if path.startswith("/oauth/"):
        error = "server_error" if status >= 500 else "invalid_request"
        return Response(body=json.dumps({"error": error, "error_description": detail}),
                        status_code=status,
                        headers={"Content-Type": "application/json", **NO_STORE, **headers})
    return problem_response(status, title, detail, headers)


def error_middleware(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Chalice ``http`` middleware: no Chalice error body ever reaches a client.

    It also binds the invocation's remaining time, so storage gives up (503 with
    Retry-After) before Lambda's timeout kills the function without an answer.
    """
    remaining = getattr(getattr(event, "lambda_context", None), "get_remaining_time_in_millis", None)
    if remaining is None:
        return _chalice_error_to_ours(event, get_response(event))
    with deadline.bound(remaining):
        return _chalice_error_to_ours(event, get_response(event))


# SPEC §11: an answer to a request that a PAT (or a role key with an expiry)
# authenticated says when that credential expires, as GitHub does.
TOKEN_EXPIRATION = "Tessera-Token-Expiration"
# The current request's slot for it: set by the middleware, filled by the route.
_expiration: ContextVar[dict[str, str] | None] = ContextVar("tessera_token_expiration",
                                                            default=None)


def rfc3339(epoch: int) -> str:
    """``2027-01-05T00:00:00Z`` (RFC 3339 §5.6, UTC)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def note_token_expiration(expires_at: int | None) -> None:
    """The credential that authenticated this request expires at ``expires_at``
    (None: it does not, or it is not one whose expiry is announced)."""
    slot = _expiration.get()
    if slot is not None and expires_at is not None:
        slot["value"] = rfc3339(expires_at)


def token_expiration_middleware(event: Request,
                                get_response: Callable[[Request], Response]) -> Response:
    """Chalice ``http`` middleware: ``Tessera-Token-Expiration`` on the answer, errors
    included, when the route noted the credential's expiry; nothing is read for it."""
    slot: dict[str, str] = {}
    token = _expiration.set(slot)
    try:
        response = get_response(event)
    finally:
        _expiration.reset(token)
    if "value" in slot:
        response.headers[TOKEN_EXPIRATION] = slot["value"]
    return response


# --------------------------------------------------------------------------
# requests
# --------------------------------------------------------------------------

def header(request: Request, name: str) -> str | None:
    value = request.headers.get(name)
    return value if value is None else str(value)


def media_type(request: Request) -> str:
    return (header(request, "content-type") or "").split(";", 1)[0].strip().lower()


def storable(text: str) -> bool:
    """``text`` encodes as UTF-8: it holds no lone surrogate (RFC 8259 §8.2), which
    JSON escapes such as ``"\\ud800"`` can produce and DynamoDB cannot store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_key(text: str) -> bool:
    """``text`` can be a DynamoDB key: not empty, UTF-8, at most ``MAX_KEY_BYTES``."""
    return bool(text) and storable(text) and len(text.encode("utf-8")) <= MAX_KEY_BYTES


def body_bytes(request: Request) -> bytes:
    try:
        raw = request.raw_body
        data = raw if isinstance(raw, bytes) else (raw or "").encode("utf-8")
    except UnicodeEncodeError as exc:
        # A proxy event's text body with a lone surrogate: it has no UTF-8 bytes.
        raise BadRequest("Request is not valid UTF-8") from exc
    if len(data) > MAX_BODY:
        raise PayloadTooLarge(f"Request body exceeds {MAX_BODY} bytes")
    return data


def _decode_utf8(data: bytes, error: type[TesseraError]) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error("Request is not valid UTF-8") from exc


def parse_form(request: Request, *, error: type[TesseraError] = InvalidRequest,
               repeatable: frozenset[str] = frozenset()) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, strictly.

    RFC 6749 §3.2: parameters "MUST NOT be included more than once" (except
    those in ``repeatable``, such as RFC 8707's ``resource``: their values,
    which may not contain spaces, come joined by single spaces), and
    "parameters sent without a value MUST be treated as if they were omitted
    from the request" (so ``scope=`` is no scope); the body must be
    form-encoded (§4.3.2, Appendix B) and UTF-8 (strict UTF-8 decoding lets no
    surrogate through).
    """
    if media_type(request) != FORM:
        raise error(f"Content-Type must be {FORM}")
    text = _decode_utf8(body_bytes(request), error)
    params: dict[str, str] = {}
    for part in text.split("&") if text else []:
        if not part:
            continue
        name, _, value = part.partition("=")
        try:
            key = unquote_to_bytes(name.replace("+", " ")).decode("utf-8")
            val = unquote_to_bytes(value.replace("+", " ")).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error("Parameters must be UTF-8") from exc
        if "\x00" in key or "\x00" in val:
            raise error("Parameters must not contain NUL characters")
        if not val:
            continue
        if key in repeatable:
            if " " in val:
                raise error(f"Parameter '{key}' must not contain spaces")
            params[key] = f"{params[key]} {val}" if key in params else val
            continue
        if key in params:
            raise error(f"Parameter '{key}' is repeated")
        params[key] = val
    return params


def parse_json_object(request: Request) -> dict[str, Any]:
    """A JSON object body (problem JSON on any fault)."""
    if media_type(request) != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")
    text = _decode_utf8(body_bytes(request), BadRequest)
    try:
        parsed = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError) as exc:
        raise BadRequest("Request body is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise BadRequest("Request body must be a JSON object")
    _require_storable_strings(parsed)
    return parsed


def parse_body(request: Request, model: type[M], *, optional: bool = False) -> M:
    """A JSON object body validated into ``model``; ``optional``: no body is ``{}``
    (DELETE, regenerate)."""
    data = {} if optional and not body_bytes(request) else parse_json_object(request)
    return validated(model, data, "body")


def parse_query(request: Request, model: type[M], *, credential: str | None = None) -> M:
    """The query parameters validated into ``model``; ``credential`` names a parameter
    that carries a token (RFC 6750 §2.3) and is no filter."""
    params = query_params(request)
    params.pop(credential or "", None)
    return validated(model, params, "query")


def validated(model: type[M], data: Mapping[str, Any], where: Literal["body", "query"]) -> M:
    from pydantic import ValidationError  # here, not at import: SPEC §9

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, where, model) from exc


def validation_error(exc: ValidationError, where: Literal["body", "query"],
                     model: type[BaseModel] | None = None) -> Unprocessable:
    """A 422 whose ``errors`` member has one entry per field error (RFC 9457 §3).

    An entry names its place with ``pointer``, a JSON Pointer into the body as a
    URI fragment (RFC 6901 §6), or ``parameter`` for the query; an error of the
    request as a whole names neither. ``detail`` joins the entries' details.
    """
    noun = "fields" if where == "body" else "query parameters"
    entries: list[dict[str, str]] = []
    unknown: list[str] = []
    details: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = error["loc"]
        name = str(loc[0]) if loc else ""
        if error["type"] == "extra_forbidden":
            unknown.append(name)
            detail = f"Unknown {noun[:-1]}: {name}"
        elif error["type"] == "missing":
            field = model.model_fields.get(name) if model is not None else None
            hint = field.description if field is not None else None
            detail = f"{name} is required" + (f": {hint}" if hint else "")
        elif error["type"] == "tessera":
            detail = error["msg"]   # our own rules carry the whole message
        else:
            detail = f"{name}: {error['msg']}" if name else error["msg"]
        if error["type"] != "extra_forbidden":
            details.append(detail)
        entry = {"detail": detail}
        if where == "query" and name:
            entry["parameter"] = name
        elif where == "body":
            entry["pointer"] = _pointer([name, *(p for p in loc[1:] if isinstance(p, int))]
                                        if loc else [])
        entries.append(entry)
    if unknown:
        details.insert(0, f"Unknown {noun}: {', '.join(unknown)}")
    return Unprocessable("; ".join(details), extra={"errors": entries})


def _pointer(parts: list[object]) -> str:
    """RFC 6901: ``~`` and ``/`` escaped in each token (§3), percent-encoded as a
    URI fragment (§6); ``#`` alone is the whole body."""
    tokens = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "#" + "".join("/" + quote(t, safe="~!$&'()*+,;=:@-._") for t in tokens)


def _require_storable_strings(value: Any) -> None:
    """422 for any member name or string that cannot be encoded (before any storage call)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str) and not storable(item):
            raise Unprocessable("Strings must be valid Unicode: the body holds an unpaired "
                                "surrogate escape such as \\ud800")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key}")
        out[key] = value
    return out


def query_params(request: Request) -> dict[str, str]:
    """Query parameters; a repeated one is a 400."""
    params = request.query_params
    if not params:
        return {}
    out: dict[str, str] = {}
    for key in params:
        values = params.getlist(key)
        if len(values) != 1:
            raise BadRequest(f"Parameter '{key}' is repeated")
        out[key] = values[0]
    return out


def source_ip(request: Request) -> str:
    """The caller's address as API Gateway saw it (never a client-supplied header)."""
    identity = (request.context or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """RFC 7617 Basic credentials, or None when there is no Basic header.

    Malformed headers (bad base64, no colon, non-UTF-8) raise ``ValueError``.
    """
    auth = header(request, "authorization")
    if not auth:
        return None
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise ValueError("malformed Basic credentials") from exc
    user, sep, password = decoded.partition(":")
    if not sep:
        raise ValueError("malformed Basic credentials")
    return user, password


def basic_token(user: str, password: str) -> str:
    """The token of HTTP Basic credentials: the password (any user name, as
    ``docker login -u any -p TOKEN`` sends a PAT, an access token or a whole role
    key ``tka_…:tsk_…``), or a role key given as its two halves, user ``tka_…`` and
    password ``tsk_…`` (SPEC §6)."""
    if is_role_key_access_id(user) and password.startswith(ROLE_KEY_SECRET.prefix):
        return f"{user}:{password}"
    return password


def bearer_credential(request: Request) -> str:
    """The token a caller presents: ``Bearer``, or the token of HTTP Basic
    (``basic_token``).

    Anything missing or malformed is the SPEC §2 401.
    """
    auth = header(request, "authorization")
    if not auth:
        raise Unauthorized()
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic":
        try:
            creds = basic_credentials(request)
        except ValueError as exc:
            raise Unauthorized() from exc
        if creds and creds[1]:
            return basic_token(*creds)
    raise Unauthorized()


def token_challenges(*, presented: bool) -> tuple[str, str]:
    """The challenges of a 401 where a token is accepted as Bearer or as the Basic
    password: both schemes, so that clients that wait for a challenge before they
    send credentials (curl --anyauth, urllib, git, Maven) send them (RFC 9110
    §11.6.1); ``error="invalid_token"`` only if a token came (RFC 6750 §3.1).
    """
    return (bearer_challenge("invalid_token" if presented else None), BASIC_CHALLENGE)


def token_presented(request: Request, *, query_param: bool) -> bool:
    """Whether the request carries a credential: Bearer or Basic with a value, or
    the ``session`` query parameter where the stage accepts it."""
    scheme, _, value = (header(request, "authorization") or "").strip().partition(" ")
    if scheme.lower() in ("bearer", "basic") and value.strip():
        return True
    return query_param and "session" in (request.query_params or {})


def authenticated(request: Request, resolve: Callable[[str], T], *, query_param: bool) -> T:
    """``resolve`` applied to the presented token; a 401 carries its challenges."""
    try:
        return resolve(presented_token(request, query_param=query_param))
    except Unauthorized as err:
        err.challenges = token_challenges(presented=token_presented(request,
                                                                    query_param=query_param))
        raise


def presented_token(request: Request, *, query_param: bool) -> str:
    """``bearer_credential``, or a PAT in the ``session`` query parameter where the
    stage allows it (as some platforms do for tools that cannot set headers).

    RFC 6750 §2: a token is presented one way per request, never two.
    """
    params: Mapping[str, Any] = request.query_params or {}
    if not query_param or "session" not in params:
        return bearer_credential(request)
    token = query_params(request)["session"]
    if header(request, "authorization"):
        raise BadRequest("Present the token once: in the Authorization header or the "
                         "'session' query parameter, not both")
    if not PAT.matches(token):
        raise Unauthorized(detail="the session query parameter carries only PATs")
    return token


def issuer_of(request: Request, settings: Settings) -> str:
    """The issuer URL: configured per stage, else derived from the request."""
    if settings.issuer:
        return settings.issuer
    host = header(request, "host") or "localhost"
    proto = (header(request, "x-forwarded-proto") or "https").split(",")[0].strip()
    stage = (request.context or {}).get("stage")
    suffix = f"/{stage}" if stage and host.endswith(".amazonaws.com") else ""
    return f"{proto}://{host}{suffix}"
