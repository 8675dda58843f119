"""What Tessera mails people (SPEC §11), as one interface: the services that
change an account say what to tell whom, after their change committed; how it is
written and sent (templates, SES) is ``services.mailer``'s."""

from __future__ import annotations

from typing import Protocol

from chalicelib.models import User


class Letters(Protocol):
    def invitation(self, email: str, link: str, expires_at: int, inviter: str) -> None:
        """A link to create an account (``tsi_``)."""

    def password_reset(self, user: User, link: str, expires_at: int) -> None:
        """A link to set a new password (``tsw_``)."""

    def no_account(self, email: str, reset_page: str) -> None:
        """Someone asked to reset the password of an address no account uses: told
        so (the same work as a reset, so the answer and its timing say nothing)."""

    def password_changed(self, user: User, how: str, tokens_page: str) -> None:
        """A security notice: the password changed (``how``: reset or change); the
        PATs and role keys still work, and where to see them."""

    def expiry_notice(self, user: User, description: str, expires_on: str, days: int,
                      tokens_page: str) -> None:
        """A PAT of ``user`` expires within ``days`` days (0: it has expired). Raises
        when it was not sent (the expiry job then sends it again)."""

    def email_change(self, user: User, new_email: str, link: str, expires_at: int) -> None:
        """To the new address: a link that makes it the account's (``tse_``)."""

    def email_change_requested(self, user: User, new_email: str) -> None:
        """A security notice to the old address: a change to ``new_email`` was asked for."""

    def new_signin(self, user: User, ip: str, device: str, sessions_page: str) -> None:
        """A security notice: a sign-in from a device or address not seen before."""

    def token_created(self, user: User, what: str, name: str, page: str) -> None:
        """A PAT (``what`` = ``pat``) or a role key (``role_key``) was created."""

    def second_factor_changed(self, user: User, added: bool, method: str,
                              security_page: str) -> None:
        """A security notice: a second factor was added or removed."""
