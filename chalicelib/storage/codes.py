"""Authorization codes (RFC 6749 §4.1.2), kept in the devices table as ``ac#<digest>``.

The devices table already holds the other short-lived single-use grant (device
codes) keyed by a secret's digest, with TTL; a code is the same kind of item, so
it needs no table, no index and no IAM action of its own.

An item holds what the authorization request bound the code to (client,
redirect URI as presented, PKCE challenge, nonce, scope), who approved it and
when they signed in (``auth_time``), the browser's web session, and a snapshot
of the user as the approval saw it (profile claims and ``version``): the token
request then needs no read of the user (SPEC §9: 1 conditional write + 1 write),
and the session's transaction holds only if the user is still at that version.
``status`` is ``issued`` until redeemed, then ``used`` with the ``session_id``
the redemption created, so a second use can end that session (RFC 6749 §4.1.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.models import User
from chalicelib.storage.dynamo import Item, Table

ISSUED, USED = "issued", "used"


@dataclass(frozen=True)
class AuthorizationCode:
    digest: str
    client_id: str
    redirect_uri: str          # as the authorization request presented it ("" if omitted)
    code_challenge: str        # RFC 7636 S256 challenge ("" if none was sent)
    nonce: str
    scope: str
    user_id: str
    auth_time: int
    web_session_id: str
    created_at: int
    expires_at: int
    username: str = ""
    email: str = ""
    firstname: str = ""
    lastname: str = ""
    user_version: int = 0
    status: str = ISSUED
    session_id: str = ""
    amr: tuple[str, ...] = ("pwd",)   # how the person signed in (RFC 8176)

    def user(self) -> User:
        """The user as the approval saw it: enough for the ID token's claims and for
        the session's transaction (whose condition requires this version; an empty
        sessions map only skips pruning of expired entries)."""
        return User(id=self.user_id, username=self.username, email=self.email,
                    firstname=self.firstname, lastname=self.lastname, active=True,
                    sessions={}, version=self.user_version)


def code_from_item(item: Item) -> AuthorizationCode:
    return AuthorizationCode(
        digest=str(item["pk"])[3:], client_id=item["client_id"],
        redirect_uri=item.get("redirect_uri", ""), code_challenge=item.get("code_challenge", ""),
        nonce=item.get("nonce", ""), scope=item.get("scope", ""), user_id=item["user_id"],
        auth_time=int(item["auth_time"]), web_session_id=item.get("web_session_id", ""),
        created_at=int(item["created_at"]), expires_at=int(item["expires_at"]),
        username=item.get("username", ""), email=item.get("email", ""),
        firstname=item.get("firstname", ""), lastname=item.get("lastname", ""),
        user_version=int(item.get("user_version") or 0), status=item.get("status", ISSUED),
        session_id=item.get("session_id", ""),
        amr=tuple(item.get("amr") or ("pwd",)),
    )


class CodesRepo:
    def __init__(self, table: Table) -> None:
        self.table = table

    @staticmethod
    def key(digest: str) -> dict[str, str]:
        return {"pk": "ac#" + digest}

    def insert(self, code: AuthorizationCode) -> None:
        item: dict[str, Any] = {
            **self.key(code.digest), "client_id": code.client_id,
            "redirect_uri": code.redirect_uri, "code_challenge": code.code_challenge,
            "nonce": code.nonce, "scope": code.scope, "user_id": code.user_id,
            "auth_time": code.auth_time, "web_session_id": code.web_session_id,
            "created_at": code.created_at, "expires_at": code.expires_at,
            "username": code.username, "email": code.email, "firstname": code.firstname,
            "lastname": code.lastname, "user_version": code.user_version, "status": ISSUED,
            "ttl": code.expires_at, "amr": list(code.amr),
        }
        # attribute_not_exists: a fresh random code never overwrites another.
        self.table.put(item, condition="attribute_not_exists(pk)")

    def get(self, digest: str) -> AuthorizationCode | None:
        item = self.table.get(self.key(digest))
        return code_from_item(item) if item else None

    def redeem(self, digest: str, *, client_id: str, redirect_uri: str, code_challenge: str,
               session_id: str, now: int) -> AuthorizationCode:
        """Spend a code for the session ``session_id``: one conditional write, no read.

        The condition guarantees single use (only an ``issued`` code becomes
        ``used``, so of concurrent redemptions exactly one succeeds), that the code
        is unexpired, redeemed by the client it was issued to, with the redirect
        URI of its request (RFC 6749 §4.1.3) and the PKCE challenge the verifier
        hashes to (RFC 7636 §4.6). Anything else raises ConditionFailed carrying
        the item as it was (ALL_OLD), which tells the caller why; a refused
        verifier or redirect URI leaves the code to its rightful holder.
        """
        item = self.table.update(
            self.key(digest), "SET #status = :used, session_id = :sid, used_at = :now",
            condition="attribute_exists(pk) AND #status = :issued AND client_id = :client "
                      "AND expires_at > :now AND redirect_uri = :ru AND code_challenge = :cc",
            names={"#status": "status"},
            values={":used": USED, ":sid": session_id, ":now": now, ":issued": ISSUED,
                    ":client": client_id, ":ru": redirect_uri, ":cc": code_challenge})
        assert item is not None
        return code_from_item(item)
