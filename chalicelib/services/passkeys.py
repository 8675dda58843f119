"""Passkeys and security keys (SPEC §11): W3C Web Authentication Level 2, through
the ``webauthn`` package (imported on first use: no token endpoint, JWT check or
introspection loads it).

* **Relying party**: its id is the issuer's host (WebAuthn L2 §5.1.3 "RP ID"), its
  origin the issuer's scheme, host and port; the name shown is "Tessera".
* **Registration** (§7.1): discoverable credentials (``residentKey: required``)
  with user verification (``userVerification: required``); ES256, EdDSA and
  RS256; the user's own credentials excluded; at most ``MAX_PASSKEYS``, each named.
* **Authentication** (§7.2): as a second factor (``allowCredentials``: the
  user's passkeys) or as a first factor (no ``allowCredentials``: the
  authenticator offers its discoverable credentials and the assertion's
  ``userHandle`` names the user). User verification is required either way, so a
  passkey alone is two factors (possession and a PIN or biometric): RFC 8176
  ``hwk`` (``swk`` when backup eligible, a synced key) and ``mfa``.
* **Once only**: every challenge is stored with its purpose and user and spent by
  one conditional delete (``ChallengesRepo.op_consume``), so a response is
  accepted once; the signature counter (§6.1.1) is advanced by one conditional
  write (``MfaRepo.op_use_passkey``), so a cloned authenticator's stale count is
  refused, and of concurrent uses of one assertion exactly one commits. Both go
  in the caller's transaction (with the session it opens or upgrades).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.errors import ConditionFailed, Conflict, Forbidden, NotFound, Unprocessable
from chalicelib.models import Passkey, User
from chalicelib.security.opaque import random_b62
from chalicelib.services.security_log import SecurityLog, Where
from chalicelib.storage.identities import UsersRepo, passkey_to_item
from chalicelib.storage.mfa import ChallengesRepo, MfaRepo
from chalicelib.storage.tables import Transact

if TYPE_CHECKING:
    from webauthn.helpers.structs import AuthenticationCredential

    from chalicelib.services.notices import Notices

RP_NAME = "Tessera"
MAX_PASSKEYS = 10
MAX_NAME = 64
CHALLENGE_SECONDS = 300          # a ceremony's options are good this long
TIMEOUT_MS = CHALLENGE_SECONDS * 1000
# What a challenge was issued for: one purpose's response never completes another.
REGISTER, SECOND_FACTOR, SIGN_IN = "register", "second_factor", "signin"
REFUSED = "That passkey could not be verified. Try again, or use another way to sign in."
NOT_VERIFIED = "The passkey could not be verified"   # a registration's 422, whatever the cause
SPENT = "That passkey request was already used or has expired. Try again."


def check_name(name: object) -> str:
    """A passkey's name: white space around it dropped, then 1 to 64 characters, no
    control character (the rule of a PAT's description)."""
    if not isinstance(name, str):
        raise Unprocessable("name must be a string")
    text = name.strip()
    if not text:
        raise Unprocessable("name must not be empty")
    if len(text) > MAX_NAME:
        raise Unprocessable(f"name must be at most {MAX_NAME} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise Unprocessable("name must not contain control characters")
    return text


@dataclass(frozen=True)
class RelyingParty:
    id: str          # the issuer's host
    origin: str      # scheme://host[:port] of the issuer

    @classmethod
    def of(cls, issuer: str) -> RelyingParty:
        parts = urlsplit(issuer)
        return cls(parts.hostname or "", f"{parts.scheme}://{parts.netloc}")


@dataclass(frozen=True)
class Asserted:
    """An assertion that checked out: whose, which passkey (its RFC 8176 method is
    ``passkey.amr``), and the writes that spend its challenge and advance its
    counter (for the caller's transaction)."""

    user: User
    passkey: Passkey
    ops: list[dict[str, Any]]

    @property
    def method(self) -> str:
        return self.passkey.amr


def passkey_view(p: Passkey) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "created_at": p.created_at,
            "last_used_at": p.last_used_at or None}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _challenge_of(client_data_json: bytes) -> bytes:
    """The challenge a response answers (its ``clientDataJSON``, §5.8.1); the
    library then checks it equals the one we pass, and the store that we issued it."""
    try:
        data = json.loads(client_data_json)
        challenge = _unb64url(str(data["challenge"]))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise Unprocessable(f"{NOT_VERIFIED}: its clientDataJSON names no challenge") from exc
    if not 16 <= len(challenge) <= 128:
        raise Unprocessable(f"{NOT_VERIFIED}: its clientDataJSON names no challenge")
    return challenge


def _client_data(credential: dict[str, Any]) -> bytes:
    response = credential.get("response")
    raw = response.get("clientDataJSON") if isinstance(response, dict) else None
    if not isinstance(raw, str):
        raise Unprocessable(f"{NOT_VERIFIED}: it has no clientDataJSON")
    try:
        return _unb64url(raw)
    except (ValueError, binascii.Error) as exc:
        raise Unprocessable(f"{NOT_VERIFIED}: its clientDataJSON is not base64url") from exc


class Passkeys:
    def __init__(self, repo: MfaRepo, challenges: ChallengesRepo, users: UsersRepo,
                 security_log: SecurityLog, clock: Clock, *, transact: Transact,
                 notices: Callable[[], Notices] | None = None) -> None:
        self.repo = repo
        self.challenges = challenges
        self.users = users
        self.security_log = security_log
        self.clock = clock
        self.transact = transact
        # Mails the owner of a passkey added or removed, after its write; None in unit tests.
        self._notices = notices

    def _tell(self, user: User, added: bool) -> None:
        if self._notices is not None:
            self._notices().second_factor_changed(user, added, "passkey")

    # -- registration (WebAuthn L2 §7.1) -------------------------------------------------

    def registration_options(self, user: User, issuer: str) -> str:
        """``PublicKeyCredentialCreationOptions`` as JSON, its challenge stored for ``user``."""
        from webauthn import generate_registration_options, options_to_json
        from webauthn.helpers.cose import COSEAlgorithmIdentifier as Alg
        from webauthn.helpers.structs import (
            AuthenticatorSelectionCriteria,
            AuthenticatorTransport,
            PublicKeyCredentialDescriptor,
            ResidentKeyRequirement,
            UserVerificationRequirement,
        )

        if len(user.second_factors.passkeys) >= MAX_PASSKEYS:
            raise Conflict(f"At most {MAX_PASSKEYS} passkeys; remove one first")
        rp = RelyingParty.of(issuer)
        known = {t.value for t in AuthenticatorTransport}
        options = generate_registration_options(
            rp_id=rp.id, rp_name=RP_NAME, user_id=user.id.encode("ascii"),
            user_name=user.username, user_display_name=user.username, timeout=TIMEOUT_MS,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(
                    id=_unb64url(p.credential_id),
                    transports=[AuthenticatorTransport(t) for t in p.transports if t in known])
                for p in user.second_factors.passkeys],
            supported_pub_key_algs=[Alg.ECDSA_SHA_256, Alg.EDDSA, Alg.RSASSA_PKCS1_v1_5_SHA_256])
        self.challenges.put(options.challenge, REGISTER, user.id,
                            self.clock.now() + CHALLENGE_SECONDS)
        return str(options_to_json(options))

    def register(self, user: User, issuer: str, name: str, credential: dict[str, Any],
                 where: Where,
                 also: Callable[[Passkey], list[dict[str, Any]]] | None = None) -> Passkey:
        """Verify a new credential (§7.1: challenge, origin, rp id, user presence and
        verification, attestation "none" or a valid one) and record it, its
        challenge spent and the security log's entry in the same transaction;
        ``also``: more writes for it (a web sign-in's upgrade, given the passkey)."""
        from webauthn import verify_registration_response
        from webauthn.helpers.cose import COSEAlgorithmIdentifier as Alg
        from webauthn.helpers.structs import CredentialDeviceType

        name = check_name(name)
        rp, now = RelyingParty.of(issuer), self.clock.now()
        challenge = _challenge_of(_client_data(credential))
        try:
            verified = verify_registration_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=rp.id,
                expected_origin=rp.origin, require_user_verification=True,
                supported_pub_key_algs=[Alg.ECDSA_SHA_256, Alg.EDDSA,
                                        Alg.RSASSA_PKCS1_v1_5_SHA_256])
        except Exception as exc:  # any failure on foreign bytes is a refusal
            log.info(json.dumps({"event": "passkey_refused", "user_id": user.id,
                                 "reason": str(exc)[:200]}))
            raise Unprocessable(f"{NOT_VERIFIED}: start adding it again") from exc
        credential_id = _b64url(verified.credential_id)
        existing = user.second_factors.passkeys
        if any(p.credential_id == credential_id for p in existing):
            raise Conflict("This passkey is already added")
        if len(existing) >= MAX_PASSKEYS:
            raise Conflict(f"At most {MAX_PASSKEYS} passkeys; remove one first")
        response = credential.get("response") or {}
        transports = response.get("transports") if isinstance(response, dict) else None
        passkey = Passkey(
            id=random_b62(16), name=name, credential_id=credential_id,
            public_key=_b64url(verified.credential_public_key), sign_count=verified.sign_count,
            created_at=now,
            transports=tuple(str(t)[:16] for t in transports[:8])
            if isinstance(transports, list) else (),
            backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE)
        try:
            self.transact([
                self.challenges.op_consume(challenge, REGISTER, user.id, now),
                self.repo.op_add_passkey(user.id, passkey.id, passkey_to_item(passkey),
                                         first=not existing, cap=MAX_PASSKEYS),
                self.security_log.op(user.id, "mfa_added", where,
                                     {"method": "passkey", "name": name}),
                *(also(passkey) if also is not None else [])])
        except ConditionFailed as lost:
            raise Conflict(SPENT + " (or another passkey was added meanwhile)") from lost
        log.info(json.dumps({"event": "mfa_added", "user_id": user.id, "method": "passkey",
                             "passkey_id": passkey.id}))
        self._tell(user, True)
        return passkey

    def remove(self, user: User, passkey_id: str, where: Where) -> None:
        passkey = user.second_factors.passkey(passkey_id)
        if passkey is None:
            raise NotFound("No such passkey")
        try:
            self.transact([self.repo.op_remove_passkey(user.id, passkey_id),
                           self.security_log.op(user.id, "mfa_removed", where,
                                                {"method": "passkey", "name": passkey.name})])
        except ConditionFailed as lost:
            raise NotFound("No such passkey") from lost
        log.info(json.dumps({"event": "mfa_removed", "user_id": user.id, "method": "passkey",
                             "passkey_id": passkey_id}))
        self._tell(user, False)

    # -- authentication (WebAuthn L2 §7.2) -----------------------------------------------

    def authentication_options(self, issuer: str, user: User | None = None) -> str:
        """``PublicKeyCredentialRequestOptions`` as JSON. With ``user``: a second
        factor, ``allowCredentials`` its passkeys; without: a first factor, none
        listed (discoverable credentials)."""
        from webauthn import generate_authentication_options, options_to_json
        from webauthn.helpers.structs import (
            PublicKeyCredentialDescriptor,
            UserVerificationRequirement,
        )

        rp = RelyingParty.of(issuer)
        if user is not None and not user.second_factors.passkeys:
            raise Conflict("No passkey is set up")
        allowed = [PublicKeyCredentialDescriptor(id=_unb64url(p.credential_id))
                   for p in (user.second_factors.passkeys if user else ())]
        options = generate_authentication_options(
            rp_id=rp.id, timeout=TIMEOUT_MS, allow_credentials=allowed,
            user_verification=UserVerificationRequirement.REQUIRED)
        self.challenges.put(options.challenge, SECOND_FACTOR if user else SIGN_IN,
                            user.id if user else "", self.clock.now() + CHALLENGE_SECONDS)
        return str(options_to_json(options))

    def verify(self, issuer: str, credential: object, user: User | None = None) -> Asserted:
        """Check an assertion: of ``user``'s passkeys (a second factor), or, without
        ``user``, of the user its ``userHandle`` names (a first factor). Signature,
        challenge, origin, rp id, user presence and verification (§7.2), then the
        counter; the writes that spend it come back in ``Asserted.ops``."""
        from webauthn import verify_authentication_response
        from webauthn.helpers import parse_authentication_credential_json

        if not isinstance(credential, dict):
            raise Unprocessable("credential must be an object")
        try:
            parsed: AuthenticationCredential = parse_authentication_credential_json(credential)
        except Exception as exc:  # any failure on foreign bytes is a refusal
            raise Unprocessable("credential is not a WebAuthn assertion") from exc
        challenge = _challenge_of(parsed.response.client_data_json)
        handle = parsed.response.user_handle
        purpose = SECOND_FACTOR if user is not None else SIGN_IN
        if user is None:
            # §7.2 step 6: a discoverable credential names its user.
            found = self.users.get(handle.decode("ascii", "replace")) if handle else None
            if found is None or not found.active:
                raise Forbidden(REFUSED, detail="assertion names no active user")
            user = found
        elif handle and handle != user.id.encode("ascii"):
            raise Forbidden(REFUSED, detail="assertion's user handle is another user")
        credential_id = _b64url(parsed.raw_id)
        passkey = next((p for p in user.second_factors.passkeys
                        if p.credential_id == credential_id), None)
        if passkey is None:
            raise Forbidden(REFUSED, detail="unknown credential")
        rp = RelyingParty.of(issuer)
        try:
            # The counter is ours to check (below, and in the conditional write): 0 here.
            verified = verify_authentication_response(
                credential=parsed, expected_challenge=challenge, expected_rp_id=rp.id,
                expected_origin=rp.origin, credential_public_key=_unb64url(passkey.public_key),
                credential_current_sign_count=0, require_user_verification=True)
        except Exception as exc:  # any failure on foreign bytes is a refusal
            raise Forbidden(REFUSED, detail=f"assertion refused: {str(exc)[:200]}") from exc
        count = verified.new_sign_count
        # §6.1.1: a count not above the stored one (unless both are 0, an
        # authenticator without a counter) means two authenticators hold the key.
        if not (count > passkey.sign_count or count == passkey.sign_count == 0):
            log.warning(json.dumps({"event": "passkey_counter_stale", "user_id": user.id,
                                    "passkey_id": passkey.id, "stored": passkey.sign_count,
                                    "presented": count}))
            raise Forbidden(REFUSED, detail="signature counter did not increase: "
                                            "possibly a cloned authenticator")
        now = self.clock.now()
        ops = [self.challenges.op_consume(challenge, purpose,
                                          user.id if purpose == SECOND_FACTOR else "", now),
               self.repo.op_use_passkey(user.id, passkey.id, passkey.credential_id,
                                        passkey.sign_count, count, now)]
        return Asserted(user, passkey, ops)
