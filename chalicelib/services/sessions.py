"""Login sessions and their refresh tokens (SPEC §3; RFC 6749 §6, RFC 9700 §4.14).

A session lives at most ``session_max_seconds`` after login and dies after
``session_idle_seconds`` without use; every refresh is a use and nothing
extends the cap. Refresh tokens rotate on every use in one conditional write.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import ConditionFailed, InvalidGrant, InvalidScope
from chalicelib.models import Session
from chalicelib.security.opaque import REFRESH, digest, new_id, same_digest
from chalicelib.services.authn import BAD_CREDENTIALS
from chalicelib.storage.sessions import SessionsRepo, session_from_item
from chalicelib.storage.throttle import Counter, ThrottleRepo

log = logging.getLogger("tessera")


def fingerprint(token_digest: str) -> str:
    """64 bits of a digest: enough to recognise a retired token, small to store."""
    return token_digest[:16]


def _pad(previous_token: str, length: int) -> bytes:
    return hashlib.shake_256(b"tessera-refresh-successor:" + previous_token.encode("ascii")
                             ).digest(length)


def wrap_successor(previous_token: str, successor: str) -> str:
    """Encrypt the successor under the previous token (a one-time pad from SHAKE-256)."""
    raw = successor.encode("ascii")
    return bytes(a ^ b for a, b in zip(raw, _pad(previous_token, len(raw)), strict=True)).hex()


def unwrap_successor(previous_token: str, wrapped: str) -> str:
    raw = bytes.fromhex(wrapped)
    return bytes(a ^ b for a, b in zip(raw, _pad(previous_token, len(raw)), strict=True)
                 ).decode("ascii")


@dataclass(frozen=True)
class Rotation:
    session: Session
    refresh_token: str
    retried: bool = False     # True: a grace-window retry got the same successor


class Sessions:
    def __init__(self, repo: SessionsRepo, clock: Clock, settings: Settings) -> None:
        self.repo = repo
        self.clock = clock
        self.settings = settings

    # -- login -------------------------------------------------------------------

    def new_session(self, *, user_id: str, client_id: str, scope: str,
                    device: dict[str, str] | None = None, kind: str = "oauth") -> Session:
        now = self.clock.now()
        cap = now + self.settings.session_max_seconds
        return Session(id=new_id(), user_id=user_id, client_id=client_id, scope=scope,
                       created_at=now, expires_at=cap,
                       idle_deadline=min(now + self.settings.session_idle_seconds, cap),
                       last_used_at=now, kind=kind, device=dict(device or {}))

    def mint_refresh_token(self, session: Session) -> str:
        return REFRESH.mint(session.id)

    def create_op(self, session: Session, refresh_token: str | None) -> dict[str, Any]:
        """The write that creates a session, for a caller's transaction."""
        return self.repo.op_create(session, digest(refresh_token) if refresh_token else None)

    def create(self, session: Session, refresh_token: str | None) -> None:
        self.repo.create(session, digest(refresh_token) if refresh_token else None)
        self._log("session_created", session)

    def open_after_signin(self, session: Session, secret: str, user_counter: Counter,
                          throttle: ThrottleRepo, transact: Callable[[list[Any]], None]) -> None:
        """Write a session created by a password sign-in, and clear the user's
        failures, in one transaction that holds only while no lockout runs: a
        lockout begun by failures counted during this request's password hash
        refuses it (SPEC §8), with the answer any failed sign-in gets.
        """
        try:
            transact([self.create_op(session, secret),
                      throttle.op_clear_unless_locked(user_counter.key, self.clock.now())])
        except ConditionFailed as locked:
            log.info(json.dumps({"event": "signin_failed", "user_known": True, "blocked": True,
                                 "detail": "locked during the password check"}))
            raise InvalidGrant(BAD_CREDENTIALS) from locked
        self._log("session_created", session)

    # -- refresh -------------------------------------------------------------------

    def rotate(self, presented: str, client_id: str, scopes: tuple[str, ...] = ()) -> Rotation:
        """Exchange a refresh token for its successor (RFC 6749 §6, rotation per
        RFC 9700 §4.14.2). One conditional write on the success path, no read.
        """
        session_id = REFRESH.parse(presented)
        if session_id is None:
            raise InvalidGrant("Invalid refresh token", detail="malformed refresh token")
        now = self.clock.now()
        presented_digest = digest(presented)
        successor = REFRESH.mint(session_id)
        idle = now + self.settings.session_idle_seconds
        try:
            item = self.repo.rotate(
                session_id, presented=presented_digest, successor=digest(successor),
                wrap=wrap_successor(presented, successor),
                fingerprint=fingerprint(presented_digest), client_id=client_id, now=now,
                idle_deadline=idle, scopes=scopes,
                max_rotations=self.settings.session_max_rotations)
        except ConditionFailed as lost:
            return self._rotation_refused(presented, presented_digest, client_id, scopes,
                                          lost.item, now)
        return Rotation(session_from_item(item), successor)

    def _rotation_refused(self, presented: str, presented_digest: str, client_id: str,
                          scopes: tuple[str, ...], item: dict[str, Any] | None,
                          now: int) -> Rotation:
        if item is None:
            raise InvalidGrant("Invalid refresh token", detail="no such session")
        session = session_from_item(item)
        if item.get("client_id") != client_id:
            raise InvalidGrant("Invalid refresh token", detail="issued to another client")
        if not session.alive(now):
            raise InvalidGrant("Refresh token expired", detail="session idle or past its cap")
        current = same_digest(str(item.get("rt_hash") or ""), presented_digest)
        if current and not set(scopes) <= set(item.get("scopes") or ()):
            raise InvalidScope("The requested scope exceeds the scope of the session")
        if current and int(item.get("rt_gen") or 0) >= self.settings.session_max_rotations:
            raise InvalidGrant("This session has been refreshed too many times; sign in again",
                               detail="rotation limit")
        prev = str(item.get("rt_prev_hash") or "")
        rotated_at = int(item.get("rt_rotated_at") or 0)
        grace = self.settings.refresh_grace_seconds
        if grace > 0 and prev and same_digest(prev, presented_digest) and now - rotated_at <= grace:
            successor = unwrap_successor(presented, str(item["rt_next_wrap"]))
            if same_digest(digest(successor), str(item.get("rt_hash", ""))):
                # A retry of a lost response: the same successor, no new family member.
                return Rotation(session, successor, retried=True)
        retired = item.get("rt_retired") or set()
        if fingerprint(presented_digest) in retired:
            # Reuse of a rotated-out token: the family may be stolen; end the session.
            self.repo.delete(session.id)
            self._log("refresh_token_reuse", session, rotated_at=rotated_at)
            raise InvalidGrant("Refresh token was already used; the session has ended",
                               detail="refresh token reuse")
        raise InvalidGrant("Invalid refresh token", detail="unknown refresh token for session")

    # -- reading and ending ------------------------------------------------------------

    def live(self, session_id: str) -> Session | None:
        """The session if it exists and is alive now (TTL is lazy: always check)."""
        session = self.repo.get(session_id)
        if session is None or not session.alive(self.clock.now()):
            return None
        return session

    def end(self, session_id: str, reason: str = "logout") -> bool:
        old = self.repo.delete(session_id)
        if old:
            self._log("session_ended", session_from_item(old), reason=reason)
        return old is not None

    def end_owned(self, session_id: str, user_id: str, reason: str) -> bool:
        """End one of the user's own live sessions (one conditional write)."""
        ended = self.repo.delete_owned(session_id, user_id, self.clock.now())
        if ended:
            log.info(json.dumps({"event": "session_ended", "sid": session_id, "user_id": user_id,
                                 "reason": reason}))
        return ended

    def refresh_token_is_current(self, item: dict[str, Any], token: str) -> bool:
        return same_digest(str(item.get("rt_hash") or ""), digest(token))

    def list_for_user(self, user_id: str) -> list[Session]:
        now = self.clock.now()
        found = []
        for item in self.repo.for_user(user_id):
            item.setdefault("user_id", user_id)
            item.setdefault("scope", "")
            session = session_from_item(item)
            if session.alive(now):
                found.append(session)
        return found

    def end_all_for_user(self, user_id: str, reason: str) -> int:
        return sum(1 for s in self.list_for_user(user_id) if self.end(s.id, reason))

    def _log(self, event: str, session: Session, **extra: Any) -> None:
        log.info(json.dumps({"event": event, "sid": session.id, "user_id": session.user_id,
                             "client_id": session.client_id, **extra}))
