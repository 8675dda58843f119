"""Every endpoint of the service as a benchmark case, and the world they run in.

A ``Case`` says how to build one request of its kind (``prepare``, not measured:
it may log in, start a device flow, approve it...) and what status the
request must get. The harness measures the request itself; the budget tests
(``tests/api/test_dynamodb_budgets.py``) count its DynamoDB calls. Both walk
``CASES``, so an endpoint added here is measured and budgeted in one go.

``World`` holds what cases share: the driver that serves a request through the
Lambda handler, the container (for setup through the services, never on the
measured path) and the demo identities of ``seeds/demo.json``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.lambda_http import Driver, Request, Response

ROOT = Path(__file__).resolve().parent.parent
DEMO_SEED = ROOT / "seeds" / "demo.json"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# How long the world reuses one login's access token (it lives 300 s).
TOKEN_REUSE_SECONDS = 120
# The refresh case rotates one session this many times, then starts another.
YOUNG_ROTATIONS = 10
# The scopes of the sessions the cases open: with openid (a refresh answers an RS256 ID token
# too, OIDC Core §12.2), and the same without it (no ID token).
SESSION_SCOPE = "openid profile email sessions:manage"
SESSION_SCOPE_NO_OPENID = "profile email sessions:manage"
# The user whose sessions GET /v1/sessions lists, and how many they have.
LISTER = "sessions-lister"
LISTED_SESSIONS = 5
# The demo user's role for the role-key cases, and its one policy.
ROLE_SHORT_NAME = "bench"
ROLE_POLICY = "data:get@urn:tessera:data:{username}.*"
# How long the world reuses one role token (it lives an hour).
ROLE_TOKEN_REUSE_SECONDS = 1800
# CI federation: a role of the demo user that trusts a CI issuer whose keys the
# instance already holds (SPEC §9 "once the issuer's keys are cached"); the issuer
# is never contacted, its name cannot resolve.
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
CI_ISSUER = "https://ci.bench.invalid"
CI_SUBJECT = "repo:acme/app:ref:refs/heads/main"
CI_ROLE_NAME = "ci"
# Issue 16: a warm request's CPU at most this times the bare botocore call(s) it makes.
BARE_BUDGET = 1.25


def load_demo_seed(c: Any) -> dict[str, Any]:
    """Load ``seeds/demo.json`` through the seed loader; returns the document."""
    from tessera_admin.seed import load_seed

    data: dict[str, Any] = json.loads(DEMO_SEED.read_text(encoding="utf-8"))
    load_seed(c.identities, data)
    return data


class SteppedClock:
    """The system clock plus an offset that the harness moves forward, so that
    requests it sends within one second can still be seconds apart."""

    def __init__(self) -> None:
        self.offset = 0

    def now(self) -> int:
        return int(time.time()) + self.offset

    def advance(self, seconds: int) -> None:
        self.offset += seconds


class World:
    """The demo account, a driver, and helpers that build requests."""

    def __init__(self, driver: Driver, c: Any, seed: dict[str, Any]) -> None:
        self.send = driver
        self.c = c
        self.seed = seed
        user = seed["users"][0]
        self.username, self.password = user["username"], user["password"]
        public = [cl for cl in seed["clients"] if cl.get("public")]
        confidential = [cl for cl in seed["clients"] if cl.get("introspect")]
        self.cli = public[0]["client_id"]
        self.introspector = (confidential[0]["client_id"], confidential[0]["client_secret"])
        self._login: tuple[int, dict[str, Any]] | None = None
        # per session scope: the current refresh token of a young session, its rotations
        self._refresh: dict[str, tuple[str, int]] = {}
        self._web: dict[str, str] | None = None
        self._lister: tuple[Any, Any, int, str] | None = None
        self._pat: str | None = None
        self._role_key: tuple[str, str] | None = None
        self._role_token: tuple[int, str] | None = None
        self._ci_key: Any = None

    # -- requests --------------------------------------------------------------------

    @staticmethod
    def form(path: str, headers: dict[str, str] | None = None, **params: str) -> Request:
        return Request("POST", path, {**FORM, **(headers or {})}, urlencode(params).encode())

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def basic(self) -> dict[str, str]:
        raw = base64.b64encode(":".join(self.introspector).encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    def new_pat(self) -> Request:
        body = json.dumps({"description": "bench", "scopes": ["profile", "email"]}).encode()
        return Request("POST", "/v1/tokens",
                       {"Content-Type": "application/json", **self.bearer(self.access_token)}, body)

    def pat(self) -> str:
        """A PAT of the demo user, generated once over the API."""
        if self._pat is None:
            self._pat = str(self.expect(self.new_pat(), status=201).json()["token"])
        return self._pat

    def role_key_parts(self) -> tuple[str, str]:
        """(access id, secret) of a key of the demo user's role ``<user>.bench``, made
        once through the roles storage, as the roles API would store it (setup, not
        measured)."""
        if self._role_key is None:
            from chalicelib.security.opaque import (
                ROLE_KEY_SECRET,
                digest,
                new_id,
                new_role_key_access_id,
            )
            from chalicelib.storage.roles import Role, RoleKey

            c, name = self.c, f"{self.username}.{ROLE_SHORT_NAME}"
            role = c.roles_repo.get(name)
            if role is None:
                owner = c.identities.find_user(self.username)
                role = Role(name=name, owner=owner.id, description="bench",
                            created_at=c.clock.now(),
                            policies={new_id(): ROLE_POLICY.format(username=self.username)})
                c.roles_repo.create(role)
            access, secret = new_role_key_access_id(), ROLE_KEY_SECRET.mint(role.owner + role.id)
            c.roles_repo.add_key(name, RoleKey(id=access, secret_hash=digest(secret),
                                               description="bench", created_at=c.clock.now()),
                                 100)
            self._role_key = (access, secret)
        return self._role_key

    def role_key(self) -> str:
        """The role key as one token, ``tka_…:tsk_…``."""
        return ":".join(self.role_key_parts())

    def role_key_basic(self) -> dict[str, str]:
        """The role key as client credentials: Basic ``tka_…`` / ``tsk_…``."""
        raw = base64.b64encode(":".join(self.role_key_parts()).encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    def role_client_credentials(self) -> Request:
        return self.form("/oauth/token", self.role_key_basic(), grant_type="client_credentials")

    def role_token(self) -> str:
        """A role token of the role key, reused for a while."""
        now = self.c.clock.now()
        if self._role_token is None or now - self._role_token[0] > ROLE_TOKEN_REUSE_SECONDS:
            token = self.expect(self.role_client_credentials()).json()["access_token"]
            self._role_token = (now, str(token))
        return self._role_token[1]

    @property
    def ci_role(self) -> str:
        """The CI role, owned by the sessions lister (a few live sessions, as a real owner
        has), not the demo user: the run opens hundreds of the demo user's sessions with
        the per-user cap lifted, and the exchange reads the role's owner whole."""
        return f"{LISTER}.{CI_ROLE_NAME}"

    def job_token_exchange(self) -> Request:
        """A CI job's token exchange for the demo user's CI role. The role and the
        issuer's keys are set up once; each request carries a new job token (a
        job token is single use)."""
        import jwt

        from chalicelib.security.opaque import random_b62

        if self._ci_key is None:
            self._ci_key = self._ci_setup()
        now = self.c.clock.now()
        claims = {"iss": CI_ISSUER, "sub": CI_SUBJECT, "aud": "tessera", "iat": now,
                  "nbf": now, "exp": now + 300, "jti": random_b62(22),
                  "repository": "acme/app", "repository_owner": "acme"}
        # Keep the cached keys fresh however long the run (what a warm instance has).
        self.c.issuer_keys.remember(CI_ISSUER, {"keys": [self._ci_key[1]]})
        token = jwt.encode(claims, self._ci_key[0], algorithm="RS256",
                           headers={"kid": self._ci_key[1]["kid"]})
        return self.form("/oauth/token", grant_type=TOKEN_EXCHANGE, subject_token=token,
                         subject_token_type="urn:ietf:params:oauth:token-type:id_token",
                         audience=f"urn:tessera:role:{self.ci_role}")

    def _ci_setup(self) -> tuple[Any, dict[str, Any]]:
        """The CI issuer's key pair, and the role that trusts it (created if absent). An
        RS256 key of 2048 bits, as GitHub Actions and GitLab CI sign their job tokens."""
        import jwt
        from cryptography.hazmat.primitives.asymmetric import rsa

        from chalicelib.storage.roles import Role, TrustPolicy, owner_id_of

        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True),
               "kid": "bench-ci", "alg": "RS256", "use": "sig"}
        roles, name = self.c.roles_repo, self.ci_role
        self.lister_token()                   # the owner exists, with its few sessions
        if roles.get(name) is None:
            policy = TrustPolicy(id="bench", issuer=CI_ISSUER, audience="tessera",
                                 subject=CI_SUBJECT, claims={"repository_owner": "acme"})
            roles.create(Role(name=name, owner=str(owner_id_of(name)), description="bench CI",
                              created_at=self.c.clock.now(),
                              policies={"p": f"data:get@urn:tessera:data:{LISTER}.*"},
                              trust={policy.id: policy}))
        return private, jwk

    def get(self, path: str, token: str | None = None) -> Request:
        return Request("GET", path, self.bearer(token) if token else {})

    def introspect(self, token: str) -> Request:
        return self.form("/oauth/introspect", self.basic(), token=token)

    def password_grant(self) -> Request:
        return self.form("/oauth/token", grant_type="password", client_id=self.cli,
                         username=self.username, password=self.password,
                         scope="openid profile email tokens:read tokens:manage sessions:manage")

    def expect(self, request: Request, status: int = 200) -> Response:
        """Send a setup request; it must succeed."""
        response = self.send(request)
        if response.status != status:
            raise AssertionError(f"{request.method} {request.path}: {response.status} "
                                 f"{response.body[:300]!r}")
        return response

    # -- state shared between requests -------------------------------------------------

    def login(self) -> dict[str, Any]:
        """The token response of one password grant, reused for a while."""
        now = self.c.clock.now()
        if self._login is None or now - self._login[0] > TOKEN_REUSE_SECONDS:
            self._login = (now, self.expect(self.password_grant()).json())
        return self._login[1]

    @property
    def access_token(self) -> str:
        return str(self.login()["access_token"])

    def _open_session(self, username: str,
                      scope: str = SESSION_SCOPE) -> tuple[Any, Any, Any, str]:
        """(user, client, session, refresh token) of a new session, made through the
        services: no password hash, no request."""
        c = self.c
        user = c.identities.find_user(username)
        client = c.clients.get(self.cli)
        session = c.sessions.new_session(user_id=user.id, client_id=self.cli, scope=scope,
                                         device={"ip": "bench"})
        refresh_token = c.sessions.mint_refresh_token(session)
        c.sessions.create(session, refresh_token)
        return user, client, session, refresh_token

    def fresh_session(self, scope: str = SESSION_SCOPE) -> dict[str, Any]:
        """A new session's token response: for cases that end a session and so need a
        new one per request."""
        user, client, session, refresh_token = self._open_session(self.username, scope)
        body: dict[str, Any] = self.c.issuer.session_response(
            issuer=self.c.settings.issuer, user=user, client=client, session=session,
            refresh_token=refresh_token, scope=session.scope)
        return body

    def lister_token(self) -> str:
        """An access token of a second user who has ``LISTED_SESSIONS`` live sessions,
        so that what ``/v1/sessions`` lists does not grow with the sessions other
        cases open for the demo user."""
        c, now = self.c, self.c.clock.now()
        if self._lister is None:
            if c.identities.find_user(LISTER) is None:
                c.identities.create_user(LISTER, "password4lister", email="lister@example.com")
            opened = [self._open_session(LISTER) for _ in range(LISTED_SESSIONS)]
            self._lister = (opened[-1][0], opened[-1][2], 0, "")
        user, session, minted_at, token = self._lister
        if not token or now - minted_at > TOKEN_REUSE_SECONDS:
            token = c.issuer.access_token(issuer=c.settings.issuer, subject=user.id,
                                          client_id=self.cli, scope=session.scope,
                                          session_id=session.id, auth_time=session.created_at)
            self._lister = (user, session, now, token)
        return token

    def stored_session(self, scope: str = SESSION_SCOPE) -> dict[str, Any]:
        """A new session's item as the sessions table holds it (DynamoDB JSON): the
        template of the stack's floor (``bench.warm_floor``)."""
        c = self.c
        key = {"id": {"S": self.fresh_session_id(scope)}}
        item: dict[str, Any] = c.dynamodb().get_item(TableName=c.settings.table("sessions"),
                                                     Key=key)["Item"]
        return item

    def fresh_session_id(self, scope: str = SESSION_SCOPE) -> str:
        from chalicelib.security.opaque import REFRESH

        return str(REFRESH.parse(self.fresh_session(scope)["refresh_token"]))

    def refresh_token(self, scope: str = SESSION_SCOPE) -> str:
        """The current refresh token of a young session of ``scope`` (fewer than
        ``YOUNG_ROTATIONS`` rotations): a session item grows with every rotation, see
        ``bench.work``."""
        current = self._refresh.get(scope)
        if current is None or current[1] >= YOUNG_ROTATIONS:
            current = self._refresh[scope] = (str(self.fresh_session(scope)["refresh_token"]), 0)
        return current[0]

    def rotated(self, response: Response, scope: str = SESSION_SCOPE) -> None:
        """The refresh token a refresh of ``scope``'s session answered becomes its current one."""
        self._refresh[scope] = (str(response.json()["refresh_token"]), self._refresh[scope][1] + 1)

    def refreshed_with_id_token(self, response: Response) -> None:
        """A refresh of an openid session: it must answer an RS256 ID token (the client
        registered no algorithm, OIDC Core §12.2); then the rotation."""
        alg = jws_alg(response.json().get("id_token"))
        if alg != "RS256":
            raise AssertionError(f"refresh: an RS256 ID token expected, got {alg}: {response.body[:300]!r}")
        self.rotated(response)

    def refreshed_without_id_token(self, response: Response) -> None:
        """A refresh of a session without openid: no ID token; then the rotation."""
        if "id_token" in response.json():
            raise AssertionError(f"refresh_no_openid: an ID token answered: {response.body[:300]!r}")
        self.rotated(response, SESSION_SCOPE_NO_OPENID)

    def id_token_signature(self) -> Callable[[], None]:
        """One RS256 signature of an ID token's claims, as a refresh signs them
        (``TokenIssuer.id_token``: the same claims, the service's own current RS256 key,
        ``Keyring.sign``): what a refresh of an openid session must do on top of its
        bare DynamoDB call(s)."""
        from chalicelib.security.opaque import random_b62

        c, now = self.c, self.c.clock.now()
        claims = {"iss": c.settings.issuer, "sub": random_b62(22), "aud": self.cli, "azp": self.cli,
                  "exp": now + 300, "iat": now, "auth_time": now, "sid": random_b62(22),
                  "amr": ["pwd"], "acr": "urn:tessera:acr:pwd", "at_hash": random_b62(22)}
        keyring = c.keyring

        def sign() -> None:
            keyring.sign(claims, typ="JWT", alg="RS256")

        return sign

    def device_authorization(self) -> dict[str, Any]:
        started: dict[str, Any] = self.expect(self.form(
            "/oauth/device_authorization", client_id=self.cli, scope="openid profile")).json()
        return started

    def approved_device_code(self) -> str:
        started = self.device_authorization()
        flow, user = self.c.device_flow, self.c.identities.find_user(self.username)
        request = flow.find(self.c.devices_repo.table.get(
            self.c.devices_repo.code_key(started["user_code"].replace("-", ""))))
        flow.approve(request, user, request.scope, auth_time=self.c.clock.now())
        return str(started["device_code"])

    def web_cookies(self) -> dict[str, str]:
        """A browser signed in on the /device page: its cookies (signed in once)."""
        if self._web is None:
            first = self.expect(Request("GET", "/device"))
            jar = first.cookies()
            started = self.device_authorization()
            signed_in = self.send(self.device_form(jar, user_code=started["user_code"],
                                                   username=self.username, password=self.password))
            if signed_in.status != 200:
                raise AssertionError(f"web sign-in failed: {signed_in.status}")
            jar.update(signed_in.cookies())
            self._web = jar
        return self._web

    def web_session(self) -> Any:
        """The session of the signed-in browser of ``web_cookies``."""
        from chalicelib.security.opaque import WEB_SESSION

        session_id = WEB_SESSION.parse(self.web_cookies()["tessera_web"])
        return self.c.sessions_repo.get(session_id)

    def device_form(self, jar: dict[str, str], **fields: str) -> Request:
        from chalicelib.security.opaque import WEB_SESSION
        from chalicelib.services.web_signin import ANONYMOUS, csrf_token

        session_id = WEB_SESSION.parse(jar.get("tessera_web", "")) or ANONYMOUS
        csrf = csrf_token(jar["tessera_csrf"], session_id)
        cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
        return self.form("/device", {"Cookie": cookie}, csrf=csrf, **fields)


