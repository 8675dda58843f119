"""Browser sign-in for the ``/tokens`` page.

A sign-in is a session of kind ``web`` in the sessions table; the cookie holds a
``tsw_`` token that names the session, and only its digest is stored (in the
session's ``rt_hash``). Checking a cookie is one round trip: the session and its
user in one BatchGetItem.

CSRF: before sign-in, a double-submit cookie; after it, a token derived from
the session cookie (an attacker who cannot read the cookie cannot derive it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.errors import Forbidden, InvalidGrant
from chalicelib.models import Session, User, user_id_for
from chalicelib.security.opaque import WEB_SESSION, digest, same_digest
from chalicelib.storage.identities import user_from_item
from chalicelib.storage.sessions import session_from_item

if TYPE_CHECKING:
    from chalicelib.container import Container

log = logging.getLogger("tessera")

WEB_CLIENT_ID = "tessera-web"
SESSION_COOKIE = "tessera_tokens"
CSRF_COOKIE = "tessera_tokens_csrf"


@dataclass(frozen=True)
class WebUser:
    session: Session
    user: User
    cookie: str

    @property
    def csrf(self) -> str:
        return csrf_for(self.cookie)


def csrf_for(cookie: str) -> str:
    return hashlib.sha256(b"tessera-csrf:" + cookie.encode("ascii")).hexdigest()[:40]


def new_csrf() -> str:
    return secrets.token_hex(20)


def check_csrf(expected: str | None, presented: str | None) -> None:
    if not expected or not presented or not hmac.compare_digest(expected.encode(), presented.encode()):
        raise Forbidden("The form expired or did not come from this page; reload and try again")


def is_loopback_http(issuer: str) -> bool:
    """Plain HTTP is accepted only on the local runner's loopback address."""
    for host in ("http://127.0.0.1", "http://localhost", "http://[::1]"):
        if issuer == host or issuer.startswith(host + ":") or issuer.startswith(host + "/"):
            return True
    return False


class WebSignIn:
    def __init__(self, c: Container) -> None:
        self.c = c

    def sign_in(self, username: str, password: str, source: str, user_agent: str) -> WebUser:
        """Password sign-in with the shared throttle; every failure looks the same."""
        c, signin = self.c, self.c.password_signin
        found = c.batch_get({
            "users": [c.users.key(user_id_for(username))],
            "throttle": [{"pk": signin.user_counter_key(username)},
                         {"pk": signin.source_counter_key(source)}],
        })
        counters = signin.counters(username, source, {i["pk"]: i for i in found["throttle"]})
        user_item = found["users"][0] if found["users"] else None
        try:
            user = signin.verify(username, password, source,
                                 user_from_item(user_item) if user_item else None, counters)
        except InvalidGrant as exc:
            raise Forbidden("Invalid username or password") from exc
        session = c.sessions.new_session(user_id=user.id, client_id=WEB_CLIENT_ID, scope="",
                                         device={"ip": source, "user_agent": user_agent[:256]},
                                         kind="web")
        cookie = WEB_SESSION.mint(session.id)
        c.sessions.create(session, cookie)
        return WebUser(session, user, cookie)

    def current(self, cookie: str | None) -> WebUser | None:
        session_id = WEB_SESSION.parse(cookie or "")
        if cookie is None or session_id is None:
            return None
        c = self.c
        item = c.sessions_repo.get_item(session_id)
        if not item:
            return None
        session = session_from_item(item)
        if session.kind != "web" or not same_digest(str(item.get("rt_hash") or ""), digest(cookie)) \
                or not session.alive(c.clock.now()):
            return None
        user = c.users.get(session.user_id)
        if user is None or not user.active:
            return None
        return WebUser(session, user, cookie)

    def sign_out(self, web: WebUser) -> None:
        self.c.sessions.end(web.session.id, reason="web_sign_out")
        log.info(json.dumps({"event": "web_sign_out", "sid": web.session.id}))
