"""When a sign-in needs a second factor (SPEC §11), decided in one place.

A person with a second factor enrolled needs it for every browser sign-in. A
stage with ``require_mfa`` needs one of everyone: who has none is asked to enrol
during the grace period (from when the stage first saw them sign in without one)
and, after it, may do nothing but enrol. An app that requires it (a client's
``require_mfa``, or ``acr_values`` naming the MFA level) needs it for its own
sign-ins.
"""

from __future__ import annotations

from chalicelib.config import Settings
from chalicelib.models import User

# What a browser sign-in still needs before the pages may use it.
READY = ""
SECOND_FACTOR = "second_factor"     # verify an enrolled factor
ENROL = "enrol"                     # enrol one: required, and the grace period is over

ACR_PASSWORD = "urn:tessera:acr:pwd"
ACR_MFA = "urn:tessera:acr:mfa"


def acr_of(amr: tuple[str, ...]) -> str:
    """The Authentication Context Class Reference of a sign-in (OIDC Core §2 ``acr``)."""
    return ACR_MFA if "mfa" in amr else ACR_PASSWORD


def grace_ends(user: User, settings: Settings, now: int) -> int | None:
    """When a stage that requires a second factor stops letting ``user`` in without
    one; None where nothing is required or one is enrolled."""
    if not settings.require_mfa or user.second_factors.enrolled:
        return None
    asked = user.mfa_asked_at or now
    return asked + settings.mfa_grace_days * 86400


def needs(user: User, amr: tuple[str, ...], settings: Settings, now: int) -> str:
    """What a sign-in of ``user`` with methods ``amr`` still needs (READY, SECOND_FACTOR, ENROL)."""
    if "mfa" in amr:
        return READY
    if user.second_factors.enrolled:
        return SECOND_FACTOR
    ends = grace_ends(user, settings, now)
    if ends is not None and now >= ends:
        return ENROL
    return READY


def password_alone_refused(user: User, settings: Settings, now: int) -> bool:
    """Whether a password alone may not open a session (the password grant, SPEC
    §11: "a browser sign-in with a second factor is required")."""
    return needs(user, ("pwd",), settings, now) != READY