@dataclass(frozen=True)
class BareExtra:
    """Work a request cannot do without, beyond its DynamoDB calls: ``label`` names it in
    the tables; ``timed(world)`` builds the callable the harness times in each round,
    after the case's requests (``companions``)."""

    label: str
    timed: Callable[[World], Callable[[], None]]


@dataclass(frozen=True)
class Case:
    """One kind of request: how to build it and what it must answer."""

    name: str                                   # key in tables, JSON and tests
    label: str                                  # what the table shows
    prepare: Callable[[World], Request]
    status: int = 200
    after: Callable[[World, Response], None] | None = None
    costly_setup: bool = False                  # prepare hashes a password or the like
    cpu_budget_ms: float | None = None          # SPEC §9 / issue 6, where one is stated
    # issue 16: CPU ≤ this × the bare botocore call(s) the request makes, where stated
    bare_budget: float | None = None
    replay_bare: bool = True                    # its DynamoDB calls are replayed bare (bench.bare)
    # what the request must do besides its bare call(s), measured beside it and added to
    # them before the ratio (issue 27: a refresh's RS256 ID-token signature)
    bare_extra: BareExtra | None = None
    # issue 27: own CPU (DynamoDB client excluded) ≤ this; where set, ``cpu_budget_ms``
    # judges all of the request's CPU, the DynamoDB client included
    own_budget_ms: float | None = None

    def request(self, world: World) -> Request:
        return self.prepare(world)

    def check(self, world: World, response: Response) -> Response:
        """The response must have the case's status; then the case's follow-up runs."""
        if response.status != self.status:
            raise AssertionError(f"{self.name}: expected {self.status}, got {response.status}: "
                                 f"{response.body[:300]!r}")
        if self.after is not None:
            self.after(world, response)
        return response

    def serve(self, world: World) -> Response:
        return self.check(world, world.send(self.request(world)))


