"""The ``replay`` table: CI job tokens already exchanged (SPEC §6 federation).

One item per job token, keyed by ``"jti#" + SHA-256(iss, jti)`` (an issuer's
``jti`` is unique only within that issuer, and a digest keeps the key short and
free of whatever characters the issuer put in it). The item lives until the job
token could no longer be accepted anyway (its ``exp`` plus the leeway), then TTL
removes it; until then a second exchange of the same token finds it and is
refused. The guard is one conditional PutItem, no read.
"""

from __future__ import annotations

import hashlib
import secrets

from chalicelib.errors import ConditionFailed
from chalicelib.storage.dynamo import Table


def replay_key(issuer: str, jti: str) -> str:
    """The item key of one job token: its issuer and ``jti``, length-prefixed so
    that no two (issuer, jti) pairs share an encoding."""
    encoded = f"{len(issuer)}:{issuer}{jti}".encode()
    return "jti#" + hashlib.sha256(encoded).hexdigest()


class ReplayRepo:
    def __init__(self, table: Table) -> None:
        self.table = table

    def first_use(self, issuer: str, jti: str, *, keep_until: int, now: int) -> bool:
        """Record the use of a job token; False if it was used before (a replay).

        Safe to retry after a lost answer: the item carries a nonce of this call,
        and a failed condition whose old item (ALL_OLD) holds that nonce is our own
        write, committed before the answer was lost, not a replay.
        """
        nonce = secrets.token_urlsafe(16)
        try:
            # attribute_not_exists: of any number of concurrent exchanges of one job
            # token exactly one records it; an item past its ttl (TTL deletes
            # lazily) belonged to a token that can no longer verify, so it does not count.
            self.table.put({"pk": replay_key(issuer, jti), "nonce": nonce, "used_at": now,
                            "ttl": keep_until},
                           condition="attribute_not_exists(pk) OR #ttl < :now",
                           names={"#ttl": "ttl"}, values={":now": now})
        except ConditionFailed as lost:
            return (lost.item or {}).get("nonce") == nonce
        return True
