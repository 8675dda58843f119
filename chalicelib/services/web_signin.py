"""Browser sign-in for the web pages: a ``web`` session and its cookie, and CSRF tokens.

A web session is an ordinary session item with ``kind="web"``: it lives and dies
by the same 24 h / 10 h rules, is listed in ``/v1/sessions`` and ends with
``DELETE /v1/sessions/{id}``. It has no refresh token, so its ``rt_hash``
attribute holds the digest of the cookie token instead (a ``tsw_`` token, whose
digest can never equal that of a ``tsr_`` refresh token, so refresh rotation can
never match a web session).

CSRF: every form carries HMAC(browser secret, session id), where the browser
secret is a random value in its own HttpOnly cookie and the session id is the
web session's (or ``anon`` before sign-in). A cross-site page can neither read
the cookie nor compute the token (double submit, bound to the session).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.models import Session, User, user_id_for
from chalicelib.security.opaque import WEB_SESSION, digest, random_b62, same_digest
from chalicelib.storage.identities import user_from_item
from chalicelib.storage.sessions import session_from_item

if TYPE_CHECKING:
    from chalicelib.container import Container

WEB_CLIENT_ID = "tessera-web"   # the client of a browser sign-in session
ANONYMOUS = "anon"


@dataclass(frozen=True)
class WebSession:
    cookie: str
    session: Session
    user: User


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
    def __init__(self, c: Container) -> None:
        self.c = c

    def sign_in(self, username: str, password: str, source_ip: str, user_agent: str) -> WebSession:
        """Verify the password (throttled, identical failures) and open a web session.

        One BatchGetItem (user and counters) and one write, like the password grant.
        """
        c, signin = self.c, self.c.password_signin
        user_key, source_key = signin.user_counter_key(username), signin.source_counter_key(source_ip)
        items = c.batch_get({"users": [c.users.key(user_id_for(username))],
                             "throttle": [{"pk": user_key}, {"pk": source_key}]})
        counters = signin.counters(username, source_ip, {i["pk"]: i for i in items["throttle"]})
        found = items["users"]
        user = signin.verify(username, password, source_ip,
                             user_from_item(found[0]) if found else None, counters)
        sessions = c.sessions
        session = sessions.new_session(user_id=user.id, client_id=WEB_CLIENT_ID, scope="",
                                       device={"ip": source_ip, "user_agent": user_agent},
                                       kind="web")
        cookie = WEB_SESSION.mint(session.id)
        # The cookie digest goes where a refresh token's would (see the module docstring).
        if counters[0].failures:
            c.transact([sessions.create_op(session, cookie), c.throttle.op_clear(user_key)])
        else:
            sessions.create(session, cookie)
        return WebSession(cookie, session, user)

    def current(self, cookie: str | None) -> WebSession | None:
        """The live web session a cookie names, with its user; None otherwise."""
        session_id = WEB_SESSION.parse(cookie or "")
        if session_id is None or cookie is None:
            return None
        item = self.c.sessions_repo.get_item(session_id)
        if not item or item.get("kind") != "web":
            return None
        session = session_from_item(item)
        if not session.alive(self.c.clock.now()):
            return None
        if not same_digest(str(item.get("rt_hash") or ""), digest(cookie)):
            return None
        user = self.c.users.get(session.user_id)
        if user is None or not user.active:
            return None
        return WebSession(cookie, session, user)
