"""Login sessions and their refresh tokens (SPEC §3; RFC 6749 §6, RFC 9700 §4.14).

A session lives at most ``session_max_seconds`` after login and dies after
``session_idle_seconds`` without use; every refresh is a use and nothing
extends the cap. Refresh tokens rotate on every use in one conditional write.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from chalicelib.services.notices import Notices

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import (
    ConditionFailed,
    InvalidGrant,
    InvalidScope,
    InvalidTarget,
    StorageContended,
)
from chalicelib.models import Session, User
from chalicelib.security.opaque import (
    ID_LEN,
    REFRESH,
    b62decode,
    b62encode,
    digest,
    is_base62,
    random_b62,
    same_digest,
)
from chalicelib.services.notices import device_fingerprint, remembered
from chalicelib.services.security_log import NOWHERE, SecurityLog, Where
from chalicelib.storage.identities import MAX_EVICTED, UsersRepo, user_from_item
from chalicelib.storage.sessions import SessionsRepo, session_from_item
from chalicelib.storage.tables import Transact
from chalicelib.storage.throttle import Counter, ThrottleRepo

# A session id is 10 random base62 characters (~59 bits; ids are unguessable,
# not secret) then the session's cap in 6: a refresh token names its session, so
# rotation knows the cap without a read and clamps the idle deadline and the
# ttl to it (one write, SPEC §9).
_CAP_LEN = 6
_WRAP_INFO = b"tessera refresh successor v1"
_NONCE_LEN = 12
# Tries of a sign-in that loses to concurrent sign-ins of the same user at the
# session cap (each loser learns the map as it now is from the failed condition).
OPEN_ATTEMPTS = 8


def new_session_id(cap: int) -> str:
    return random_b62(ID_LEN - _CAP_LEN) + b62encode(cap, _CAP_LEN)


def cap_of(session_id: str, now: int, max_seconds: int) -> int | None:
    """The cap a session id carries, or None for an id that carries none (a
    session created before ids carried it: whatever its tail decodes to is then
    implausible but for a chance of about 1 in 600,000, in which case that
    session's idle deadline is clamped early).
    """
    tail = session_id[-_CAP_LEN:]
    if len(session_id) != ID_LEN or not is_base62(tail):
        return None
    value = b62decode(tail)
    return value if now < value <= now + max_seconds else None


def fingerprint(token_digest: str) -> str:
    """64 bits of a digest: enough to recognise a retired token, small to store."""
    return token_digest[:16]


def _sealer(previous_token: str) -> AESGCM:
    # Imported here: only a rotation seals or opens, and /v1/me's cold start needs neither.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    # The previous token carries 128 random bits; HKDF (RFC 5869) makes a key of them.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=_WRAP_INFO).derive(previous_token.encode("ascii"))
    return AESGCM(key)


def wrap_successor(previous_token: str, successor: str, session_id: str) -> str:
    """Seal the successor (AES-GCM, the session id as associated data), so that
    only whoever presents the previous token can open it, and any change of the
    stored wrap is detected.
    """
    nonce = os.urandom(_NONCE_LEN)
    sealed = _sealer(previous_token).encrypt(nonce, successor.encode("ascii"),
                                             session_id.encode("ascii"))
    return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unwrap_successor(previous_token: str, wrapped: str, session_id: str) -> str | None:
    """The successor sealed by ``wrap_successor``; None if the wrap does not open."""
    from cryptography.exceptions import InvalidTag

    try:
        raw = base64.urlsafe_b64decode(wrapped.encode("ascii"))
        plain = _sealer(previous_token).decrypt(raw[:_NONCE_LEN], raw[_NONCE_LEN:],
                                                session_id.encode("ascii"))
        return plain.decode("ascii")
    except (InvalidTag, ValueError, binascii.Error, UnicodeError):
        return None


@dataclass(frozen=True)
class Rotation:
    session: Session
    refresh_token: str
    scope: str                # the access token's scope: within the session's grant
    retried: bool = False     # True: a grace-window retry got the same successor


class Sessions:
    def __init__(self, repo: SessionsRepo, clock: Clock, settings: Settings, *,
                 users: UsersRepo, transact: Transact,
                 security_log: SecurityLog | None = None,
                 notices: Callable[[], Notices] | None = None) -> None:
        self.repo = repo
        self.clock = clock
        self.settings = settings
        self.users = users
        self.transact = transact
        # The owner's security log (SPEC §11): every session end; None in unit tests.
        self.security_log = security_log
        # Tells the owner of a sign-in from a device not seen before; None in unit tests.
        self._notices = notices

    def ended_op(self, user_id: str, session_id: str, client_id: str, reason: str,
                 where: Where = NOWHERE) -> list[dict[str, Any]]:
        """The ``session_ended`` entry, for the transaction that ends the session."""
        if self.security_log is None:
            return []
        detail = {"session_id": session_id, "reason": reason,
                  **({"client_id": client_id} if client_id else {})}
        return [self.security_log.op(user_id, "session_ended", where, detail)]

    def _record_ended(self, session: Session, reason: str) -> None:
        """The entry of an end that its one conditional DeleteItem returned (ALL_OLD
        tells whose session it was, which a transaction could not): one PutItem after."""
        if self.security_log is not None:
            self.security_log.record(session.user_id, "session_ended", NOWHERE,
                                     {"session_id": session.id, "client_id": session.client_id,
                                      "reason": reason})

    # -- login -------------------------------------------------------------------

    def new_session(self, *, user_id: str, client_id: str, scope: str,
                    device: dict[str, str] | None = None, kind: str = "oauth",
                    auth_time: int | None = None, resources: tuple[str, ...] = (),
                    amr: tuple[str, ...] = ("pwd",)) -> Session:
        """A session starting now. ``auth_time``: when the person authenticated, if
        before now (a device approved from an older browser sign-in).
        """
        now = self.clock.now()
        cap = now + self.settings.session_max_seconds
        return Session(id=new_session_id(cap), user_id=user_id, client_id=client_id,
                       scope=scope, created_at=now, expires_at=cap,
                       idle_deadline=min(now + self.settings.session_idle_seconds, cap),
                       last_used_at=now, kind=kind, device=dict(device or {}),
                       auth_time=auth_time or now, resources=tuple(sorted(resources)),
                       amr=amr)

    def mint_refresh_token(self, session: Session) -> str:
        return REFRESH.mint(session.id)

    def create_op(self, session: Session, refresh_token: str | None) -> dict[str, Any]:
        """The write that creates a session item (see ``open`` for the whole creation)."""
        return self.repo.op_create(session, digest(refresh_token) if refresh_token else None)

    def create(self, session: Session, refresh_token: str | None) -> None:
        """Write a session item alone, not recorded on its user: for tests and
        tools. Sign-ins use ``open``.
        """
        self.repo.create(session, digest(refresh_token) if refresh_token else None)
        self._log("session_created", session)

    def open(self, session: Session, secret: str | None, user: User,
             also: Sequence[dict[str, Any]] = (), *,
             refusal: str = "The account is not active", mfa_asked_at: int = 0,
             signin: bool = False) -> None:
        """Create a session and record it on its user, in one transaction with
        the caller's own writes (``also``): all or nothing.

        The user's condition (see ``UsersRepo.op_add_session``) makes a sign-in
        that raced a disable, a narrowing or a reset fail here with
        ``invalid_grant`` (``refusal`` is its description); so does a failing
        condition of the caller's own writes (a lockout begun meanwhile, say).

        At ``max_sessions_per_user`` recorded sessions, the oldest-created ones
        (``evictions``) end in the same transaction. A sign-in that lost only to
        concurrent sign-ins of the same user (the map changed, the user did not)
        plans again from the user as it now is; ``StorageContended`` (503) if it
        keeps losing.

        ``signin``: the person signed in just now (a password or a passkey, not a
        code or a device grant redeemed after a browser sign-in): a device not seen
        before (``services.notices``) is remembered on the user in the same
        update, and the owner is mailed once the transaction committed.
        """
        limit = max(1, self.settings.max_sessions_per_user)
        device = session.device or {}
        fingerprint = device_fingerprint(device.get("ip", ""), device.get("user_agent", "")) \
            if signin else ""
        for attempt in range(OPEN_ATTEMPTS):
            now = self.clock.now()
            evicted = evictions(user, limit, now)
            # Those whose cap has not passed may be live: their items go too.
            ended = [sid for sid in evicted if (user.sessions or {})[sid] > now]
            seen = remembered(user.seen_devices, fingerprint) if fingerprint else None
            ops = [self.create_op(session, secret),
                   self.users.op_add_session(user, session.id, session.expires_at, now,
                                             limit=limit, evict=evicted,
                                             mfa_asked_at=mfa_asked_at, seen_devices=seen),
                   *(self.repo.op_end(sid) for sid in ended),
                   # each evicted session's end is logged in the same transaction
                   *(op for sid in ended
                     for op in self.ended_op(user.id, sid, "", "session_cap")),
                   *also]
            try:
                self.transact(ops)
                break
            except ConditionFailed as lost:
                if lost.item is not None and lost.item.get("id") == session.id \
                        and lost.item.get("client_id") == session.client_id:
                    # The session's fresh random id already exists: an SDK retry of this very
                    # transaction whose first try committed (all or nothing): it is done.
                    self._log("session_created", session)
                    return
                moved_on = _same_user_other_sessions(user, lost.item)
                if moved_on is None:
                    raise InvalidGrant(refusal, detail="user disabled or changed, or locked out, "
                                                       "during sign-in") from lost
                if attempt + 1 == OPEN_ATTEMPTS:
                    raise StorageContended(detail="concurrent sign-ins kept changing the "
                                                  "user's sessions") from lost
                user = moved_on
        for sid in ended:
            log.info(json.dumps({"event": "session_ended", "sid": sid, "user_id": user.id,
                                 "reason": "session_cap"}))
        self._log("session_created", session)
        # After the commit; the first device an account signs in from is only remembered.
        if seen is not None and user.seen_devices and self._notices is not None:
            self._notices().new_signin(user, device.get("ip", ""), device.get("user_agent", ""))

    def open_after_signin(self, session: Session, secret: str, user: User,
                          user_counter: Counter, throttle: ThrottleRepo,
                          also: Sequence[dict[str, Any]] = (), *,
                          refusal: str = "Invalid username or password",
                          awaits_second_factor: bool = False) -> None:
        """Open a session made by a password sign-in, and clear the user's failures,
        in one transaction that holds only while the user is unchanged and no lockout
        runs: a lockout begun by failures counted during this request's password hash
        refuses it (SPEC §8), with the answer any failed sign-in gets.

        ``awaits_second_factor``: the password was only the first step (SPEC §11);
        the failures stay counted until the second factor clears them. On a stage
        that requires a second factor, the first sign-in of a user without one
        starts their grace period (``mfa_asked_at``).
        """
        now = self.clock.now()
        asked = now if (self.settings.require_mfa and not user.second_factors.enrolled
                        and not user.mfa_asked_at) else 0
        gate = (throttle.op_check_unlocked(user_counter.key, now) if awaits_second_factor
                else throttle.op_clear_unless_locked(user_counter.key, now))
        try:
            self.open(session, secret, user, [gate, *also], refusal=refusal,
                      mfa_asked_at=asked, signin=True)
        except InvalidGrant:
            log.info(json.dumps({"event": "signin_failed", "user_known": True, "blocked": True,
                                 "detail": "account changed or locked during the password check"}))
            raise

    # -- refresh -------------------------------------------------------------------

    def rotate(self, presented: str, client_id: str, scopes: tuple[str, ...] = (), *,
               resources: tuple[str, ...] = ()) -> Rotation:
        """Exchange a refresh token for its successor (RFC 6749 §6, rotation per
        RFC 9700 §4.14.2). One conditional write on the success path, no read.
        ``scopes``: the requested scope, never beyond the session's grant;
        ``resources``: the requested resources, never beyond the login's (RFC 8707 §2.2).
        """
        session_id = REFRESH.parse(presented)
        if session_id is None:
            raise InvalidGrant("Invalid refresh token", detail="malformed refresh token")
        now = self.clock.now()
        presented_digest = digest(presented)
        successor = REFRESH.mint(session_id)
        idle = now + self.settings.session_idle_seconds
        cap = cap_of(session_id, now, self.settings.session_max_seconds)
        if cap is not None:
            idle = min(idle, cap)
        try:
            item = self.repo.rotate(
                session_id, presented=presented_digest, successor=digest(successor),
                wrap=wrap_successor(presented, successor, session_id),
                fingerprint=fingerprint(presented_digest), client_id=client_id, now=now,
                idle_deadline=idle, scopes=scopes, resources=resources,
                max_rotations=self.settings.session_max_rotations)
        except ConditionFailed as lost:
            return self._rotation_refused(presented, presented_digest, successor, client_id,
                                          scopes, lost.item, now, resources)
        session = session_from_item(item)
        return Rotation(session, successor, _scope(scopes, session))

    def _rotation_refused(self, presented: str, presented_digest: str, successor: str,
                          client_id: str, scopes: tuple[str, ...], item: dict[str, Any] | None,
                          now: int, resources: tuple[str, ...] = ()) -> Rotation:
        if item is None:
            raise InvalidGrant("Invalid refresh token", detail="no such session")
        session = session_from_item(item)
        if item.get("client_id") != client_id:
            raise InvalidGrant("Invalid refresh token", detail="issued to another client")
        current_hash = str(item.get("rt_hash") or "")
        if same_digest(current_hash, digest(successor)):
            # Our own write: the SDK retried it after its response was lost, and
            # the retry lost the condition to the first attempt (SPEC §8). The
            # successor minted in this call is the session's current token.
            return Rotation(session, successor, _scope(scopes, session))
        if not session.alive(now):
            raise InvalidGrant("Refresh token expired", detail="session idle or past its cap")
        # RFC 6749 §6: the scope "MUST NOT include any scope not originally granted".
        widens = not set(scopes) <= set(item.get("scopes") or ())
        current = same_digest(current_hash, presented_digest)
        if current and widens:
            raise InvalidScope("The requested scope exceeds the scope of the session")
        # RFC 8707 §2.2: a refresh may narrow to the original resources, never widen.
        off_target = not set(resources) <= set(item.get("resources") or ())
        if current and off_target:
            raise InvalidTarget("The requested resource was not part of the original grant")
        if current and int(item.get("rt_gen") or 0) >= self.settings.session_max_rotations:
            raise InvalidGrant("This session has been refreshed too many times; sign in again",
                               detail="rotation limit")
        prev = str(item.get("rt_prev_hash") or "")
        rotated_at = int(item.get("rt_rotated_at") or 0)
        grace = self.settings.refresh_grace_seconds
        if grace > 0 and prev and same_digest(prev, presented_digest) and now - rotated_at <= grace:
            earlier = unwrap_successor(presented, str(item.get("rt_next_wrap") or ""), session.id)
            if earlier is None:
                raise InvalidGrant("Invalid refresh token", detail="successor wrap does not open")
            if same_digest(digest(earlier), current_hash):
                if widens:
                    raise InvalidScope("The requested scope exceeds the scope of the session")
                if off_target:
                    raise InvalidTarget("The requested resource was not part of the original grant")
                # A retry of a lost response: the same successor, no new family member.
                return Rotation(session, earlier, _scope(scopes, session), retried=True)
        retired = item.get("rt_retired") or set()
        if fingerprint(presented_digest) in retired:
            # Reuse of a rotated-out token: the family may be stolen; end the session,
            # and log it in the same transaction (a failed refresh: off SPEC §9's path).
            self.transact([self.repo.op_end(session.id),
                           *self.ended_op(session.user_id, session.id, session.client_id,
                                          "refresh_token_reuse")])
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
        """End a session whoever's it is (a reused code, a revoked access token)."""
        old = self.repo.delete(session_id)
        if old:
            session = session_from_item(old)
            self._log("session_ended", session, reason=reason)
            self._record_ended(session, reason)
        return old is not None

    def end_owned(self, session_id: str, user_id: str, reason: str, where: Where = NOWHERE,
                  client_id: str = "") -> bool:
        """End one of the user's own live sessions: one conditional write, a
        transaction with its security-log entry (logout, ``DELETE /v1/sessions/{id}``,
        web sign-out), so the entry exists exactly when the session ended."""
        now = self.clock.now()
        if self.security_log is None:
            ended = self.repo.delete_owned(session_id, user_id, now)
        else:
            try:
                self.transact([self.repo.op_delete_owned(session_id, user_id, now),
                               *self.ended_op(user_id, session_id, client_id, reason, where)])
                ended = True
            except ConditionFailed:
                ended = False
        if ended:
            log.info(json.dumps({"event": "session_ended", "sid": session_id, "user_id": user_id,
                                 **({"client_id": client_id} if client_id else {}),
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

    def end_all_for_user(self, user_id: str, reason: str, known: Iterable[str] = ()) -> int:
        """End every session of a user; returns how many were alive.

        ``known``: the ids in the user's sessions map, read strongly consistently
        in the write that disabled (or reset) the user, so a session created just
        before is among them; the by_user index is eventually consistent and only
        a belt on top.
        """
        ids = dict.fromkeys(known)
        ids.update(dict.fromkeys(str(item["id"]) for item in self.repo.for_user(user_id)))
        now, ended = self.clock.now(), 0
        for session_id in ids:
            old = self.repo.delete(session_id)
            if old is None:
                continue
            old.setdefault("user_id", user_id)
            session = session_from_item(old)
            self._log("session_ended", session, reason=reason)
            ended += session.alive(now)
        return ended

    def end_for_client(self, user: User, client_id: str, reason: str) -> int:
        """End every session of a user with one client (a withdrawn consent);
        returns how many were alive. The user's sessions map (strongly consistent)
        names every session; the by_user index tells most clients without a read."""
        indexed = {str(item["id"]): item for item in self.repo.for_user(user.id)}
        ids = dict.fromkeys([*indexed, *(user.sessions or {})])
        now, ended = self.clock.now(), 0
        for session_id in ids:
            item = indexed.get(session_id) or self.repo.get_item(session_id)
            if item is None or item.get("client_id") != client_id:
                continue
            old = self.repo.delete_if_client(session_id, user.id, client_id)
            if old is None:
                continue
            session = session_from_item(old)
            self._log("session_ended", session, reason=reason)
            self._record_ended(session, reason)
            ended += session.alive(now)
        return ended

    def narrow_for_user(self, user: User, reason: str) -> tuple[int, int]:
        """Bound every live session of a user by the user's current rights (A:
        refresh reads no user, so a narrowing reaches the sessions themselves).
        Returns (narrowed, ended): a session left with none of its scopes ends.
        """
        ids = dict.fromkeys(user.sessions or {})
        ids.update(dict.fromkeys(str(item["id"]) for item in self.repo.for_user(user.id)))
        narrowed = ended = 0
        for session_id in ids:
            for _ in range(5):    # each lost condition means a concurrent narrowing: read again
                outcome = self._narrow_one(session_id, user, reason)
                if outcome is not None:
                    narrowed += outcome == "narrowed"
                    ended += outcome == "ended"
                    break
        return narrowed, ended

    def _narrow_one(self, session_id: str, user: User, reason: str) -> str | None:
        item = self.repo.get_item(session_id)
        if item is None or item.get("user_id") != user.id:
            return "gone"
        session = session_from_item(item)
        kept = " ".join(s for s in session.scope.split() if user.allows(s))
        if kept == session.scope or not session.alive(self.clock.now()):
            return "unchanged"
        if kept:
            return "narrowed" if self.repo.narrow(session_id, session.scope, kept) else None
        if not self.repo.delete_if_scope(session_id, session.scope):
            return None
        self._log("session_ended", session, reason=reason)
        return "ended"

    def _log(self, event: str, session: Session, **extra: Any) -> None:
        log.info(json.dumps({"event": event, "sid": session.id, "user_id": session.user_id,
                             "client_id": session.client_id, **extra}))


def evictions(user: User, limit: int, now: int) -> list[str]:
    """The recorded sessions a new one of ``user`` replaces to stay within ``limit``:
    the oldest-created first (a session's cap is its creation time plus the fixed
    maximum, so the smallest caps; ties within a second by id), at most
    MAX_EVICTED per sign-in. Entries whose cap passed come first that way and end
    nothing. A session that ended otherwise (logout, idle) counts until its cap
    passes or it is evicted."""
    entries = user.sessions or {}
    excess = len(entries) + 1 - limit
    if excess <= 0:
        return []
    oldest = sorted(entries, key=lambda sid: (entries[sid], sid))
    return oldest[:min(excess, MAX_EVICTED)]


def _same_user_other_sessions(user: User, item: dict[str, Any] | None) -> User | None:
    """The user as it now is, if a sign-in's transaction lost only because the
    sessions map changed (the user still active, its version unchanged); None if
    the user was disabled, changed or something else refused the sign-in."""
    if item is None or item.get("id") != user.id or "username" not in item:
        return None
    now_user = user_from_item(item)
    if not now_user.active or now_user.version != user.version:
        return None
    return now_user


def _scope(requested: tuple[str, ...], session: Session) -> str:
    """What a refresh mints: the requested scope (checked against the session's
    grant by the caller or the rotation's condition), else the session's."""
    return " ".join(requested) if requested else session.scope
