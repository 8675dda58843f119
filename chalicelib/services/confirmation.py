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

With a second factor enrolled (SPEC §11) the rule needs it too: the recent
sign-in must have used it (the session's ``amr`` says ``mfa``), and a password
confirmation comes with a code from the authenticator app or a recovery code
(``otp``), spent like any sign-in's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import Forbidden, InvalidGrant, Unprocessable
from chalicelib.models import User
from chalicelib.services.authn import PasswordSignIn
from chalicelib.services.principals import Principal
from chalicelib.services.security_log import Where
from chalicelib.storage.tables import BatchGet, Transact

if TYPE_CHECKING:
    from chalicelib.services.second_factors import SecondFactors


def signed_in_at(principal: Principal) -> int | None:
    """When the person behind ``principal`` signed in, if the credential is a
    sign-in of theirs at all (see the module docstring)."""
    if principal.kind != "access_token" or principal.session is None or principal.act:
        return None
    return principal.session.auth_time


def signed_in_with_mfa(principal: Principal) -> bool:
    return signed_in_at(principal) is not None and principal.session is not None \
        and principal.session.mfa


class Confirmation:
    """SPEC §5: a change needs the owner's password, or a sign-in younger than
    ``recent_signin_seconds``. Password checks share the sign-in throttle.
    """

    def __init__(self, password_signin: PasswordSignIn, clock: Clock, settings: Settings, *,
                 batch_get: BatchGet, second_factors: Callable[[], SecondFactors],
                 transact: Transact) -> None:
        self.password_signin = password_signin
        self.clock = clock
        self.settings = settings
        self.batch_get = batch_get
        self._second_factors = second_factors
        self.transact = transact

    def require(self, user: User, *, password: object, signed_in_at: int | None,
                source: str, mfa: bool = False, otp: object = None,
                user_agent: str = "") -> None:
        """``mfa``: the recent sign-in used a second factor; ``otp``: a code from the
        authenticator app or a recovery code, sent with the password."""
        enrolled = user.second_factors.enrolled
        if password is not None and password != "":
            if not isinstance(password, str):
                raise Unprocessable("password must be a string")
            if enrolled and (not isinstance(otp, str) or not otp):
                raise Forbidden("Confirm this change with your password and a code from your "
                                "authenticator app or a recovery code (field 'otp'), or sign in "
                                "again with your second factor")
            self._check_password(user, password, source)
            if enrolled:
                assert isinstance(otp, str)
                self._check_code(user, otp, Where(source, user_agent))
            return
        recent = self.settings.recent_signin_seconds
        if signed_in_at is not None and self.clock.now() - signed_in_at < recent \
                and (mfa or not enrolled):
            return
        with_factor = " and your second factor" if enrolled else ""
        raise Forbidden(f"Confirm this change with your password (field 'password'), or sign in "
                        f"again{with_factor}: the sign-in must be younger than "
                        f"{recent // 60} minutes")

    def require_of(self, principal: Principal, *, password: object, source: str,
                   otp: object = None) -> None:
        """``require`` for an API caller: only its own sign-in can be recent."""
        self.require(principal.user, password=password, signed_in_at=signed_in_at(principal),
                     source=source, mfa=signed_in_with_mfa(principal), otp=otp)

    def _check_code(self, user: User, code: str, where: Where) -> None:
        from chalicelib.errors import ConditionFailed

        try:
            verified = self._second_factors().verify(user, code, where)
            self.transact(verified.ops)
            verified.committed(user)
        except ConditionFailed as exc:
            raise Forbidden("That code was already used; wait for the next one") from exc

    def check_password(self, user: User, password: str, source: str) -> None:
        """The password alone, throttled as a sign-in (a password change asks for the
        current one in a sign-in that already passed its second factor)."""
        self._check_password(user, password, source)

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
