"""Second factors, kept on the user item (SPEC §11), so that the read a sign-in
already makes tells whether it needs one (SPEC §9: no extra read).

Attributes of a user item:

* ``totp``          ``{sealed, last_step, created_at}``: the confirmed TOTP secret,
  sealed (``security.sealing``), and the last time step accepted;
* ``totp_pending``  ``{sealed, created_at}``: a secret shown for enrolment, until
  its confirming code arrives;
* ``passkeys``      passkey id -> ``{name, credential_id, public_key, sign_count,
  created_at, last_used_at, transports, backup_eligible}``;
* ``recovery``      a string set of the digests of the unused recovery codes.

Every use of a factor is one conditional write, so of concurrent uses of one TOTP
step, one recovery code or one assertion exactly one succeeds. WebAuthn challenges
(``ChallengesRepo``) live in the devices table, each spent by one conditional delete.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from chalicelib.errors import ConditionFailed
from chalicelib.storage.dynamo import Table

_USER = "attribute_exists(id) AND active = :true"


class MfaRepo:
    def __init__(self, table: Table) -> None:
        self.table = table

    @staticmethod
    def key(user_id: str) -> dict[str, str]:
        return {"id": user_id}

    # -- TOTP -------------------------------------------------------------------------

    def begin_totp(self, user_id: str, sealed: str, now: int) -> bool:
        """Keep a new secret until its confirming code; False if a TOTP is already
        confirmed (remove it first). Replaces an earlier pending one."""
        try:
            self.table.update(self.key(user_id), "SET totp_pending = :p",
                              condition=_USER + " AND attribute_not_exists(totp)",
                              values={":p": {"sealed": sealed, "created_at": now}, ":true": True})
        except ConditionFailed:
            return False
        return True

    def op_confirm_totp(self, user_id: str, sealed: str, step: int, now: int,
                        recovery: Iterable[str] = ()) -> dict[str, Any]:
        """Make the pending secret the user's TOTP, its confirming step used; with
        ``recovery``, the first factor's recovery codes too. The condition: the
        pending secret is still the one the code was checked against and no TOTP
        was confirmed meanwhile (two confirmations: one wins)."""
        expression = "SET totp = :t REMOVE totp_pending"
        values: dict[str, Any] = {":t": {"sealed": sealed, "last_step": step, "created_at": now},
                                  ":p": sealed, ":true": True}
        codes = set(recovery)
        if codes:
            expression = "SET totp = :t, recovery = :r REMOVE totp_pending"
            values[":r"] = codes
        return self.table.op_update(
            self.key(user_id), expression,
            condition=_USER + " AND totp_pending.sealed = :p AND attribute_not_exists(totp)",
            values=values)

    def op_use_totp_step(self, user_id: str, sealed: str, step: int) -> dict[str, Any]:
        """Accept the code of time step ``step`` once (RFC 6238 §5.2: "the verifier MUST
        NOT accept the second attempt of the OTP after the successful validation"):
        the condition holds only while the stored last step is older, so of 20
        concurrent uses of one code exactly one commits, and a code of an older
        step than one already used is refused too."""
        return self.table.op_update(
            self.key(user_id), "SET totp.last_step = :s",
            condition=_USER + " AND totp.sealed = :sealed AND totp.last_step < :s",
            values={":s": step, ":sealed": sealed, ":true": True})

    def remove_totp(self, user_id: str) -> bool:
        """Remove the TOTP (and a pending one); False if there was none."""
        try:
            self.table.update(self.key(user_id), "REMOVE totp, totp_pending",
                              condition="attribute_exists(id) AND attribute_exists(totp)")
        except ConditionFailed:
            return False
        return True

    # -- recovery codes -----------------------------------------------------------------

    def op_set_recovery(self, user_id: str, digests: Iterable[str]) -> dict[str, Any]:
        """Replace every recovery code (the old ones stop working at once)."""
        return self.table.op_update(self.key(user_id), "SET recovery = :r",
                                    condition=_USER,
                                    values={":r": set(digests), ":true": True})

    def op_use_recovery(self, user_id: str, code_digest: str) -> dict[str, Any]:
        """Spend one recovery code: the condition holds only while it is unused, so
        one code gets in once, however many use it at the same time."""
        return self.table.op_update(self.key(user_id), "DELETE recovery :h",
                                    condition=_USER + " AND contains(recovery, :one)",
                                    values={":h": {code_digest}, ":one": code_digest,
                                            ":true": True})

    # -- passkeys (WebAuthn) ------------------------------------------------------------

    def op_add_passkey(self, user_id: str, passkey_id: str, item: dict[str, Any],
                       first: bool, cap: int) -> dict[str, Any]:
        """Record a new passkey. ``first``: the user had none as read, so the map is
        created, and only while still absent; else the condition holds only while
        the map has room (below ``cap``) and no passkey of this id exists, so two
        registrations at once never exceed the cap nor overwrite each other."""
        if first:
            return self.table.op_update(
                self.key(user_id), "SET passkeys = :m",
                condition=_USER + " AND attribute_not_exists(passkeys)",
                values={":m": {passkey_id: item}, ":true": True})
        return self.table.op_update(
            self.key(user_id), "SET passkeys.#p = :pk",
            condition=(_USER + " AND attribute_exists(passkeys) AND size(passkeys) < :cap"
                       " AND attribute_not_exists(passkeys.#p)"),
            names={"#p": passkey_id}, values={":pk": item, ":cap": cap, ":true": True})

    def op_use_passkey(self, user_id: str, passkey_id: str, credential_id: str,
                       stored: int, new: int, now: int) -> dict[str, Any]:
        """Accept an assertion's signature counter (WebAuthn L2 §6.1.1): the
        condition holds only while the stored count is still the one the assertion
        was checked against and the new count is greater, or both are 0 (an
        authenticator that keeps no counter); so of concurrent uses of one
        assertion exactly one commits, and a clone's stale count never does. It
        also records when the passkey was last used."""
        if new == 0 and stored == 0:
            condition = " AND passkeys.#p.sign_count = :zero"
            values: dict[str, Any] = {":zero": 0}
        else:
            condition = " AND passkeys.#p.sign_count = :old AND passkeys.#p.sign_count < :new"
            values = {":old": stored}
        return self.table.op_update(
            self.key(user_id), "SET passkeys.#p.sign_count = :new, passkeys.#p.last_used_at = :now",
            condition=_USER + " AND passkeys.#p.credential_id = :cid" + condition,
            names={"#p": passkey_id},
            values={**values, ":new": new, ":now": now, ":cid": credential_id, ":true": True})

    def op_remove_passkey(self, user_id: str, passkey_id: str) -> dict[str, Any]:
        """Remove one passkey; the condition fails when it is already gone."""
        return self.table.op_update(self.key(user_id), "REMOVE passkeys.#p",
                                    condition="attribute_exists(id) AND attribute_exists(passkeys.#p)",
                                    names={"#p": passkey_id})


class ChallengesRepo:
    """WebAuthn challenges (W3C WebAuthn L2 §13.4.3: random, used once), kept in
    the devices table as ``wa#<SHA-256 of the challenge>`` with their purpose and
    user, for ``CHALLENGE_SECONDS`` (``ttl`` removes them later; the condition
    checks the expiry, since TTL is lazy)."""

    def __init__(self, table: Table) -> None:
        self.table = table

    @staticmethod
    def key(challenge: bytes) -> dict[str, str]:
        return {"pk": "wa#" + hashlib.sha256(challenge).hexdigest()}

    def put(self, challenge: bytes, purpose: str, user_id: str, expires_at: int) -> None:
        # attribute_not_exists: a challenge (random, 32 bytes) is issued once.
        self.table.put({**self.key(challenge), "purpose": purpose, "user_id": user_id,
                        "expires_at": expires_at, "ttl": expires_at},
                       condition="attribute_not_exists(pk)")

    def op_consume(self, challenge: bytes, purpose: str, user_id: str, now: int) -> dict[str, Any]:
        """Spend a challenge: the condition holds only while it exists, was issued
        for this purpose and user ("" for a sign-in that names no user yet) and has
        not expired, so a replayed response (its challenge already spent) never
        commits, nor one of a challenge issued for another ceremony."""
        return self.table.op_delete(
            self.key(challenge),
            condition="attribute_exists(pk) AND purpose = :p AND user_id = :u AND expires_at > :now",
            values={":p": purpose, ":u": user_id, ":now": now})
