"""Second factors (SPEC §11): TOTP (RFC 6238) and recovery codes, enrolled,
verified and removed. Passkeys (WebAuthn) are ``services.passkeys``.

* **TOTP**: SHA-1, 6 digits, 30 s steps (RFC 6238 §4, the defaults every
  authenticator app reads from an ``otpauth://`` URI), a code of the step before
  or after accepted for clock drift (§5.2, "at most one time step"), each step
  once: accepting one is a conditional write (``MfaRepo.op_use_totp_step``). The
  secret is shown once, at enrolment, and stored sealed (``security.sealing``).
* **Recovery codes**: ten, shown once, stored as digests; each gets in once.

A wrong code counts as a failed sign-in of the user and the source (the same
counters and lockout as a wrong password, SPEC §8), so the second factor cannot
be guessed faster than the password.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import Conflict, Forbidden, TooManyRequests
from chalicelib.models import User
from chalicelib.security.sealing import Sealer
from chalicelib.services.authn import PasswordSignIn
from chalicelib.services.security_log import SecurityLog, Where
from chalicelib.storage.mfa import MfaRepo
from chalicelib.storage.tables import BatchGet, Transact

if TYPE_CHECKING:
    import pyotp

    from chalicelib.services.notices import Notices

TOTP_STEP = 30
TOTP_DIGITS = 6
TOTP_DRIFT_STEPS = 1
PENDING_SECONDS = 15 * 60        # a shown secret awaits its confirming code this long
RECOVERY_CODES = 10
# A recovery code: 12 characters of RFC 4648's base32 alphabet, lower case (60
# bits), shown as three groups of four.
RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
RECOVERY_LEN = 12
BAD_CODE = "That code is not valid. Check your authenticator app or recovery code and try again."


def _totp(secret: str) -> pyotp.TOTP:
    import pyotp  # on first use: only second-factor calls and pages load it

    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP)


def normalise_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LEN))
        codes.append("-".join(raw[i:i + 4] for i in range(0, RECOVERY_LEN, 4)))
    return codes


def recovery_digest(user_id: str, code: str) -> str:
    """What is stored of a recovery code: SHA-256 over the user's id and the code
    (60 random bits; salted per user, so no table of digests serves two users)."""
    return hashlib.sha256(f"tessera-recovery:{user_id}:{normalise_recovery(code)}"
                          .encode()).hexdigest()


def looks_like_totp(code: str) -> bool:
    return len(code) == TOTP_DIGITS and code.isascii() and code.isdigit()


@dataclass(frozen=True)
class Enrolment:
    """A TOTP secret shown once: as text and as an ``otpauth://`` URI (the QR code)."""

    secret: str
    otpauth_uri: str


@dataclass(frozen=True)
class Verified:
    """A second factor that checked out: its RFC 8176 method, and the writes that
    spend it (for the caller's transaction)."""

    method: str
    ops: list[dict[str, Any]]
    factor: str = "totp"      # "totp" or "recovery_code"

    def committed(self, user: User) -> None:
        """The audit line of a factor spent (once its writes committed)."""
        log.info(json.dumps({"event": "recovery_code_used" if self.factor == "recovery_code"
                             else "totp_used", "user_id": user.id}))