def _device_poll(world: World, device_code: str) -> Request:
    return world.form("/oauth/token", grant_type=DEVICE_GRANT, client_id=world.cli,
                      device_code=device_code)


def _code_exchange(world: World) -> Request:
    """A fresh authorization code of the demo web app (issued through the services,
    not measured), redeemed with its PKCE verifier."""
    import base64 as b64
    import hashlib

    app = next(cl for cl in world.seed["clients"] if "authorization_code" in cl.get("grant_types", []))
    verifier = "bench-verifier-" + "v" * 40
    challenge = b64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect_uri = app["redirect_uris"][0]
    authorization = world.c.authorization
    request = authorization.parse({
        "response_type": "code", "client_id": app["client_id"], "redirect_uri": redirect_uri,
        "scope": "openid profile email", "nonce": "bench", "code_challenge": challenge,
        "code_challenge_method": "S256"})
    user = world.c.identities.find_user(world.username)
    web = world.web_session()
    authorization.remember_consent(user, request.client, request.scope)
    code = authorization.issue_code(request, user, request.scope, web.auth_time, web.id)
    raw = b64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    return world.form("/oauth/token", {"Authorization": f"Basic {raw}"},
                      grant_type="authorization_code", code=code, redirect_uri=redirect_uri,
                      code_verifier=verifier)


