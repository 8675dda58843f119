"""The ``keys`` table: the public half of the signing keys (SPEC §7, §9).

Verifying a JWT and serving the JWKS need public keys only. Secrets Manager
holds the whole key set (``storage/keystore.py``) and stays the one source of
truth; every change to it is then published here, without the private keys, in
one item. An instance that only verifies (``/v1/me``, introspection, a resource
server's JWKS) so reads one DynamoDB item instead of building a second AWS
client and calling Secrets Manager on its first request.

The item, ``pk = "jwks"``: ``seq``, the key set's change counter; ``keys``, the
public JWKs (RFC 7517) in the key set's order; ``published_at``. A publication
holds only if the stored ``seq`` is lower: of two instances publishing
different versions, however late one of them is, the newer key set stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.errors import ConditionFailed
from chalicelib.storage.dynamo import Table

TABLE = "keys"
ITEM_KEY = {"pk": "jwks"}


@dataclass(frozen=True)
class PublishedKeys:
    seq: int
    keys: tuple[dict[str, Any], ...]     # public JWKs, each with its kid and alg


def published_from_item(item: dict[str, Any] | None) -> PublishedKeys | None:
    """The published keys in the item (read by ``load`` or in a caller's batch)."""
    if item is None or not isinstance(item.get("keys"), list):
        return None
    keys = tuple(k for k in item["keys"] if isinstance(k, dict))
    return PublishedKeys(seq=int(item.get("seq", 0)), keys=keys)


class PublicKeysRepo:
    def __init__(self, table: Table) -> None:
        self.table = table

    def load(self) -> PublishedKeys | None:
        return published_from_item(self.table.get(ITEM_KEY))

    def publish(self, keys: list[dict[str, Any]], seq: int, now: int) -> bool:
        """Store the public JWKs of key-set change ``seq``; False if a change as
        new or newer is already published."""
        try:
            self.table.put({**ITEM_KEY, "seq": seq, "keys": keys, "published_at": now},
                           condition="attribute_not_exists(pk) OR seq < :seq",
                           values={":seq": seq})
        except ConditionFailed:
            return False
        return True
