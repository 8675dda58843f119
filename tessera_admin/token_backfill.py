"""Put PATs written before the expiry-notice index into it (``tokens backfill-notices``).

A Scan of the tokens table, here with the admin command and not in chalicelib:
no function runs it, and the functions' IAM policies (``deploy.iam``) are derived
from the code they reach, so none of them may Scan. Each PAT is added by
``PatsRepo.add_to_notices``, one conditional write: running it twice, or while
the stage serves, is harmless.
"""

from __future__ import annotations

from chalicelib.storage.pats import PatsRepo


def backfill_notices(pats: PatsRepo, now: int) -> int:
    """Add every unexpired, unrevoked PAT with an expiry that is not in the index; how many."""
    added = 0
    for item in pats.table.scan_all(projection="#o, id, kind, expires_at, revoked_at, notice_shard",
                                    names={"#o": "owner"}):
        expires_at = item.get("expires_at")
        if (item.get("kind") != "pat" or not isinstance(expires_at, int) or expires_at <= now
                or "notice_shard" in item or item.get("revoked_at") is not None):
            continue
        if pats.add_to_notices(item["owner"], item["id"], expires_at):
            added += 1
    return added