def _delegation(world: World) -> Request:
    """The demo web app (registered with ``delegate``) exchanges the demo user's
    access token for one acting for them; the consent is recorded through the
    services once (setup, not measured)."""
    import base64 as b64

    app = next(cl for cl in world.seed["clients"] if cl.get("delegate"))
    user = world.c.identities.find_user(world.username)
    world.c.consents_repo.grant(user.id, app["client_id"], ("openid", "profile", "email"),
                                world.c.clock.now())
    raw = b64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    return world.form("/oauth/token", {"Authorization": f"Basic {raw}"},
                      grant_type=TOKEN_EXCHANGE, subject_token=world.access_token,
                      subject_token_type="urn:ietf:params:oauth:token-type:access_token")


def _approve_on_page(world: World) -> Request:
    jar = world.web_cookies()
    started = world.device_authorization()
    return world.device_form(jar, user_code=started["user_code"], action="approve")


CORE_CASES: list[Case] = [
    Case("discovery", "GET /.well-known/openid-configuration",
         lambda w: w.get("/.well-known/openid-configuration"), cpu_budget_ms=0.5),
    Case("jwks", "GET /.well-known/jwks.json", lambda w: w.get("/.well-known/jwks.json"),
         cpu_budget_ms=0.5),
    # not replayed bare: each extra request hashes a password, and the hash is its CPU
    Case("password_grant", "POST /oauth/token password", lambda w: w.password_grant(),
         costly_setup=True, replay_bare=False),
    # a session with openid: the refresh answers an RS256 ID token too (OIDC Core §12.2)
    Case("refresh", "POST /oauth/token refresh_token (young session, openid: RS256 ID token)",
         lambda w: w.form("/oauth/token", grant_type="refresh_token", client_id=w.cli,
                          refresh_token=w.refresh_token()),
         after=World.refreshed_with_id_token, cpu_budget_ms=2.0, bare_budget=BARE_BUDGET,
         bare_extra=BareExtra("one RS256 signature of an ID token", World.id_token_signature)),
    Case("refresh_no_openid", "POST /oauth/token refresh_token (young session, no openid)",
         lambda w: w.form("/oauth/token", grant_type="refresh_token", client_id=w.cli,
                          refresh_token=w.refresh_token(SESSION_SCOPE_NO_OPENID)),
         after=World.refreshed_without_id_token, cpu_budget_ms=2.0, bare_budget=BARE_BUDGET),
    Case("device_authorization", "POST /oauth/device_authorization",
         lambda w: w.form("/oauth/device_authorization", client_id=w.cli, scope="openid profile")),
    Case("device_poll_pending", "POST /oauth/token device_code (pending)",
         lambda w: _device_poll(w, w.device_authorization()["device_code"]), status=400,
         cpu_budget_ms=2.0),
    Case("device_poll_approved", "POST /oauth/token device_code (approved)",
         lambda w: _device_poll(w, w.approved_device_code())),
    Case("client_credentials", "POST /oauth/token client_credentials (service client)",
         lambda w: w.form("/oauth/token", w.basic(), grant_type="client_credentials"),
         cpu_budget_ms=2.0),
    Case("introspect_jwt", "POST /oauth/introspect (JWT)", lambda w: w.introspect(w.access_token),
         bare_budget=BARE_BUDGET),
    Case("introspect_refresh", "POST /oauth/introspect (refresh token)",
         lambda w: w.introspect(w.refresh_token())),
    Case("me_jwt", "GET /v1/me (JWT)", lambda w: w.get("/v1/me", w.access_token),
         bare_budget=BARE_BUDGET),
    Case("token_info_jwt", "GET /v1/token-info (JWT)", lambda w: w.get("/v1/token-info", w.access_token)),
    Case("userinfo_jwt", "GET /oauth/userinfo (JWT)", lambda w: w.get("/oauth/userinfo", w.access_token)),
    Case("revoke_refresh", "POST /oauth/revoke (refresh token)",
         lambda w: w.form("/oauth/revoke", client_id=w.cli, token=w.fresh_session()["refresh_token"])),
    Case("logout", "POST /v1/logout (JWT)",
         lambda w: Request("POST", "/v1/logout", w.bearer(w.fresh_session()["access_token"])),
         status=204),
    Case("sessions_list", "GET /v1/sessions (JWT, 5 sessions)",
         lambda w: w.get("/v1/sessions", w.lister_token())),
    Case("session_end", "DELETE /v1/sessions/{id} (JWT)",
         lambda w: Request("DELETE", f"/v1/sessions/{w.fresh_session_id()}", w.bearer(w.access_token)),
         status=204),
    Case("device_page", "GET /device?user_code=...",
         lambda w: w.get("/device?user_code=WDJB-MJHT")),
    Case("device_page_approve", "POST /device approve (signed in)", _approve_on_page),
    Case("authorization_code", "POST /oauth/token authorization_code (PKCE)", _code_exchange),
]

