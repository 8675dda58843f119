"""Invitations (SPEC §11): registration is by invitation only. An operator
(``tessera-admin user invite``) or a user holding ``users:invite``
(``POST /v1/invitations``) invites an address; the mail carries a single-use
``tsi_`` link valid for 7 days; following it, the person chooses a username and a
password and the account exists, its address verified. Creating the account,
claiming the address and spending the link are one transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import BadRequest, ConditionFailed, Conflict, Forbidden, NotFound
from chalicelib.models import USERNAME_RULE, User, normalise_username, user_id_for, valid_username
from chalicelib.security import password_rules
from chalicelib.security.opaque import INVITATION, digest, new_id
from chalicelib.security.passwords import hash_password
from chalicelib.services.letters import Letters
from chalicelib.storage.identities import UsersRepo, normalise_email
from chalicelib.storage.links import INVITATION as KIND
from chalicelib.storage.links import Link, LinksRepo
from chalicelib.storage.tables import Transact

INVITATION_SECONDS = 7 * 86400
INVITE_SCOPE = "users:invite"
# An address as a person types one: something@domain.tld, no spaces, at most 254.
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}")
PAGE = "/invitation"


def valid_email(email: str) -> bool:
    return len(email) <= 254 and EMAIL.fullmatch(email) is not None and email.isprintable()


@dataclass(frozen=True)
class Invitation:
    id: str
    email: str
    expires_at: int
    scopes: tuple[str, ...] | None

    def view(self) -> dict[str, Any]:
        """SPEC §11 ``POST /v1/invitations``."""
        return {"id": self.id, "email": self.email, "expires_at": self.expires_at}


class Invitations:
    def __init__(self, links: LinksRepo, users: UsersRepo, letters: Letters, clock: Clock,
                 settings: Settings, *, transact: Transact) -> None:
        self.links = links
        self.users = users
        self.letters = letters
        self.clock = clock
        self.settings = settings
        self.transact = transact

    def invite(self, email: str, *, issuer: str, scopes: Iterable[str] | None = None,
               invited_by: User | None = None) -> Invitation:
        """Mail ``email`` a link to create an account holding ``scopes`` (None: every
        scope of the stage; an inviting user can give only scopes they hold)."""
        address = normalise_email(email)
        if not valid_email(address):
            raise BadRequest("email must be an address like name@example.com")
        wanted = None if scopes is None else tuple(sorted(set(scopes)))
        if wanted is not None:
            unknown = set(wanted) - set(self.settings.scopes)
            if unknown:
                raise BadRequest(f"unknown scopes: {', '.join(sorted(unknown))}")
        if invited_by is not None:
            held = set(self.settings.scopes) if invited_by.scopes is None \
                else set(invited_by.scopes)
            beyond = set(wanted if wanted is not None else self.settings.scopes) - held
            if wanted is None:
                wanted = tuple(sorted(held))
            elif beyond:
                raise Forbidden(f"You cannot give scopes you do not hold: {', '.join(sorted(beyond))}")
        if self.users.user_id_by_email(address) is not None:
            raise Conflict("An account already uses this address")
        now, token = self.clock.now(), INVITATION.mint()
        link = Link(digest=digest(token), kind=KIND, id=new_id(), created_at=now,
                    expires_at=now + INVITATION_SECONDS, email=address,
                    data={"scopes": list(wanted) if wanted is not None else None,
                          "invited_by": invited_by.id if invited_by else ""})
        self.links.put(link)
        log.info(json.dumps({"event": "invitation_created", "invitation_id": link.id,
                             "invited_by": invited_by.id if invited_by else "operator"}))
        # After the link is stored: a mail never announces what did not happen.
        self.letters.invitation(address, f"{issuer}{PAGE}?token={token}", link.expires_at,
                                invited_by.username if invited_by else "")
        return Invitation(link.id, address, link.expires_at, wanted)

    def open(self, token: str) -> Link:
        """The live invitation a link's token names (for its page)."""
        link = self.links.get(digest(token)) if INVITATION.matches(token) else None
        if link is None or link.kind != KIND or not link.live(self.clock.now()):
            raise NotFound("This invitation is not valid: it was used, it expired, or the "
                           "link is incomplete. Ask for a new one.")
        return link

    def accept(self, token: str, username: str, password: str) -> User:
        """Create the account: one transaction spends the link, creates the user
        (the username once) and claims the address (one account per address)."""
        link = self.open(token)
        name = normalise_username(username)
        if not valid_username(name):
            raise BadRequest(USERNAME_RULE)
        why = password_rules.problem(password, username=name, email=link.email)
        if why is not None:
            raise BadRequest(why)
        scopes = link.data.get("scopes")
        user = User(id=user_id_for(name), username=name, email=link.email, active=True,
                    password_hash=hash_password(password, log_n=self.settings.scrypt_log_n),
                    scopes=tuple(sorted(scopes)) if scopes is not None else None,
                    created_at=self.clock.now(), sessions={}, email_verified=True)
        try:
            self.transact([self.links.op_redeem(link, self.clock.now()),
                           self.users.op_create(user), self.users.op_claim_email(link.email,
                                                                                user.id)])
        except ConditionFailed as lost:
            self._refusal(lost, user, link)
        log.info(json.dumps({"event": "invitation_accepted", "invitation_id": link.id,
                             "user_id": user.id}))
        return user

    def _refusal(self, lost: ConditionFailed, user: User, link: Link) -> None:
        """Which of the transaction's conditions failed, in words."""
        if self.links.get(link.digest) is None:
            raise NotFound("This invitation was used already") from lost
        if self.users.get(user.id) is not None:
            raise Conflict("That username is taken; choose another") from lost
        raise Conflict("An account already uses this address") from lost
