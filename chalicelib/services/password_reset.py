"""Password reset by mail (SPEC §11).

``request``: whatever the address, the answer is the same (202, the same page)
and so is the work behind it: the same reads, one link written, one mail sent
(a reset link to an account's address; to an address no account uses, a note
saying so), so neither the answer nor its timing tells whether an address is
known. Requests are throttled per address and per source; past the limit they
are answered the same and send nothing.

``complete``: the ``tsw_`` link works once, within 30 minutes; a person with a
second factor enters a code of it (or a recovery code) too. The new password
(checked by ``security.password_rules``) and the spent link are one
transaction, which also moves the user's version, so no sign-in in flight with
the old password opens a session; then every session of the user ends, and
with it every refresh token. PATs and role keys stay (the mail says so).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import BadRequest, ConditionFailed, Forbidden, NotFound
from chalicelib.models import User
from chalicelib.security import password_rules
from chalicelib.security.opaque import PASSWORD_RESET, digest, new_id
from chalicelib.security.passwords import hash_password
from chalicelib.services.letters import Letters
from chalicelib.services.security_log import SecurityLog, Where
from chalicelib.storage.identities import UsersRepo, normalise_email
from chalicelib.storage.links import PASSWORD_RESET as KIND
from chalicelib.storage.links import Link, LinksRepo
from chalicelib.storage.tables import Transact
from chalicelib.storage.throttle import Limit, ThrottleRepo

if TYPE_CHECKING:
    from chalicelib.services.second_factors import SecondFactors
    from chalicelib.services.sessions import Sessions

RESET_SECONDS = 30 * 60
PAGE = "/password-reset"
PER_ADDRESS = Limit(window=3600, lock_after=5, lock_seconds=3600)
PER_SOURCE = Limit(window=3600, lock_after=20, lock_seconds=3600)
BAD_LINK = ("This link is not valid: it was used, it expired (links last 30 minutes), or it is "
            "incomplete. Ask for a new one.")


class PasswordReset:
    def __init__(self, links: LinksRepo, users: UsersRepo, throttle: ThrottleRepo,
                 letters: Letters, security_log: SecurityLog, clock: Clock, settings: Settings, *,
                 transact: Transact, sessions: Callable[[], Sessions],
                 second_factors: Callable[[], SecondFactors]) -> None:
        self.links = links
        self.users = users
        self.throttle = throttle
        self.letters = letters
        self.security_log = security_log
        self.clock = clock
        self.settings = settings
        self.transact = transact
        self._sessions = sessions
        self._second_factors = second_factors

    def request(self, email: str, *, source: str, issuer: str) -> None:
        """Mail a reset link to the account using ``email``, if any (see the module
        docstring: the same answer and the same work either way)."""
        address = normalise_email(email)
        now = self.clock.now()
        by_address = self.throttle.record_failure("reset-addr#" + digest(address), now, PER_ADDRESS)
        by_source = self.throttle.record_failure("reset-src#" + source, now, PER_SOURCE)
        user_id = self.users.user_id_by_email(address) if address else None
        # A read of a user either way (an id no user has when the address is unknown).
        user = self.users.get(user_id or new_id())
        known = user is not None and user.active and normalise_email(user.email) == address
        token = PASSWORD_RESET.mint()
        link = Link(digest=digest(token), kind=KIND, id=new_id(), created_at=now,
                    expires_at=now + RESET_SECONDS, user_id=user.id if user and known else "",
                    email=address, data={"version": user.version if user and known else -1})
        self.links.put(link)
        if by_address.locked(now) or by_source.locked(now):
            log.warning(json.dumps({"event": "password_reset_throttled", "source": source}))
            return
        log.info(json.dumps({"event": "password_reset_requested", "reset_id": link.id,
                             "known": known}))
        if user is not None and known:
            self.letters.password_reset(user, f"{issuer}{PAGE}/confirm?token={token}",
                                        link.expires_at)
        elif address:
            self.letters.no_account(address, f"{issuer}{PAGE}")

    def open(self, token: str) -> tuple[Link, User]:
        """The live link and its account (for the page that sets the password)."""
        link = self.links.get(digest(token)) if PASSWORD_RESET.matches(token) else None
        if link is None or link.kind != KIND or not link.live(self.clock.now()) \
                or not link.user_id:
            raise NotFound(BAD_LINK)
        user = self.users.get(link.user_id)
        if user is None or not user.active:
            raise NotFound(BAD_LINK)
        return link, user

    def complete(self, token: str, password: str, code: str, where: Where, *,
                 issuer: str) -> User:
        link, user = self.open(token)
        why = password_rules.problem(password, username=user.username, email=user.email)
        if why is not None:
            raise BadRequest(why)
        if user.second_factors.enrolled:
            if not code:
                raise Forbidden("Enter a code from your authenticator app, or a recovery code")
            factors = self._second_factors()
            verified = factors.verify(user, code, where)
            # The factor is spent in its own write (it is the user's item, as the
            # password is); a reset that fails after it only costs that code.
            try:
                self.transact(verified.ops)
            except ConditionFailed as exc:
                raise Forbidden("That code was already used; wait for the next one") from exc
            verified.committed(user)
        new_hash = hash_password(password, log_n=self.settings.scrypt_log_n)
        try:
            self.transact([self.links.op_redeem(link, self.clock.now()),
                           self.users.op_set_password_hash(user.id, new_hash, user.version),
                           self.security_log.op(user.id, "password_reset", where)])
        except ConditionFailed as lost:
            raise NotFound(BAD_LINK) from lost
        ended = self._sessions().end_all_for_user(user.id, "password_reset",
                                                  known=user.sessions or {})
        log.info(json.dumps({"event": "password_reset", "user_id": user.id,
                             "sessions_ended": ended}))
        self.letters.password_changed(user, "reset", f"{issuer}/account/tokens")
        return user
