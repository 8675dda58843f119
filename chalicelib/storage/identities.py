"""Users and clients tables."""

from __future__ import annotations

from typing import Any

from chalicelib.models import Client, User
from chalicelib.storage.dynamo import Item, Table


def user_from_item(item: Item) -> User:
    scopes = item.get("scopes")
    return User(
        id=item["id"], username=item["username"], email=item.get("email", ""),
        firstname=item.get("firstname", ""), lastname=item.get("lastname", ""),
        active=bool(item.get("active", True)), password_hash=item.get("password_hash", ""),
        scopes=tuple(sorted(scopes)) if scopes is not None else None,
        created_at=int(item.get("created_at", 0)),
    )


def user_to_item(user: User) -> Item:
    item: dict[str, Any] = {
        "id": user.id, "username": user.username, "email": user.email,
        "firstname": user.firstname, "lastname": user.lastname, "active": user.active,
        "password_hash": user.password_hash, "created_at": user.created_at,
    }
    if user.scopes is not None:
        item["scopes"] = list(user.scopes)
    return item


def client_from_item(item: Item) -> Client:
    return Client(
        client_id=item["client_id"], secret_hash=item.get("secret_hash"),
        name=item.get("name", ""), grant_types=tuple(item.get("grant_types", [])),
        scopes=tuple(item.get("scopes", [])), introspect=bool(item.get("introspect", False)),
        created_at=int(item.get("created_at", 0)),
    )


def client_to_item(client: Client) -> Item:
    return {
        "client_id": client.client_id, "secret_hash": client.secret_hash, "name": client.name,
        "grant_types": list(client.grant_types), "scopes": list(client.scopes),
        "introspect": client.introspect, "created_at": client.created_at,
    }


class UsersRepo:
    def __init__(self, table: Table) -> None:
        self.table = table

    def key(self, user_id: str) -> dict[str, str]:
        return {"id": user_id}

    def get(self, user_id: str) -> User | None:
        item = self.table.get(self.key(user_id))
        return user_from_item(item) if item else None

    def create(self, user: User) -> None:
        # attribute_not_exists: a username is taken once; never overwrite a user.
        self.table.put(user_to_item(user), condition="attribute_not_exists(id)")

    def replace(self, user: User) -> None:
        # attribute_exists: only an existing user is updated, never resurrected.
        self.table.put(user_to_item(user), condition="attribute_exists(id)")

    def set_active(self, user_id: str, active: bool) -> User:
        # attribute_exists: disabling an unknown user fails instead of creating one.
        item = self.table.update(self.key(user_id), "SET active = :a",
                                 condition="attribute_exists(id)", values={":a": active})
        assert item is not None
        return user_from_item(item)


class ClientsRepo:
    def __init__(self, table: Table) -> None:
        self.table = table

    def key(self, client_id: str) -> dict[str, str]:
        return {"client_id": client_id}

    def get_item(self, client_id: str) -> Item | None:
        return self.table.get(self.key(client_id))

    def get(self, client_id: str) -> Client | None:
        item = self.get_item(client_id)
        return client_from_item(item) if item else None

    def create(self, client: Client) -> None:
        # attribute_not_exists: a client id is registered once.
        self.table.put(client_to_item(client), condition="attribute_not_exists(client_id)")

    def replace(self, client: Client) -> None:
        self.table.put(client_to_item(client))
