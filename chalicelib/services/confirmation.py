"""The recent sign-in rule for lasting grants (SPEC §5, §6).

A change that grants lasting access (a PAT generated, regenerated, copied or
edited; a role's policy, key or trust policy added) needs the owner's password,
or a sign-in younger than ``recent_signin_seconds``. Only here is it decided:
routes and pages call ``Confirmation`` and nothing else.

Which credentials count as a recent sign-in: an access token whose session's
``auth_time`` (OIDC Core §2) is young enough, i.e. a password sign-in, a browser
sign-in, or the browser sign-in that approved a device. A refresh keeps the
original ``auth_time``, so refreshing never makes a sign-in recent. A PAT or a
role credential has no sign-in, and a delegated token (RFC 8693 §4.1 ``act``)
is an app acting for the person, not the person signing in: these never count,
and need the password.
"""

from __future__ import annotations

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import Forbidden, InvalidGrant, Unprocessable
from chalicelib.models import User
from chalicelib.services.authn import PasswordSignIn
from chalicelib.services.principals import Principal
from chalicelib.storage.tables import BatchGet


def signed_in_at(principal: Principal) -> int | None:
    """When the person behind ``principal`` signed in, if the credential is a
    sign-in of theirs at all (see the module docstring)."""
    if principal.kind != "access_token" or principal.session is None or principal.act:
        return None
    return principal.session.auth_time


class Confirmation:
    """SPEC §5: a change needs the owner's password, or a sign-in younger than
    ``recent_signin_seconds``. Password checks share the sign-in throttle.
    """

    def __init__(self, password_signin: PasswordSignIn, clock: Clock, settings: Settings, *,
                 batch_get: BatchGet) -> None:
        self.password_signin = password_signin
        self.clock = clock
        self.settings = settings
        self.batch_get = batch_get

    def require(self, user: User, *, password: object, signed_in_at: int | None,
                source: str) -> None:
        if password is not None and password != "":
            if not isinstance(password, str):
                raise Unprocessable("password must be a string")
            self._check_password(user, password, source)
            return
        recent = self.settings.recent_signin_seconds
        if signed_in_at is not None and self.clock.now() - signed_in_at < recent:
            return
        raise Forbidden(f"Confirm this change with your password (field 'password'), or sign in "
                        f"again: the sign-in must be younger than {recent // 60} minutes")

    def require_of(self, principal: Principal, *, password: object, source: str) -> None:
        """``require`` for an API caller: only its own sign-in can be recent."""
        self.require(principal.user, password=password, signed_in_at=signed_in_at(principal),
                     source=source)

    def _check_password(self, user: User, password: str, source: str) -> None:
        signin = self.password_signin
        keys = [{"pk": signin.user_counter_key(user.username)},
                {"pk": signin.source_counter_key(source)}]
        items = {i["pk"]: i for i in self.batch_get({"throttle": keys})["throttle"]}
        try:
            signin.verify(user.username, password, source, user,
                          signin.counters(user.username, source, items))
        except InvalidGrant as exc:
            raise Forbidden("Password confirmation failed") from exc
