"""Users and clients tables.

A user item records its sessions in the map ``sessions`` (session id -> cap)
and carries a ``version``. Both are written in the transaction that creates a
session, whose condition on the user (exists, active, version unchanged) is
what makes disabling, narrowing and password resets reach every session: a
session either was recorded in the map before the change (and the change ends
or narrows it) or is never created. Unlike the ``by_user`` index of the
sessions table, the map is read strongly consistently. The same condition
bounds the map by the per-user session cap (``op_add_session``), far below
DynamoDB's 400 KB item limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chalicelib.models import NO_SECOND_FACTOR, Client, Passkey, SecondFactors, User
from chalicelib.storage.dynamo import Item, Table

# Expired entries of the sessions map dropped per session creation; the rest go
# with later ones (keeps the update expression far below its 4 KB limit).
MAX_PRUNED = 40
# Entries one session creation evicts at most (a map over the cap, from before
# the cap or a lowered one, shrinks by this much less one per sign-in).
MAX_EVICTED = 20


def passkey_from_item(passkey_id: str, item: Item) -> Passkey:
    return Passkey(id=passkey_id, name=str(item.get("name") or ""),
                   credential_id=str(item["credential_id"]), public_key=str(item["public_key"]),
                   sign_count=int(item.get("sign_count") or 0),
                   created_at=int(item.get("created_at") or 0),
                   last_used_at=int(item.get("last_used_at") or 0),
                   transports=tuple(item.get("transports") or ()),
                   backup_eligible=bool(item.get("backup_eligible", False)))


def passkey_to_item(passkey: Passkey) -> Item:
    return {"name": passkey.name, "credential_id": passkey.credential_id,
            "public_key": passkey.public_key, "sign_count": passkey.sign_count,
            "created_at": passkey.created_at, "last_used_at": passkey.last_used_at,
            "transports": list(passkey.transports), "backup_eligible": passkey.backup_eligible}


def second_factors_from_item(item: Item) -> SecondFactors:
    """The ``totp``, ``totp_pending``, ``passkeys`` and ``recovery`` attributes of a
    user item (see ``storage.mfa``); absent on users who enrolled nothing."""
    totp, pending = item.get("totp") or {}, item.get("totp_pending") or {}
    passkeys = item.get("passkeys") or {}
    recovery = item.get("recovery") or ()
    if not (totp or pending or passkeys or recovery):
        return NO_SECOND_FACTOR
    return SecondFactors(
        totp_sealed=str(totp.get("sealed") or ""), totp_last_step=int(totp.get("last_step") or 0),
        totp_created_at=int(totp.get("created_at") or 0),
        totp_pending=str(pending.get("sealed") or ""),
        totp_pending_at=int(pending.get("created_at") or 0),
        passkeys=tuple(sorted((passkey_from_item(str(k), v) for k, v in passkeys.items()),
                              key=lambda p: (p.created_at, p.id))),
        recovery=frozenset(str(h) for h in recovery))


def active_of(item: Item) -> bool:
    """A user item's ``active``: absent on users stored before it existed, who are active."""
    return bool(item.get("active", True))


def user_from_item(item: Item) -> User:
    scopes = item.get("scopes")
    sessions = item.get("sessions")
    return User(
        id=item["id"], username=item["username"], email=item.get("email", ""),
        firstname=item.get("firstname", ""), lastname=item.get("lastname", ""),
        active=active_of(item), password_hash=item.get("password_hash", ""),
        scopes=tuple(sorted(scopes)) if scopes is not None else None,
        created_at=int(item.get("created_at", 0)),
        sessions={str(k): int(v) for k, v in sessions.items()} if isinstance(sessions, dict)
        else None,
        version=int(item.get("version") or 0),
        # Absent on items from before rights existed: the default only.
        granted_permissions=tuple(sorted(item.get("granted_permissions") or ())),
        default_permission_revoked=bool(item.get("default_permission_revoked", False)),
        second_factors=second_factors_from_item(item),
        email_verified=bool(item.get("email_verified", False)),
        mfa_asked_at=int(item.get("mfa_asked_at") or 0),
        notices_off=frozenset(str(k) for k in item.get("notices_off") or ()),
        seen_devices=tuple(str(d) for d in item.get("seen_devices") or ()),
    )