# Personal access tokens (SPEC §5): generating one, `/v1/me` with it, introspecting it.
PAT_CASES: list[Case] = [
    # at most 100 PATs per user: the few iterations of a costly case
    Case("pat_generate", "POST /v1/tokens (JWT)", lambda w: w.new_pat(), status=201, costly_setup=True),
    Case("me_pat", "GET /v1/me (PAT)", lambda w: w.get("/v1/me", w.pat()), cpu_budget_ms=2.0,
         bare_budget=BARE_BUDGET),
    Case("introspect_pat", "POST /oauth/introspect (PAT)", lambda w: w.introspect(w.pat()),
         bare_budget=BARE_BUDGET),
]

# Role keys and role tokens (SPEC §6): the one read of a key, client_credentials with
# it, introspecting it, and a role token on Tessera's own API.
ROLE_CASES: list[Case] = [
    Case("me_role_key", "GET /v1/me (role key)", lambda w: w.get("/v1/me", w.role_key()),
         cpu_budget_ms=2.0, bare_budget=BARE_BUDGET),
    Case("client_credentials_role_key", "POST /oauth/token client_credentials (role key)",
         lambda w: w.role_client_credentials(), cpu_budget_ms=2.0, bare_budget=BARE_BUDGET),
    Case("introspect_role_key", "POST /oauth/introspect (role key)",
         lambda w: w.introspect(w.role_key()), bare_budget=BARE_BUDGET),
    Case("me_role_token", "GET /v1/me (role token)", lambda w: w.get("/v1/me", w.role_token())),
]


