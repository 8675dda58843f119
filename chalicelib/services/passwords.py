"""A person changes their own password (SPEC §11, the account console).

The current password is always required (a recent sign-in is not enough: whoever
holds an unlocked browser must not lock its owner out), and it is checked with
the sign-in throttle, as every password confirmation is (``Confirmation``). The
new one follows ``security.password_rules`` (length, not the username or
address, not a breached password), typed twice.

The change is one UpdateItem of the password attributes; with ``end_others`` it
also moves the user's version (a sign-in in flight with the old password cannot
open a session) and ends every other session of the user, and with them their
refresh tokens (they live in the session items). The security log gets a
``password_changed`` entry. Routes and pages call ``PasswordChange.change``;
nothing else decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from chalicelib.config import Settings
from chalicelib.errors import BadRequest, ConditionFailed, Forbidden, NotFound
from chalicelib.models import User
from chalicelib.security import password_rules
from chalicelib.security.passwords import hash_password
from chalicelib.services.security_log import SecurityLog, Where
from chalicelib.storage.identities import UsersRepo

MIN_LENGTH = password_rules.MIN_LENGTH


class Confirms(Protocol):
    def check_password(self, user: User, password: str, source: str) -> None: ...


class EndsSessions(Protocol):
    def list_for_user(self, user_id: str) -> Iterable[object]: ...

    def end(self, session_id: str, reason: str = "logout") -> bool: ...


def new_password_problem(user: User, new: str, again: str) -> str:
    """Why ``new`` (typed twice: ``again``) cannot be the password; "" if it can."""
    if new.strip().casefold() == user.username.casefold():
        return "The new password must not be your username."
    why = password_rules.problem(new, username=user.username, email=user.email)
    if why is not None:
        return why
    if new != again:
        return "The two new passwords differ. Type the same new password twice."
    return ""


def end_other_sessions(sessions: EndsSessions, user: User, keep: str | None,
                       reason: str) -> int:
    """End every session of ``user`` but ``keep`` (the caller's own); returns how many.

    The ids come from the user's sessions map (read strongly consistently with
    the user) and the by_user index; each end is one conditional delete.
    """
    ids = dict.fromkeys(user.sessions or {})
    ids.update(dict.fromkeys(getattr(s, "id", "") for s in sessions.list_for_user(user.id)))
    ended = 0
    for session_id in ids:
        if session_id and session_id != keep:
            ended += sessions.end(session_id, reason=reason)
    return ended


@dataclass(frozen=True)
class Changed:
    user: User
    ended_sessions: int


class PasswordChange:
    def __init__(self, users: UsersRepo, confirmation: Confirms, sessions: EndsSessions,
                 security_log: SecurityLog, settings: Settings) -> None:
        self.users = users
        self.confirmation = confirmation
        self.sessions = sessions
        self.security_log = security_log
        self.settings = settings

    def change(self, user: User, *, current: str, new: str, again: str, where: Where,
               keep_session: str | None, end_others: bool) -> Changed:
        """Check ``current`` (throttled; ``Forbidden`` when wrong), the new password's
        rules (``BadRequest``), then store it; see the module docstring."""
        if not current:
            raise Forbidden("Enter your current password.")
        problem = new_password_problem(user, new, again)
        if problem:
            raise BadRequest(problem)
        # Pages that change it are signed in (with the second factor, where one is
        # enrolled): the current password is what is asked again.
        self.confirmation.check_password(user, current, where.ip)
        encoded = hash_password(new, log_n=self.settings.scrypt_log_n)
        try:
            # attribute_exists(id) in the repository: a user deleted meanwhile is not recreated.
            changed = self.users.set_password_hash(user.id, encoded, bump=end_others)
        except ConditionFailed as exc:
            raise NotFound("No such user") from exc
        ended = (end_other_sessions(self.sessions, changed, keep_session, "password_changed")
                 if end_others else 0)
        # One UpdateItem changed the password, so the entry is one PutItem after it.
        self.security_log.record(user.id, "password_changed", where,
                                 {"ended_sessions": ended, "signed_out_elsewhere": end_others})
        return Changed(changed, ended)