def user_to_item(user: User) -> Item:
    item: dict[str, Any] = {
        "id": user.id, "username": user.username, "email": user.email,
        "firstname": user.firstname, "lastname": user.lastname, "active": user.active,
        "password_hash": user.password_hash, "created_at": user.created_at,
        "sessions": dict(user.sessions or {}), "version": user.version,
    }
    if user.scopes is not None:
        item["scopes"] = list(user.scopes)
    if user.granted_permissions:
        # A string set (DynamoDB has no empty set: absent means none).
        item["granted_permissions"] = set(user.granted_permissions)
    if user.default_permission_revoked:
        item["default_permission_revoked"] = True
    if user.email_verified:
        item["email_verified"] = True
    return item


# An email address in use is an item keyed ``email#<address>`` naming its user: no
# user id has a ``#`` (``models.derived_id``), so nothing else reads one, and one
# conditional put per address makes each address belong to one account; finding
# the account of an address (a password reset) is one GetItem.
EMAIL_KEY_PREFIX = "email#"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_key(email: str) -> dict[str, str]:
    return {"id": EMAIL_KEY_PREFIX + normalise_email(email)}


def client_from_item(item: Item) -> Client:
    # Items written before algorithms and resources existed lack them: the defaults.
    return Client(
        client_id=item["client_id"], secret_hash=item.get("secret_hash"),
        name=item.get("name", ""), grant_types=tuple(item.get("grant_types", [])),
        scopes=tuple(item.get("scopes", [])), introspect=bool(item.get("introspect", False)),
        created_at=int(item.get("created_at", 0)),
        id_token_signed_response_alg=item.get("id_token_signed_response_alg") or "",
        access_token_signed_response_alg=item.get("access_token_signed_response_alg") or "",
        resources=tuple(item.get("resources") or ()),
        default_audience=item.get("default_audience") or "",
        redirect_uris=tuple(item.get("redirect_uris") or ()),
        post_logout_redirect_uris=tuple(item.get("post_logout_redirect_uris") or ()),
        delegate=bool(item.get("delegate", False)),
        remember_consent=(bool(item["remember_consent"])
                          if item.get("remember_consent") is not None else None),
        allowed_origins=tuple(item.get("allowed_origins") or ()),
        require_mfa=bool(item.get("require_mfa", False)),
    )


def client_to_item(client: Client) -> Item:
    item: dict[str, Any] = {
        "client_id": client.client_id, "secret_hash": client.secret_hash, "name": client.name,
        "grant_types": list(client.grant_types), "scopes": list(client.scopes),
        "introspect": client.introspect, "created_at": client.created_at,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "delegate": client.delegate,
    }
    for name in ("id_token_signed_response_alg", "access_token_signed_response_alg",
                 "default_audience"):
        if getattr(client, name):
            item[name] = getattr(client, name)
    if client.resources:
        item["resources"] = list(client.resources)
    if client.remember_consent is not None:
        item["remember_consent"] = client.remember_consent
    if client.allowed_origins:
        item["allowed_origins"] = list(client.allowed_origins)
    if client.require_mfa:
        item["require_mfa"] = True
    return item


# A registered resource URI is an item of the clients table keyed
# ``resource <uri>``: no client id has a space (models.possible_client_id), so
# client authentication never reads one, and one conditional put per URI makes
# each URI belong to one resource server.
RESOURCE_KEY_PREFIX = "resource "


def resource_key(uri: str) -> dict[str, str]:
    return {"client_id": RESOURCE_KEY_PREFIX + uri}


# A web origin some client registered is an item keyed ``origin <origin>`` (no
# client id has a space either) listing those clients, so that "may this origin
# read a CORS answer?" is one GetItem, never a scan of the clients.
ORIGIN_KEY_PREFIX = "origin "


