"""The authorization code flow (RFC 6749 §4.1, RFC 7636, OIDC Core §3.1): the
authorization request, consents, and the codes themselves.

``parse`` validates an authorization request in the order RFC 6749 §4.1.2.1
prescribes: first the client and its redirect URI, whose faults must never
redirect (``BadRequest``: the page says so); then everything else, whose faults
go back to the validated redirect URI (``Redirected``).

A code is ``tsc_`` opaque (stored by digest only), lives 60 s, and is redeemed
by one conditional write (``CodesRepo.redeem``); a second use ends the session
the first created (RFC 6749 §4.1.2: "If an authorization code is used more than
once, the authorization server MUST deny the request and SHOULD revoke (when
possible) all tokens previously issued based on that authorization code").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.errors import (
    AccessDenied,
    BadRequest,
    ConditionFailed,
    ConsentRequired,
    InvalidGrant,
    InvalidRequest,
    LoginRequired,
    NotFound,
    OAuthError,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from chalicelib.models import Client, Session, User, possible_client_id
from chalicelib.security import redirect_uris
from chalicelib.security.opaque import AUTHORIZATION_CODE, digest
from chalicelib.security.scopes import parse_scope, scope_for_client
from chalicelib.services.mfa_policy import ACR_MFA, ACR_PASSWORD
from chalicelib.services.security_log import NOWHERE, SecurityLog, Where
from chalicelib.storage.codes import USED, AuthorizationCode, CodesRepo, code_from_item
from chalicelib.storage.consents import Consent, ConsentsRepo

if TYPE_CHECKING:
    from chalicelib.services.sessions import Sessions

GRANT_TYPE = "authorization_code"
CODE_SECONDS = 60            # SPEC §3
MAX_PARAM = 4096
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
# RFC 7636 §4.1: code_verifier = 43*128unreserved; §4.2: an S256 challenge is the
# base64url (no padding) of a SHA-256 digest: exactly 43 characters.
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))."""
    raw = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def with_query(uri: str, params: Mapping[str, str]) -> str:
    """``uri``, character for character, with ``params`` appended to its query
    (RFC 6749 §3.1.2: the query "MUST" be retained): the browser goes to the
    registered string, not to a re-encoding of it."""
    uri = uri.partition("#")[0]
    if not params:
        return uri
    separator = "" if uri.endswith(("?", "&")) else "&" if "?" in uri else "?"
    return uri + separator + urlencode(list(params.items()))


def origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request."""

    client: Client
    redirect_uri: str           # where the browser goes back to: a registered URI (RFC 8252
                                # §7.3: a loopback IP one with the request's port)
    presented_redirect_uri: str  # as the request sent it, so identical to the above ("" if omitted)
    state: str | None
    scope: tuple[str, ...]
    nonce: str
    code_challenge: str
    prompt: frozenset[str]
    max_age: int | None
    login_hint: str
    params: Mapping[str, str]   # the request's parameters, carried by the pages' forms
    acr_values: tuple[str, ...] = ()    # OIDC Core §3.1.2.1, in order of preference

    @property
    def wants_mfa(self) -> bool:
        """A sign-in with a second factor is needed (SPEC §11): the client requires it,
        or ``acr_values`` asks for the MFA level only (a request that also accepts
        the password level is served at the level the sign-in reached)."""
        known = {v for v in self.acr_values if v in (ACR_MFA, ACR_PASSWORD)}
        return self.client.require_mfa or known == {ACR_MFA}

    def response(self, issuer: str, answer: Mapping[str, str]) -> str:
        """The redirect URI with ``answer``, ``state`` and ``iss`` (RFC 9207 §2)."""
        extra = dict(answer)
        if self.state is not None:
            extra["state"] = self.state
        extra["iss"] = issuer
        return with_query(self.redirect_uri, extra)

    def sign_in_too_old(self, auth_time: int, now: int) -> bool:
        """OIDC Core §3.1.2.1 max_age: re-authenticate once ``now - auth_time >=
        max_age``; so max_age=0 always asks, as prompt=login does."""
        return self.max_age is not None and (self.max_age == 0
                                             or now - auth_time >= self.max_age)

    def error_response(self, issuer: str, err: OAuthError) -> str:
        """RFC 6749 §4.1.2.1: the error as query parameters of the redirect URI."""
        return self.response(issuer, {"error": err.error, "error_description": err.description})


class Redirected(Exception):
    """An error to send to the (validated) redirect URI, not to show."""

    def __init__(self, request: AuthorizationRequest, error: OAuthError) -> None:
        super().__init__(error.description)
        self.request = request
        self.error = error


class Next(Enum):
    """What the authorization endpoint does next with a request (``Authorization.decide``)."""

    SIGN_IN = "sign_in"      # show the sign-in page
    ENROL = "enrol"          # the sign-in needs a second factor the person has not enrolled
    CONSENT = "consent"      # show the consent page for ``Outcome.granted``
    REDIRECT = "redirect"    # a code was issued: send the browser to ``Outcome.location``
    ERROR = "error"          # send ``Outcome.error`` to the redirect URI (RFC 6749 §4.1.2.1)


@dataclass(frozen=True)
class Outcome:
    next: Next
    granted: tuple[str, ...] = ()     # CONSENT: the scopes the page asks about
    location: str = ""                # REDIRECT: the redirect URI with code, state and iss
    error: OAuthError | None = None   # ERROR


# The page's actions: none (a new request), a sign-in just made, Approve, Deny.
ACTIONS = ("", "signin", "approve", "deny")


def _one_of(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    return value if value else None


class Authorization:
    """Authorization requests, consents and codes, given their stores."""

    def __init__(self, codes: CodesRepo, consents: ConsentsRepo, clock: Clock, *,
                 clients: Callable[[str], Client | None],
                 sessions: Callable[[], Sessions],
                 security_log: SecurityLog | None = None) -> None:
        self.codes = codes
        self.consents = consents
        self.clock = clock
        self.clients = clients
        self._sessions = sessions
        # The person's security log (SPEC §11); None in unit tests. A consent's
        # entry is one PutItem after its one write (a put, a delete that returns
        # what it removed): the code grant's own path is not touched.
        self.security_log = security_log

    # -- the authorization request ------------------------------------------------

    def parse(self, params: Mapping[str, str]) -> AuthorizationRequest:
        """Validate an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1)."""
        client_id = params.get("client_id") or ""
        if not client_id:
            raise BadRequest("The request names no application (client_id is missing).")
        client = self.clients(client_id) if possible_client_id(client_id) else None
        if client is None:
            raise BadRequest("The application that sent you here is not known to this service.",
                             detail=f"unknown client {client_id[:128]!r}")
        presented = _one_of(params, "redirect_uri")
        # RFC 6749 §4.1.2.1: a missing, invalid or mismatching redirection URI is
        # told to the person, and the user-agent is NOT redirected to it.
        chosen = redirect_uris.choose(presented, client.redirect_uris)
        if chosen is None:
            raise BadRequest("The application sent you here with a return address it has not "
                             "registered, so you were not sent back to it.",
                             detail=f"redirect_uri mismatch for {client_id}")
        state = params.get("state")
        if state is not None and len(state) > MAX_PARAM:
            state = None
        # The code is bound to the URI as presented (RFC 6749 §4.1.3: the token request
        # sends it again); when presented and accepted, it is identical to ``chosen``.
        early = AuthorizationRequest(client, chosen, chosen if presented else "", state, (), "", "",
                                     frozenset(), None, "", {})
        try:
            return self._rest(params, early)
        except OAuthError as err:
            raise Redirected(early, err) from err

    def _rest(self, params: Mapping[str, str], early: AuthorizationRequest) -> AuthorizationRequest:
        client = early.client
        for name, value in params.items():
            if len(value) > MAX_PARAM:
                raise InvalidRequest(f"Parameter '{name}' is too long")
        if "request" in params:
            raise RequestNotSupported("Request objects are not supported")
        if "request_uri" in params:
            raise RequestUriNotSupported("request_uri is not supported")
        response_type = _one_of(params, "response_type")
        if response_type is None:
            raise InvalidRequest("Missing required parameter 'response_type'")
        if response_type != "code":
            raise UnsupportedResponseType("Only response_type=code is supported")
        mode = _one_of(params, "response_mode")
        if mode is not None and mode != "query":
            raise InvalidRequest("Only response_mode=query is supported")
        if not client.allows_grant(GRANT_TYPE):
            raise UnauthorizedClient("This client may not use the authorization code flow")
        scope = self._scope(client, params.get("scope"))
        challenge = self._challenge(client, params)
        prompt = frozenset((params.get("prompt") or "").split())
        if not prompt <= PROMPTS:
            raise InvalidRequest("prompt must be none, login, consent or select_account")
        if "none" in prompt and len(prompt) > 1:
            raise InvalidRequest("prompt=none cannot be combined with other values")
        raw_age = _one_of(params, "max_age")
        if raw_age is not None and (not raw_age.isascii() or not raw_age.isdigit()
                                    or len(raw_age) > 10):
            raise InvalidRequest("max_age must be a number of seconds")
        return AuthorizationRequest(
            client=client, redirect_uri=early.redirect_uri,
            presented_redirect_uri=early.presented_redirect_uri, state=early.state,
            scope=scope, nonce=params.get("nonce") or "", code_challenge=challenge,
            prompt=prompt, max_age=int(raw_age) if raw_age is not None else None,
            login_hint=params.get("login_hint") or "", params=dict(params),
            acr_values=tuple((_one_of(params, "acr_values") or "").split()))

    @staticmethod
    def _scope(client: Client, raw: str | None) -> tuple[str, ...]:
        return scope_for_client(client, parse_scope(raw))

    @staticmethod
    def _challenge(client: Client, params: Mapping[str, str]) -> str:
        """RFC 7636 §4.3, §4.4.1: S256 only (``plain`` refused); required for public clients."""
        challenge, method = _one_of(params, "code_challenge"), _one_of(params, "code_challenge_method")
        if challenge is None:
            if method is not None:
                raise InvalidRequest("code_challenge_method without code_challenge")
            if client.public:
                raise InvalidRequest("PKCE is required: send code_challenge with "
                                     "code_challenge_method=S256")
            return ""
        if method != "S256":
            # RFC 7636 §4.3: an absent method means "plain", which is refused too.
            raise InvalidRequest("code_challenge_method must be S256")
        if not S256_CHALLENGE.fullmatch(challenge):
            raise InvalidRequest("code_challenge must be 43 base64url characters (S256)")
        return challenge

    # -- what the endpoint does next (OIDC Core §3.1.2.1 prompt and max_age) ----------

    def decide(self, request: AuthorizationRequest, action: str, user: User | None,
               session: Session | None, issuer: str) -> Outcome:
        """The next step of ``request`` for the browser signed in as ``user`` with
        ``session`` (None if nobody is), after the page's ``action`` (``ACTIONS``;
        "signin" means the sign-in just succeeded). Approve stores the consent; a
        REDIRECT has issued its code. Errors are outcomes, never exceptions."""
        try:
            return self._decide(request, action, user, session, issuer)
        except OAuthError as err:
            return Outcome(Next.ERROR, error=err)

    def _decide(self, request: AuthorizationRequest, action: str, user: User | None,
                session: Session | None, issuer: str) -> Outcome:
        if action == "deny":
            raise AccessDenied("The person denied the request")
        if user is None or session is None or self._reauthenticate(request, session, action):
            if "none" in request.prompt:
                raise LoginRequired("Nobody is signed in")
            return Outcome(Next.SIGN_IN)
        if request.wants_mfa and not session.mfa:
            # A person with a second factor never has a finished sign-in without it
            # (the pages ask for it first): this one has none to use, and enrols.
            if "none" in request.prompt:
                raise LoginRequired("This application needs a sign-in with a second factor")
            return Outcome(Next.ENROL)
        client = request.client
        granted = tuple(s for s in request.scope if user.allows(s))
        if request.scope and not granted:
            raise AccessDenied("The account holds none of the requested scopes")
        if action == "approve":
            self.remember_consent(user, client, granted)
        else:
            remembered = self.remembered_consent(user.id, request)
            if remembered is None or not remembered.covers(granted):
                if "none" in request.prompt:
                    raise ConsentRequired("The person has not consented to this application")
                return Outcome(Next.CONSENT, granted=granted)
        code = self.issue_code(request, user, granted, session.auth_time, session.id,
                               session.amr)
        return Outcome(Next.REDIRECT, granted=granted,
                       location=request.response(issuer, {"code": code}))

    def _reauthenticate(self, request: AuthorizationRequest, session: Session,
                        action: str) -> bool:
        """prompt=login on a fresh request; max_age reached (OIDC Core §3.1.2.1). A
        sign-in this asked for (action "signin") is never asked again (no loop)."""
        if action == "signin":
            return False
        if "login" in request.prompt and not action:
            return True
        return request.sign_in_too_old(session.auth_time, self.clock.now())

    # -- consents -------------------------------------------------------------------

    def consent(self, user_id: str, client_id: str) -> Consent | None:
        return self.consents.get(user_id, client_id)

    def remembered_consent(self, user_id: str, request: AuthorizationRequest) -> Consent | None:
        """The consent that lets ``request`` skip the consent page, if any: never with
        prompt=consent (OIDC Core §3.1.2.1), nor for a client that does not remember
        consent for this redirect URI (RFC 6749 §10.2, ``Client.remembers_consent``);
        its approval is still stored, as the code grant and the connected apps need it."""
        if "consent" in request.prompt or not request.client.remembers_consent(request.redirect_uri):
            return None
        return self.consents.get(user_id, request.client.client_id)

    def remember_consent(self, user: User, client: Client, scopes: tuple[str, ...]) -> Consent:
        consent = self.consents.grant(user.id, client.client_id, scopes, self.clock.now())
        log.info(json.dumps({"event": "consent_granted", "user_id": user.id,
                             "client_id": client.client_id, "scopes": sorted(scopes)}))
        if self.security_log is not None:
            self.security_log.record(user.id, "consent_given", NOWHERE,
                                     {"client_id": client.client_id, "client_name": client.name,
                                      "scopes": sorted(scopes)})
        return consent

    def consents_of(self, user_id: str) -> list[Consent]:
        return self.consents.for_user(user_id)

    def withdraw(self, user: User, client_id: str, where: Where = NOWHERE) -> int:
        """Withdraw a consent and end that app's sessions of the user (their refresh
        tokens stop at once; their access tokens fail on Tessera's endpoints, which
        check the session). Returns how many sessions ended; NotFound if no consent."""
        if not possible_client_id(client_id) or self.consents.delete(user.id, client_id) is None:
            raise NotFound("No consent for this application")
        ended = self._sessions().end_for_client(user, client_id, reason="consent_withdrawn")
        log.info(json.dumps({"event": "consent_withdrawn", "user_id": user.id,
                             "client_id": client_id, "sessions_ended": ended}))
        if self.security_log is not None:
            self.security_log.record(user.id, "consent_withdrawn", where,
                                     {"client_id": client_id, "sessions_ended": ended})
        return ended

    # -- codes ----------------------------------------------------------------------

    def issue_code(self, request: AuthorizationRequest, user: User, scope: tuple[str, ...],
                   auth_time: int, web_session_id: str,
                   amr: tuple[str, ...] = ("pwd",)) -> str:
        """A new code bound to the request, the user and the browser's session."""
        code = AUTHORIZATION_CODE.mint()
        now = self.clock.now()
        self.codes.insert(AuthorizationCode(
            digest=digest(code), client_id=request.client.client_id,
            redirect_uri=request.presented_redirect_uri, code_challenge=request.code_challenge,
            nonce=request.nonce, scope=" ".join(scope), user_id=user.id, auth_time=auth_time,
            web_session_id=web_session_id, created_at=now, expires_at=now + CODE_SECONDS,
            username=user.username, email=user.email, firstname=user.firstname,
            lastname=user.lastname, user_version=user.version, amr=amr))
        return code

    def redeem(self, client: Client, params: Mapping[str, str], session_id: str) -> AuthorizationCode:
        """Spend the code of a token request (RFC 6749 §4.1.3) for the session
        ``session_id``: one conditional write; every refusal is ``invalid_grant``."""
        presented = params.get("code") or ""
        if not AUTHORIZATION_CODE.matches(presented):
            raise InvalidGrant("Invalid authorization code", detail="malformed code")
        verifier = params.get("code_verifier")
        if verifier is not None and not VERIFIER.fullmatch(verifier):
            raise InvalidRequest("code_verifier must be 43-128 characters of [A-Za-z0-9-._~]")
        challenge = s256(verifier) if verifier else ""
        redirect_uri = params.get("redirect_uri") or ""
        try:
            return self.codes.redeem(digest(presented), client_id=client.client_id,
                                     redirect_uri=redirect_uri, code_challenge=challenge,
                                     session_id=session_id, now=self.clock.now())
        except ConditionFailed as lost:
            return self._refused(lost.item, client, session_id, redirect_uri, verifier)

    def _refused(self, item: Mapping[str, Any] | None, client: Client, session_id: str,
                 redirect_uri: str, verifier: str | None) -> AuthorizationCode:
        if item is None:
            raise InvalidGrant("Invalid authorization code", detail="no such code")
        code = code_from_item(dict(item))
        if code.client_id != client.client_id:
            raise InvalidGrant("Invalid authorization code", detail="issued to another client")
        if code.status == USED:
            if code.session_id == session_id:
                # Our own write, retried by the SDK after its answer was lost.
                return code
            # RFC 6749 §4.1.2: used twice: deny, and revoke what the first use produced.
            ended = self._sessions().end(code.session_id, reason="authorization_code_reuse")
            log.info(json.dumps({"event": "authorization_code_reuse", "client_id": client.client_id,
                                 "user_id": code.user_id, "sid": code.session_id,
                                 "session_ended": ended}))
            raise InvalidGrant("Authorization code was already used; its tokens are revoked",
                               detail="authorization code reuse")
        if self.clock.now() >= code.expires_at:
            raise InvalidGrant("Authorization code expired", detail="code expired")
        if code.redirect_uri != redirect_uri:
            # RFC 6749 §4.1.3: "ensure that the redirect_uri parameter is present if
            # [it] was included in the initial authorization request ... and if
            # included ensure that their values are identical."
            raise InvalidGrant("redirect_uri does not match the authorization request",
                               detail="redirect_uri mismatch")
        if not code.code_challenge:
            raise InvalidGrant("code_verifier was sent but the authorization request had no "
                               "code_challenge", detail="unexpected verifier")
        if verifier is None:
            raise InvalidGrant("code_verifier is required", detail="missing verifier")
        # RFC 7636 §4.6, compared in constant time.
        if not hmac.compare_digest(s256(verifier).encode(), code.code_challenge.encode()):
            raise InvalidGrant("code_verifier does not match the code_challenge",
                               detail="PKCE mismatch")
        raise InvalidGrant("Invalid authorization code", detail="refused for another reason")

