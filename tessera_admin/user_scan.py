"""Every user's name: a Scan of the users table, for the admin command's reports.

Here, with the admin command, not in chalicelib: no function runs it, and the
functions' IAM policies (``deploy.iam``) are derived from the code they reach, so
none of them may Scan. It reads through storage's ``Table``, as every caller does.
"""

from __future__ import annotations

from collections.abc import Iterator

from chalicelib.storage.dynamo import Table


def usernames(users: Table) -> Iterator[tuple[str, str, bool]]:
    """(id, username, active) of every user, page by page (the table's address
    items, ``email#…``, have no username and are passed over)."""
    for item in users.scan_all(projection="id, #u, active", names={"#u": "username"}):
        if "username" in item:
            yield str(item["id"]), str(item["username"]), bool(item.get("active", True))


def addresses(users: Table) -> Iterator[tuple[str, str]]:
    """(id, email) of every user with an address, page by page."""
    for item in users.scan_all(projection="id, #u, email", names={"#u": "username"}):
        if "username" in item and item.get("email"):
            yield str(item["id"]), str(item["email"])