def origin_key(origin: str) -> dict[str, str]:
    return {"client_id": ORIGIN_KEY_PREFIX + origin}


class UsersRepo:
    def __init__(self, table: Table) -> None:
        self.table = table

    def key(self, user_id: str) -> dict[str, str]:
        return {"id": user_id}

    def get(self, user_id: str) -> User | None:
        item = self.table.get(self.key(user_id))
        return user_from_item(item) if item else None

    def is_active(self, user_id: str) -> bool:
        """Whether the user exists and is not disabled: their ``active`` alone is read."""
        item = self.table.get(self.key(user_id), attributes=("id", "active"))
        return item is not None and active_of(item)

    def create(self, user: User) -> None:
        # attribute_not_exists: a username is taken once; never overwrite a user.
        self.table.put(user_to_item(user), condition="attribute_not_exists(id)")

    def op_create(self, user: User) -> dict[str, Any]:
        # attribute_not_exists: a username is taken once; never overwrite a user.
        return self.table.op_put(user_to_item(user), "attribute_not_exists(id)")

    # -- email addresses -------------------------------------------------------------

    def op_claim_email(self, email: str, user_id: str) -> dict[str, Any]:
        """An address for one account: attribute_not_exists, so of two accounts taking
        the same address (two invitations, an email change) one transaction fails."""
        return self.table.op_put({**email_key(email), "user_id": user_id,
                                  "email": normalise_email(email)},
                                 "attribute_not_exists(id)")

    def op_release_email(self, email: str, user_id: str) -> dict[str, Any]:
        """Give an address up; only its own account may (the condition)."""
        return self.table.op_delete(email_key(email), "user_id = :u", values={":u": user_id})

    def user_id_by_email(self, email: str) -> str | None:
        item = self.table.get(email_key(email))
        return str(item["user_id"]) if item else None

    def op_set_email(self, user_id: str, old: str, new: str) -> dict[str, Any]:
        """A new, verified address. The condition: the account still has the address
        the change started from (two changes at once: one wins)."""
        return self.table.op_update(self.key(user_id), "SET email = :new, email_verified = :t",
                                    condition="attribute_exists(id) AND email = :old",
                                    values={":new": new, ":old": old, ":t": True})

    def op_set_password_hash(self, user_id: str, password_hash: str,
                             version: int) -> dict[str, Any]:
        """A new password that ends every sign-in (the version moves, as
        ``set_password_hash`` with ``bump`` does). The condition: the user is the one
        read (same version), so a reset never undoes a concurrent disable."""
        return self.table.op_update(self.key(user_id), "SET password_hash = :h ADD #ver :one",
                                    condition="attribute_exists(id) AND active = :t AND "
                                              "(attribute_not_exists(#ver) OR #ver = :ver)",
                                    names={"#ver": "version"},
                                    values={":h": password_hash, ":one": 1, ":ver": version,
                                            ":t": True})

    def set_active(self, user_id: str, active: bool) -> User:
        """Enable or disable; returns the user as it now is, with its sessions map.

        attribute_exists: disabling an unknown user fails instead of creating one.
        Disabling bumps the version, so a sign-in that read the user before fails
        its session's transaction.
        """
        bump = "" if active else " ADD #ver :one"
        item = self.table.update(self.key(user_id), "SET active = :a" + bump,
                                 condition="attribute_exists(id)",
                                 names=None if active else {"#ver": "version"},
                                 values={":a": active} if active else {":a": active, ":one": 1})
        assert item is not None
        return user_from_item(item)

    def set_password_hash(self, user_id: str, password_hash: str, *, bump: bool) -> User:
        """Change only the password attributes (never a read-modify-write of the
        whole user, which would undo a concurrent disable).

        attribute_exists: an unknown user fails instead of being created. With
        ``bump`` the version moves too: a sign-in in flight with the old
        password cannot open a session any more.
        """
        expression = "SET password_hash = :h" + (" ADD #ver :one" if bump else "")
        item = self.table.update(self.key(user_id), expression, condition="attribute_exists(id)",
                                 names={"#ver": "version"} if bump else None,
                                 values={":h": password_hash, **({":one": 1} if bump else {})})
        assert item is not None
        return user_from_item(item)

    def set_scopes(self, user_id: str, scopes: Iterable[str] | None) -> User:
        """Set the scopes a user may hold (None: every scope); returns the user.

        attribute_exists: an unknown user fails instead of being created. The
        version moves, so a sign-in that read the old scopes cannot open a
        session with them.
        """
        values: dict[str, Any] = {":one": 1}
        if scopes is None:
            expression = "REMOVE scopes ADD #ver :one"
        else:
            expression, values[":s"] = "SET scopes = :s ADD #ver :one", sorted(scopes)
        item = self.table.update(self.key(user_id), expression, condition="attribute_exists(id)",
                                 names={"#ver": "version"}, values=values)
        assert item is not None
        return user_from_item(item)

    def grant_permission(self, user_id: str, permission: str, *, is_default: bool) -> User:
        """Add one right; returns the user as it now is.

        One UpdateItem, no read: ``ADD`` to a string set is idempotent and
        leaves concurrent grants and revocations of other rights alone. The
        default right is held unless revoked, so granting it clears that mark.
        attribute_exists: granting to an unknown user fails instead of creating one.
        """
        expression = "ADD #granted :p" + (" REMOVE #revoked" if is_default else "")
        names = {"#granted": "granted_permissions"}
        if is_default:
            names["#revoked"] = "default_permission_revoked"
        item = self.table.update(self.key(user_id), expression, condition="attribute_exists(id)",
                                 names=names, values={":p": {permission}})
        assert item is not None
        return user_from_item(item)

    def revoke_permission(self, user_id: str, permission: str, *, is_default: bool) -> User:
        """Remove one right; returns the user as it now is.

        One UpdateItem, no read: ``DELETE`` from a string set is idempotent;
        revoking the default also marks it revoked, since it is held implicitly.
        attribute_exists: revoking from an unknown user fails instead of creating one.
        """
        names = {"#granted": "granted_permissions"}
        values: dict[str, Any] = {":p": {permission}}
        expression = "DELETE #granted :p"
        if is_default:
            expression = "SET #revoked = :true " + expression
            names["#revoked"] = "default_permission_revoked"
            values[":true"] = True
        item = self.table.update(self.key(user_id), expression, condition="attribute_exists(id)",
                                 names=names, values=values)
        assert item is not None
        return user_from_item(item)

    def set_notices_off(self, user_id: str, off: Iterable[str]) -> User:
        """The optional notices the owner turned off, replaced in one UpdateItem
        (a string set; absent when none). attribute_exists: an unknown user fails
        instead of being created."""
        kinds = set(off)
        expression = "SET notices_off = :off" if kinds else "REMOVE notices_off"
        item = self.table.update(self.key(user_id), expression, condition="attribute_exists(id)",
                                 values={":off": kinds} if kinds else None)
        assert item is not None
        return user_from_item(item)

    def op_add_session(self, user: User, session_id: str, cap: int, now: int, *,
                       limit: int | None = None, evict: Sequence[str] = (),
                       mfa_asked_at: int = 0,
                       seen_devices: Sequence[str] | None = None) -> dict[str, Any]:
        """The user's half of creating a session, for the creator's transaction:
        record ``session_id -> cap`` in the sessions map, remove the ``evict``
        entries, and drop entries whose cap has passed (known from the user as the
        sign-in read it).

        The condition guarantees that the user still exists, is active and has
        the version the sign-in read (not disabled, narrowed or reset since), so
        a session is never created that a concurrent disable cannot find. With
        ``limit`` it also guarantees the map never holds more than
        max(``limit``, its size as read) entries, whatever concurrent sign-ins
        do: without evictions the map must be below the limit; with them, every
        evicted entry must still be there (two sign-ins never evict the same one
        and both add) and the map no larger than read. A loser gets the user as
        it is now (ALL_OLD) and may plan again.

        ``seen_devices``: the user's seen devices with this sign-in's added
        (``services.notices``), written in the same update when one is new.
        """
        names = {"#sessions": "sessions", "#ver": "version"}
        values: dict[str, Any] = {":true": True, ":ver": user.version}
        gate = ("attribute_exists(id) AND active = :true "
                "AND (attribute_not_exists(#ver) OR #ver = :ver)")
        if user.sessions is None:
            # A user item from before the map: create it (and only if still absent).
            values[":map"] = {session_id: cap}
            seen = ""
            if seen_devices is not None:
                seen, values[":seen"] = ", seen_devices = :seen", list(seen_devices)
            return self.table.op_update(self.key(user_id=user.id), "SET #sessions = :map" + seen,
                                        condition=gate + " AND attribute_not_exists(#sessions)",
                                        names=names, values=values)
        names["#sid"] = session_id
        values[":cap"] = cap
        expression = "SET #sessions.#sid = :cap"
        if mfa_asked_at:
            expression += ", mfa_asked_at = if_not_exists(mfa_asked_at, :asked)"
            values[":asked"] = mfa_asked_at
        if seen_devices is not None:
            expression += ", seen_devices = :seen"
            values[":seen"] = list(seen_devices)
        condition = gate + " AND attribute_exists(#sessions)"
        evicted = list(dict.fromkeys(evict))
        stale = [sid for sid, ends in sorted(user.sessions.items())
                 if ends <= now and sid not in evicted][:MAX_PRUNED]
        removed = evicted + stale
        if removed:
            names.update({f"#o{i}": sid for i, sid in enumerate(removed)})
            expression += " REMOVE " + ", ".join(f"#sessions.#o{i}" for i in range(len(removed)))
        if limit is not None and evicted:
            condition += "".join(f" AND attribute_exists(#sessions.#o{i})"
                                 for i in range(len(evicted)))
            condition += " AND size(#sessions) <= :most"
            values[":most"] = max(limit, len(user.sessions)) - 1 + len(evicted)
        elif limit is not None:
            condition += " AND size(#sessions) < :limit"
            values[":limit"] = limit
        return self.table.op_update(self.key(user_id=user.id), expression,
                                    condition=condition, names=names, values=values)