# CI federation (SPEC §6): a job token exchanged for a role token, the issuer's keys cached.
FEDERATION_CASES: list[Case] = [
    # issue 27: all of its CPU within 2 ms, its own (DynamoDB client excluded) within 0.5 ms
    Case("token_exchange", "POST /oauth/token token-exchange (CI job token, RS256, keys cached)",
         lambda w: w.job_token_exchange(), cpu_budget_ms=2.0, own_budget_ms=0.5),
]

# Delegation (SPEC §6): an app exchanges a person's access token for one acting for them.
DELEGATION_CASES: list[Case] = [
    Case("delegation", "POST /oauth/token token-exchange (delegation)", _delegation,
         cpu_budget_ms=2.0),
]

CASES: list[Case] = [*CORE_CASES, *PAT_CASES, *ROLE_CASES, *FEDERATION_CASES, *DELEGATION_CASES]


def companions(world: World) -> dict[str, Callable[[], None]]:
    """Per case with a ``bare_extra``: the callable timed in each round after its measured
    requests (``bench.cpu.measure``'s ``companions``)."""
    return {c.name: c.bare_extra.timed(world) for c in CASES if c.bare_extra is not None}


def jws_alg(token: object) -> str | None:
    """The ``alg`` of a compact JWS's header (PyJWT reads it); None for anything else."""
    import jwt

    if not isinstance(token, str):
        return None
    try:
        alg = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError:
        return None
    return alg if isinstance(alg, str) else None


def case(name: str) -> Case:
    for c in CASES:
        if c.name == name:
            return c
    raise KeyError(name)
