"""Changing the email address (SPEC §11, issue item 4).

``request``: the person signed in to the console asks for a new address. It
needs the current password every time (a recent sign-in is not enough: the
address is how a password is reset, so whoever holds a session must not take the
account over with it), and with a second factor enrolled a code of it too
(``Confirmation.require``). An address another account uses is refused at once.
Then a ``tse_`` link (24 hours) is stored, and only after that write it is mailed
to the new address, and a notice goes to the old one.

``confirm``: following the link (no sign-in needed: it is the new address that is
shown to belong to the person) is one transaction: the link is spent, the user's
address set on condition that it still is the one the change started from, the
old address's claim released, the new one claimed (its condition refuses an
address another account took meanwhile), and the security log's ``email_changed``
entry written. The address is then verified.
"""

from __future__ import annotations

import json

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.errors import BadRequest, ConditionFailed, Conflict, Forbidden, NotFound
from chalicelib.models import User
from chalicelib.security.opaque import EMAIL_CHANGE, digest, new_id
from chalicelib.services.confirmation import Confirmation
from chalicelib.services.invitations import valid_email
from chalicelib.services.letters import Letters
from chalicelib.services.security_log import SecurityLog, Where
from chalicelib.storage.identities import UsersRepo, normalise_email
from chalicelib.storage.links import EMAIL_CHANGE as KIND
from chalicelib.storage.links import Link, LinksRepo
from chalicelib.storage.tables import Transact

EMAIL_CHANGE_SECONDS = 24 * 3600
PAGE = "/email-change/confirm"
BAD_LINK = ("This link is not valid: it was used, it expired (links last 24 hours), or it is "
            "incomplete. Ask for the change again on your profile page.")
TAKEN = "Another account uses this address"


def domain(address: str) -> str:
    return address.rpartition("@")[2]


class EmailChanges:
    def __init__(self, links: LinksRepo, users: UsersRepo, letters: Letters,
                 confirmation: Confirmation, security_log: SecurityLog, clock: Clock, *,
                 transact: Transact) -> None:
        self.links = links
        self.users = users
        self.letters = letters
        self.confirmation = confirmation
        self.security_log = security_log
        self.clock = clock
        self.transact = transact

    def request(self, user: User, new_email: str, *, password: str, otp: str, where: Where,
                issuer: str) -> Link:
        """Mail a link to ``new_email`` that makes it ``user``'s address."""
        address = normalise_email(new_email)
        if not valid_email(address):
            raise BadRequest("Enter an address like name@example.com")
        if address == normalise_email(user.email):
            raise BadRequest("That is your address already")
        if not password:
            raise Forbidden("Enter your current password to change your address")
        # Always the password (never a recent sign-in alone), and the code of a factor.
        self.confirmation.require(user, password=password, signed_in_at=None, mfa=False,
                                  otp=otp or None, source=where.ip, user_agent=where.user_agent)
        if self.users.user_id_by_email(address) is not None:
            raise Conflict(TAKEN)
        now, token = self.clock.now(), EMAIL_CHANGE.mint()
        link = Link(digest=digest(token), kind=KIND, id=new_id(), created_at=now,
                    expires_at=now + EMAIL_CHANGE_SECONDS, user_id=user.id, email=address,
                    data={"old": user.email, "new": address})
        self.links.put(link)
        log.info(json.dumps({"event": "email_change_requested", "change_id": link.id,
                             "user_id": user.id}))
        # After the link is stored: a mail never announces what did not happen.
        self.letters.email_change(user, address, f"{issuer}{PAGE}?token={token}",
                                  link.expires_at)
        self.letters.email_change_requested(user, address)
        return link

    def open(self, token: str) -> tuple[Link, User]:
        """The live link and its account (for the page that confirms it)."""
        link = self.links.get(digest(token)) if EMAIL_CHANGE.matches(token) else None
        if link is None or link.kind != KIND or not link.live(self.clock.now()) \
                or not link.user_id:
            raise NotFound(BAD_LINK)
        user = self.users.get(link.user_id)
        if user is None or not user.active:
            raise NotFound(BAD_LINK)
        return link, user

    def confirm(self, token: str, where: Where) -> User:
        """Make the link's new address the account's (one transaction, see the module)."""
        link, user = self.open(token)
        old, new = str(link.data.get("old") or ""), str(link.data.get("new") or "")
        if not new:
            raise NotFound(BAD_LINK)
        ops = [self.links.op_redeem(link, self.clock.now()),
               self.users.op_set_email(user.id, old, new)]
        # An account from before addresses were claimed has no claim to give up.
        if old and self.users.user_id_by_email(old) == user.id:
            ops.append(self.users.op_release_email(old, user.id))
        ops += [self.users.op_claim_email(new, user.id),
                self.security_log.op(user.id, "email_changed", where,
                                     {"from_domain": domain(old), "to_domain": domain(new)})]
        try:
            self.transact(ops)
        except ConditionFailed as lost:
            owner = self.users.user_id_by_email(new)
            if owner is not None and owner != user.id:
                raise Conflict(TAKEN) from lost
            raise NotFound(BAD_LINK) from lost
        log.info(json.dumps({"event": "email_changed", "change_id": link.id,
                             "user_id": user.id}))
        changed = self.users.get(user.id)
        return changed if changed is not None else user