class ClientsRepo:
    def __init__(self, table: Table,
                 transact: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        self.table = table
        self.transact = transact

    def key(self, client_id: str) -> dict[str, str]:
        return {"client_id": client_id}

    def get_item(self, client_id: str) -> Item | None:
        return self.table.get(self.key(client_id))

    def get(self, client_id: str) -> Client | None:
        item = self.get_item(client_id)
        return client_from_item(item) if item else None

    def create(self, client: Client) -> None:
        origins = client.web_origins
        if not client.resources and not origins:
            # attribute_not_exists: a client id is registered once.
            self.table.put(client_to_item(client), condition="attribute_not_exists(client_id)")
            return
        assert self.transact is not None, "registering resources or origins needs a transaction"
        # One transaction, each put with attribute_not_exists: the client id and
        # every resource URI are registered once, all of them or none. An origin
        # item may be shared by several clients: ADD to its string set needs no
        # condition (adding a member twice is one member), and being in the same
        # transaction it exists exactly when the client does.
        self.transact([
            self.table.op_put(client_to_item(client), "attribute_not_exists(client_id)"),
            *(self.table.op_put({**resource_key(uri), "resource": uri,
                                 "server": client.client_id},
                                "attribute_not_exists(client_id)")
              for uri in client.resources),
            *(self.table.op_update(origin_key(origin), "ADD #clients :c",
                                   names={"#clients": "clients"},
                                   values={":c": {client.client_id}})
              for origin in origins)])

    def origin_registered(self, origin: str) -> bool:
        """Whether some client registered ``origin`` as a web origin."""
        return self.table.get(origin_key(origin)) is not None

    def resource_server(self, uri: str) -> str | None:
        """The client id of the resource server registered for ``uri``, if any."""
        item = self.table.get(resource_key(uri))
        return str(item["server"]) if item else None

    def replace(self, client: Client) -> None:
        self.table.put(client_to_item(client))