class SecondFactors:
    def __init__(self, repo: MfaRepo, sealer: Sealer, password_signin: PasswordSignIn,
                 security_log: SecurityLog, clock: Clock, settings: Settings, *,
                 transact: Transact, batch_get: BatchGet, issuer_name: str = "Tessera",
                 notices: Callable[[], Notices] | None = None) -> None:
        self.repo = repo
        self.sealer = sealer
        self.password_signin = password_signin
        self.security_log = security_log
        self.clock = clock
        self.settings = settings
        self.transact = transact
        self.batch_get = batch_get
        self.issuer_name = issuer_name
        # Mails the owner of a factor added or removed, after its write; None in unit tests.
        self._notices = notices

    def _tell(self, user: User, added: bool, method: str) -> None:
        if self._notices is not None:
            self._notices().second_factor_changed(user, added, method)

    # -- status -------------------------------------------------------------------------

    @staticmethod
    def status(user: User) -> dict[str, Any]:
        """SPEC §11 ``GET /v1/mfa``."""
        f = user.second_factors
        return {"totp": {"enrolled": bool(f.totp_sealed)},
                "passkeys": [{"id": p.id, "name": p.name, "created_at": p.created_at,
                              "last_used_at": p.last_used_at or None} for p in f.passkeys],
                "recovery_codes": {"remaining": len(f.recovery)}}

    # -- TOTP enrolment -----------------------------------------------------------------

    def begin_totp(self, user: User, issuer_host: str = "") -> Enrolment:
        """A new secret, pending until a code of it confirms it (``confirm_totp``)."""
        import pyotp

        if user.second_factors.totp_sealed:
            raise Conflict("An authenticator app is already set up; remove it first")
        secret = pyotp.random_base32()   # 160 bits, RFC 4226 §4's recommended length
        if not self.repo.begin_totp(user.id, self.sealer.seal(secret, user.id), self.clock.now()):
            raise Conflict("An authenticator app is already set up; remove it first")
        return Enrolment(secret, self._uri(user, secret, issuer_host))

    def pending_totp(self, user: User, issuer_host: str = "") -> Enrolment | None:
        """The enrolment awaiting its code (to show again after a wrong one), if any."""
        f = user.second_factors
        if not f.totp_pending or self.clock.now() - f.totp_pending_at > PENDING_SECONDS:
            return None
        secret = self.sealer.open(f.totp_pending, user.id)
        return Enrolment(secret, self._uri(user, secret, issuer_host)) if secret else None

    def _uri(self, user: User, secret: str, issuer_host: str) -> str:
        """RFC 6238 parameters as the ``otpauth://`` key URI every authenticator app reads."""
        label = f"{self.issuer_name}{' (' + issuer_host + ')' if issuer_host else ''}"
        return _totp(secret).provisioning_uri(name=user.username, issuer_name=label)

    def confirm_totp(self, user: User, code: str, where: Where,
                     also: list[dict[str, Any]] | None = None) -> list[str]:
        """Confirm the pending secret with a code of it; returns the new recovery
        codes when this is the user's first second factor (else []). ``also``: more
        writes for the same transaction (a web sign-in's upgrade)."""
        f, now = user.second_factors, self.clock.now()
        if not f.totp_pending or now - f.totp_pending_at > PENDING_SECONDS:
            raise Conflict("Start setting up the authenticator app again: no setup is pending")
        secret = self.sealer.open(f.totp_pending, user.id)
        if secret is None:
            raise Conflict("Start setting up the authenticator app again")
        step = self._matching_step(secret, code, after=0)
        if step is None:
            # A code of the right shape that is not the app's: refused, as at a sign-in.
            raise Forbidden(BAD_CODE, detail="confirming code refused")
        first = not f.enrolled
        codes = new_recovery_codes() if first else []
        op = self.repo.op_confirm_totp(user.id, f.totp_pending, step, now,
                                       [recovery_digest(user.id, c) for c in codes])
        self.transact([op, self.security_log.op(user.id, "mfa_added", where, {"method": "totp"}),
                       *(also or [])])
        log.info(json.dumps({"event": "mfa_added", "user_id": user.id, "method": "totp"}))
        self._tell(user, True, "totp")
        return codes

    def remove_totp(self, user: User, where: Where) -> None:
        if not self.repo.remove_totp(user.id):
            raise Conflict("No authenticator app is set up")
        self.security_log.record(user.id, "mfa_removed", where, {"method": "totp"})
        log.info(json.dumps({"event": "mfa_removed", "user_id": user.id, "method": "totp"}))
        self._tell(user, False, "totp")

    # -- recovery codes -----------------------------------------------------------------

    def first_recovery_codes(self, user: User, where: Where) -> list[str]:
        """The recovery codes of a first factor just enrolled in its own write (a
        passkey): ten, replacing any (a user item takes one write per transaction)."""
        codes = new_recovery_codes()
        self.transact([self.repo.op_set_recovery(user.id, [recovery_digest(user.id, c)
                                                           for c in codes])])
        return codes

    def regenerate_recovery(self, user: User, where: Where) -> list[str]:
        """Ten new codes; the old ones stop working in the same write."""
        if not user.second_factors.enrolled:
            raise Conflict("Set up an authenticator app or a passkey first")
        codes = new_recovery_codes()
        self.transact([self.repo.op_set_recovery(user.id, [recovery_digest(user.id, c)
                                                           for c in codes]),
                       self.security_log.op(user.id, "mfa_added", where,
                                            {"method": "recovery_codes"})])
        log.info(json.dumps({"event": "recovery_codes_regenerated", "user_id": user.id}))
        self._tell(user, True, "recovery_codes")
        return codes

    # -- verifying --------------------------------------------------------------------------

    def verify(self, user: User, code: str, where: Where) -> Verified:
        """Check a TOTP code or a recovery code of ``user``; the writes that spend it
        come back for the caller's transaction (one conditional write each, so of
        concurrent uses exactly one commits: ``ConditionFailed`` for the others).
        A wrong code counts as a failed sign-in (SPEC §8); a locked user is refused.
        """
        code = code.strip().replace(" ", "")
        self._refuse_if_locked(user, where.ip)
        f = user.second_factors
        if looks_like_totp(code) and f.totp_sealed:
            secret = self.sealer.open(f.totp_sealed, user.id)
            step = self._matching_step(secret, code, after=f.totp_last_step) if secret else None
            if step is not None:
                return Verified("otp", [self.repo.op_use_totp_step(user.id, f.totp_sealed, step)])
        elif len(normalise_recovery(code)) == RECOVERY_LEN:
            hashed = recovery_digest(user.id, code)
            if any(hmac.compare_digest(hashed, h) for h in f.recovery):
                return Verified("otp", [
                    self.repo.op_use_recovery(user.id, hashed),
                    self.security_log.op(user.id, "recovery_code_used", where,
                                         {"remaining": len(f.recovery) - 1})], "recovery_code")
        self._count_failure(user, where.ip)
        raise Forbidden(BAD_CODE, detail="second factor refused")

    def _matching_step(self, secret: str, code: str, *, after: int) -> int | None:
        """The time step within the drift window whose code is ``code`` and which is
        later than ``after`` (a step already used), or None."""
        if not looks_like_totp(code):
            return None
        totp, now_step = _totp(secret), self.clock.now() // TOTP_STEP
        for step in range(now_step - TOTP_DRIFT_STEPS, now_step + TOTP_DRIFT_STEPS + 1):
            if step > after and hmac.compare_digest(totp.at(step * TOTP_STEP), code):
                return step
        return None

    def _refuse_if_locked(self, user: User, source: str) -> None:
        signin = self.password_signin
        keys = [{"pk": signin.user_counter_key(user.username)},
                {"pk": signin.source_counter_key(source)}]
        items = {i["pk"]: i for i in self.batch_get({"throttle": keys})["throttle"]}
        if any(signin.blocked(c) for c in signin.counters(user.username, source, items)):
            raise TooManyRequests("Too many failed attempts. Wait a while and try again.")

    def _count_failure(self, user: User, source: str) -> None:
        signin = self.password_signin
        signin.count_failure(signin.counters(user.username, source, {}), source)
