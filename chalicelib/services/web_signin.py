"""Browser sign-in for the web pages (``/device``, ``/tokens``): one ``web`` session
and its cookie, shared by every page, and CSRF tokens.

A web session is an ordinary session item with ``kind="web"``: it lives and dies
by the same 24 h / 10 h rules (every request with the cookie is a use), is listed
in ``/v1/sessions`` and ends with ``DELETE /v1/sessions/{id}``. It has no refresh token, so its ``rt_hash``
attribute holds the digest of the cookie token instead (a ``tsb_`` token, whose
digest can never equal that of a ``tsr_`` refresh token, so refresh rotation can
never match a web session).

CSRF: every form of every page carries HMAC(browser secret, session id), where the
browser secret is a random value in its own HttpOnly cookie (``web.browser``). A
cross-site page cannot read that cookie, so it cannot compute the token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.models import Session, User
from chalicelib.security.opaque import WEB_SESSION, digest, random_b62, same_digest
from chalicelib.services import mfa_policy
from chalicelib.services.authn import PasswordSignIn
from chalicelib.services.security_log import NOWHERE, Where
from chalicelib.storage.identities import UsersRepo
from chalicelib.storage.sessions import SessionsRepo, session_from_item
from chalicelib.storage.tables import BatchGet, Transact
from chalicelib.storage.throttle import ThrottleRepo

if TYPE_CHECKING:
    from chalicelib.services.sessions import Sessions


WEB_CLIENT_ID = "tessera-web"   # the client of a browser sign-in session
ANONYMOUS = "anon"
SESSION_COOKIE = "tessera_web"  # the sign-in cookie, the same for every page
TOUCH_EVERY = 60                # seconds: uses closer together than this write once


@dataclass(frozen=True)
class WebSession:
    cookie: str
    session: Session
    user: User
    # What the sign-in still needs before pages may use it (``mfa_policy``):
    # READY (""), SECOND_FACTOR or ENROL.
    needs: str = ""

    @property
    def ready(self) -> bool:
        return self.needs == ""


def new_browser_secret() -> str:
    return random_b62(22)


def csrf_token(browser_secret: str, session_id: str) -> str:
    return hmac.new(browser_secret.encode("ascii"), b"tessera-csrf:" + session_id.encode("ascii"),
                    hashlib.sha256).hexdigest()


def csrf_ok(browser_secret: str, session_id: str, presented: str) -> bool:
    if not browser_secret or not presented:
        return False
    return same_digest(csrf_token(browser_secret, session_id), presented)


class WebSignIn:
    """``sessions`` is called on first need (signing in or out): showing a page to
    a signed-in browser needs only the repositories."""

    def __init__(self, sessions: Callable[[], Sessions], password_signin: PasswordSignIn,
                 clock: Clock, settings: Settings, *, sessions_repo: SessionsRepo,
                 users: UsersRepo, throttle: ThrottleRepo, batch_get: BatchGet,
                 transact: Transact) -> None:
        self._sessions = sessions
        self.password_signin = password_signin
        self.clock = clock
        self.settings = settings
        self.sessions_repo = sessions_repo
        self.users = users
        self.throttle = throttle
        self.batch_get = batch_get
        self.transact = transact

    def sign_in(self, username: str, password: str, source_ip: str, user_agent: str,
                also: Callable[[User, Session], list[dict[str, Any]]] | None = None) -> WebSession:
        """Verify the password (throttled, identical failures) and open a web session.

        One BatchGetItem (user and counters) and one write, like the password grant.
        A user with a second factor gets a session that still needs it (SPEC §11):
        pages show the second step until ``complete``, and the failures stay counted
        until then. ``also``: more writes for the same transaction (the security
        log's entry of a finished sign-in).
        """
        items = self.batch_get(self.password_signin.reads(username, source_ip))
        user, user_counter = self.password_signin.check(username, password, source_ip, items,
                                                        user_agent=user_agent)
        sessions = self._sessions()
        session = sessions.new_session(user_id=user.id, client_id=WEB_CLIENT_ID, scope="",
                                       device={"ip": source_ip, "user_agent": user_agent[:256]},
                                       kind="web", amr=("pwd",))
        cookie = WEB_SESSION.mint(session.id)
        now = self.clock.now()
        needs = mfa_policy.needs(user, session.amr, self.settings, now)
        # The cookie digest goes where a refresh token's would (see the module docstring).
        # A sign-in ready at once is logged in its own transaction (SPEC §11); one
        # that awaits its second factor is logged when ``complete`` finishes it.
        extra = [*self.password_signin.signed_in(user, session, Where(source_ip, user_agent)),
                 *(also(user, session) if also is not None else [])] \
            if needs == mfa_policy.READY else []
        sessions.open_after_signin(session, cookie, user, user_counter, self.throttle, extra,
                                   awaits_second_factor=needs == mfa_policy.SECOND_FACTOR)
        return WebSession(cookie, session, user, needs)

    def complete(self, web: WebSession, method: str,
                 ops: list[dict[str, Any]]) -> WebSession:
        """The second step of a browser sign-in: ``ops`` spend the factor (one
        conditional write each, SPEC §11), and in the same transaction the session
        records it (``upgrade``). Raises ``ConditionFailed`` when any of it no longer
        holds (the factor was spent by a concurrent request, the session ended, a
        lockout began)."""
        writes, done = self.upgrade(web, method)
        self.transact([*ops, *writes])
        log.info(json.dumps({"event": "second_factor_verified", "sid": web.session.id,
                             "user_id": web.user.id, "method": method}))
        return done

    def upgrade(self, web: WebSession, method: str,
                user: User | None = None) -> tuple[list[dict[str, Any]], WebSession]:
        """The writes that record a second factor on a browser sign-in (``amr`` gains
        ``method`` and ``mfa``; a new cookie, since the sign-in gains rights; the
        user's sign-in failures cleared unless a lockout runs), for the caller's
        transaction; and the sign-in as it is once they commit. ``user``: the user
        as it will then be (a factor just enrolled)."""
        session, now = web.session, self.clock.now()
        amr = tuple(dict.fromkeys([*session.amr, method, "mfa"]))
        cookie = WEB_SESSION.mint(session.id)
        counter = self.password_signin.user_counter_key(web.user.username)
        writes = [self.sessions_repo.op_complete_web(session.id, digest(web.cookie),
                                                     digest(cookie), list(amr), now),
                  self.throttle.op_clear_unless_locked(counter, now)]
        after = user or web.user
        done = replace(session, amr=amr, auth_time=now)
        return writes, WebSession(cookie, done, after,
                                  mfa_policy.needs(after, amr, self.settings, now))

    def sign_in_with_passkey(self, user: User, method: str, ops: list[dict[str, Any]],
                             source_ip: str, user_agent: str,
                             also: Callable[[User, Session], list[dict[str, Any]]] | None = None,
                             ) -> WebSession:
        """A sign-in with a passkey as its first factor (SPEC §11): the passkey was
        verified with user verification, so it is two factors at once (RFC 8176
        ``hwk``/``swk`` and ``mfa``). ``ops`` spend the assertion (its challenge,
        its counter): they commit first, in one transaction, and only then does the
        session open (with ``also``, the security log's entry), so nothing opens
        on an assertion that was not spent. (DynamoDB takes one write per item in a
        transaction, and both the counter and the session's record are on the user
        item.) ``ConditionFailed``: the assertion was spent already."""
        self.transact(ops)
        sessions = self._sessions()
        amr = tuple(dict.fromkeys([method, "mfa"]))
        session = sessions.new_session(user_id=user.id, client_id=WEB_CLIENT_ID, scope="",
                                       device={"ip": source_ip, "user_agent": user_agent[:256]},
                                       kind="web", amr=amr)
        cookie = WEB_SESSION.mint(session.id)
        sessions.open(session, cookie, user, also(user, session) if also is not None else [],
                      refusal="The account is not active", signin=True)
        log.info(json.dumps({"event": "passkey_signin", "sid": session.id, "user_id": user.id,
                             "method": method}))
        return WebSession(cookie, session, user,
                          mfa_policy.needs(user, amr, self.settings, self.clock.now()))

    def current(self, cookie: str | None) -> WebSession | None:
        """The live web session a cookie names, with its user; None otherwise."""
        session_id = WEB_SESSION.parse(cookie or "")
        if session_id is None or cookie is None:
            return None
        item = self.sessions_repo.get_item(session_id)
        if not item or item.get("kind") != "web":
            return None
        session = session_from_item(item)
        if not session.alive(self.clock.now()):
            return None
        if not same_digest(str(item.get("rt_hash") or ""), digest(cookie)):
            return None
        user = self.users.get(session.user_id)
        if user is None or not user.active:
            return None
        touched = self._use(session, cookie)
        if touched is None:
            return None
        return WebSession(cookie, touched, user,
                          mfa_policy.needs(user, touched.amr, self.settings, self.clock.now()))

    def _use(self, session: Session, cookie: str) -> Session | None:
        """Every request with the cookie is a use (SPEC §3): the idle deadline moves
        to ``idle`` after it, never past the 24 h cap. To spare a write per page,
        a use within ``TOUCH_EVERY`` seconds of the last recorded one is not
        written, so the deadline is exact to within that much.
        """
        now = self.clock.now()
        if now - session.last_used_at < TOUCH_EVERY:
            return session
        idle = min(now + self.settings.session_idle_seconds, session.expires_at)
        item = self.sessions_repo.touch_web(session.id, digest(cookie), now, idle)
        return session_from_item(item) if item else None

    def sign_out(self, web: WebSession, where: Where = NOWHERE) -> None:
        self._sessions().end_owned(web.session.id, web.user.id, reason="web_sign_out",
                                   where=where, client_id=WEB_CLIENT_ID)
        log.info(json.dumps({"event": "web_sign_out", "sid": web.session.id}))
