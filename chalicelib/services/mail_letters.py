"""``Letters`` (what Tessera tells people by mail, SPEC §11) as mails of the
``Mailer``: each letter is a kind (its audit ``kind``) written with the generic
notice templates (``templates/mail/notice.*``): a title, a message, a link.

Every letter is sent after the change it announces committed (the services call
these after their writes). A mail SES does not take raises ``MailNotSent``,
except where saying so would tell something: a reset's letters are logged
instead, so the answer stays the same whatever the address.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import ClassVar

from chalicelib.audit import log
from chalicelib.models import User
from chalicelib.services.mailer import Mailer, MailNotSent, Notice


def _when(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Letter(Notice):
    template: ClassVar[str] = "notice"


@dataclass(frozen=True)
class InvitationMail(Letter):
    kind: ClassVar[str] = "invitation"


@dataclass(frozen=True)
class PasswordResetMail(Letter):
    kind: ClassVar[str] = "password_reset"


@dataclass(frozen=True)
class NoAccountMail(Letter):
    kind: ClassVar[str] = "password_reset_no_account"


@dataclass(frozen=True)
class PasswordChangedMail(Letter):
    kind: ClassVar[str] = "password_changed"


@dataclass(frozen=True)
class ExpiryNoticeMail(Letter):
    kind: ClassVar[str] = "pat_expiry"


@dataclass(frozen=True)
class EmailChangeMail(Letter):
    kind: ClassVar[str] = "email_change"


@dataclass(frozen=True)
class EmailChangeRequestedMail(Letter):
    kind: ClassVar[str] = "email_change_requested"


@dataclass(frozen=True)
class NewSigninMail(Letter):
    kind: ClassVar[str] = "new_signin"


@dataclass(frozen=True)
class TokenCreatedMail(Letter):
    kind: ClassVar[str] = "token_created"


@dataclass(frozen=True)
class SecondFactorChangedMail(Letter):
    kind: ClassVar[str] = "second_factor_changed"


METHOD_WORDS = {"totp": "an authenticator app", "passkey": "a passkey",
                "recovery_codes": "recovery codes"}


class MailLetters:
    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer

    def invitation(self, email: str, link: str, expires_at: int, inviter: str) -> None:
        who = f"{inviter} invited you" if inviter else "You are invited"
        self.mailer.send(email, InvitationMail(
            title="Your invitation to Tessera",
            message=f"{who} to create an account at Tessera. The link works once, until "
                    f"{_when(expires_at)}.", link=link, link_label="Create your account"),
            user_id="")

    def password_reset(self, user: User, link: str, expires_at: int) -> None:
        self._quietly(user.email, user.id, PasswordResetMail(
            title="Reset your Tessera password",
            message=f"Someone (we hope you) asked to reset the password of {user.username}. "
                    f"The link works once, until {_when(expires_at)}. Did not ask? Ignore "
                    "this mail: your password stays as it is.",
            link=link, link_label="Choose a new password"))

    def no_account(self, email: str, reset_page: str) -> None:
        self._quietly(email, "", NoAccountMail(
            title="Password reset at Tessera",
            message="Someone asked to reset the password of a Tessera account with this "
                    "address, but no account uses it. Did not ask? Ignore this mail.",
            link=reset_page, link_label="Try another address"))

    def password_changed(self, user: User, how: str, tokens_page: str) -> None:
        said = "was reset" if how == "reset" else "was changed"
        self._quietly(user.email, user.id, PasswordChangedMail(
            title="Your Tessera password " + said,
            message=f"The password of {user.username} {said}, and every session of the "
                    "account ended. Your personal access tokens and role keys still work: "
                    "review them, and revoke any you do not recognise.",
            link=tokens_page, link_label="Your tokens"))

    def expiry_notice(self, user: User, description: str, expires_on: str, days: int,
                      tokens_page: str) -> None:
        when = ("has expired" if days == 0 else
                f"expires in {days} day{'s' if days != 1 else ''}")
        self.mailer.send(user.email, ExpiryNoticeMail(
            title=f"Your Tessera token “{description}” {when}",
            message=f"The personal access token “{description}” of {user.username} "
                    f"{'stopped working on' if days == 0 else 'stops working on'} {expires_on} "
                    "(00:00 UTC). Whatever uses it (CI, scripts) will get 401 answers: "
                    "regenerate it or make a new one, and update where it is used.",
            link=tokens_page, link_label="Your tokens"), user_id=user.id)

    def email_change(self, user: User, new_email: str, link: str, expires_at: int) -> None:
        self.mailer.send(new_email, EmailChangeMail(
            title="Confirm your new address at Tessera",
            message=f"Follow the link to make this the address of {user.username}. It works "
                    f"once, until {_when(expires_at)}.",
            link=link, link_label="Confirm this address"), user_id=user.id)

    def email_change_requested(self, user: User, new_email: str) -> None:
        domain = new_email.rpartition("@")[2]
        self._quietly(user.email, user.id, EmailChangeRequestedMail(
            title="Your Tessera address is being changed",
            message=f"Someone signed in as {user.username} asked to change the account's "
                    f"address to one at {domain}. It changes only when that address confirms. "
                    "Not you? Change your password and review your sessions."))

    def new_signin(self, user: User, ip: str, device: str, sessions_page: str) -> None:
        self._quietly(user.email, user.id, NewSigninMail(
            title="A new sign-in to your Tessera account",
            message=f"{user.username} signed in from a device or address not seen before: "
                    f"{device}, from {ip or 'an unknown address'}. Was it you? Then there is "
                    "nothing to do. If not, change your password and end the session.",
            link=sessions_page, link_label="Your sessions"))

    def token_created(self, user: User, what: str, name: str, page: str) -> None:
        words = "personal access token" if what == "pat" else "role key"
        self._quietly(user.email, user.id, TokenCreatedMail(
            title=f"A new {words} at Tessera",
            message=f"A {words} named {name} was created for {user.username}. Not you? "
                    "Revoke it and change your password. (You can turn these notices off "
                    "on your profile page.)",
            link=page, link_label="Review it"))

    def second_factor_changed(self, user: User, added: bool, method: str,
                              security_page: str) -> None:
        said = "added to" if added else "removed from"
        self._quietly(user.email, user.id, SecondFactorChangedMail(
            title="A second factor was " + ("added" if added else "removed"),
            message=f"A second factor ({METHOD_WORDS.get(method, method)}) was {said} the "
                    f"Tessera account {user.username}. Not you? Change your password and "
                    "review your security settings.",
            link=security_page, link_label="Your security settings"))

    def _quietly(self, to: str, user_id: str, mail: Letter) -> None:
        """A letter whose failure must not change the answer (a reset) or undo a
        change that happened (a notice): logged."""
        if not to:
            return
        try:
            self.mailer.send(to, mail, user_id=user_id)
        except MailNotSent as exc:
            log.warning(json.dumps({"event": "mail_not_sent", "kind": mail.kind,
                                    "user_id": user_id, "detail": exc.detail}))
