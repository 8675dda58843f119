"""Notices: what Tessera mails an account's owner about the account (SPEC §11,
issue item 5), and which of them the owner turned off.

* **Security notices** are always sent: a sign-in from a device or address not
  seen before (``new_signin``), a second factor added or removed
  (``second_factor``). Nobody can turn them off: they are how a person learns
  that someone else holds their password or changed how the account is guarded.
* **Optional notices** can be turned off on the console's profile page
  (``OPTIONAL``): a PAT or a role key created (``token_created``). The setting is
  the string set ``notices_off`` on the user item, written by one UpdateItem.

Each notice is mailed after the change it tells of committed, quietly: a notice
that cannot be sent is logged and never fails or undoes the change.

A "device" is the pair (source IP, the user agent's family: browser and system,
not its version), kept as a short digest: the user item holds the last
``SEEN_DEVICES`` of them (``seen_devices``), written in the sign-in's own
transaction only when a new one appears.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from chalicelib.errors import BadRequest
from chalicelib.models import User
from chalicelib.services.letters import Letters

if TYPE_CHECKING:
    from chalicelib.storage.identities import UsersRepo

TOKEN_CREATED = "token_created"
NEW_SIGNIN, SECOND_FACTOR = "new_signin", "second_factor"
# Kinds the owner may turn off, and their words on the profile page.
OPTIONAL = {TOKEN_CREATED: "A personal access token or a role key of mine is created"}
SECURITY = (NEW_SIGNIN, SECOND_FACTOR)
SEEN_DEVICES = 20

_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
             ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iOS"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("Linux", "Linux"))


def user_agent_family(user_agent: str) -> str:
    """The browser (or program) and the system of a user agent, without versions:
    an update of the browser is not a new device."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), "")
    if not browser:
        first = re.match(r"\s*([A-Za-z][A-Za-z0-9._-]*)", user_agent)
        browser = first.group(1) if first else "unknown"
    system = next((name for token, name in _SYSTEMS if token in user_agent), "")
    return f"{browser} on {system}" if system else browser


def device_fingerprint(ip: str, user_agent: str) -> str:
    """What is remembered of a device: a digest, so the user item holds no address."""
    raw = f"{ip}|{user_agent_family(user_agent)}".encode()
    return hashlib.sha256(raw).hexdigest()[:20]


def remembered(seen: Iterable[str], fingerprint: str) -> list[str] | None:
    """The seen devices with ``fingerprint`` added (the oldest dropped past
    ``SEEN_DEVICES``), or None when it was seen already (nothing to write)."""
    seen = list(seen)
    if fingerprint in seen:
        return None
    return [*seen, fingerprint][-SEEN_DEVICES:]


def wants(user: User, kind: str) -> bool:
    """Whether ``user`` is to be told of ``kind``: security notices always."""
    return kind in SECURITY or kind not in user.notices_off


class Notices:
    def __init__(self, users: UsersRepo, letters: Letters,
                 issuer: Callable[[], str]) -> None:
        self.users = users
        self.letters = letters
        self._issuer = issuer

    def set_off(self, user: User, off: Iterable[str]) -> User:
        """Turn the optional notices in ``off`` off, and every other one on."""
        kinds = set(off)
        unknown = kinds - set(OPTIONAL)
        if unknown:
            raise BadRequest("Only these notices can be turned off: " + ", ".join(OPTIONAL))
        return self.users.set_notices_off(user.id, kinds)

    def new_signin(self, user: User, ip: str, user_agent: str) -> None:
        """A sign-in from a device not seen before (a security notice)."""
        self.letters.new_signin(user, ip, user_agent_family(user_agent),
                                self._issuer() + "/account/sessions")

    def token_created(self, user: User, what: str, name: str) -> None:
        """``what``: ``pat`` or ``role_key``; unless the owner turned it off."""
        if not wants(user, TOKEN_CREATED):
            return
        page = "/account/tokens" if what == "pat" else "/account/roles"
        self.letters.token_created(user, what, name, self._issuer() + page)

    def second_factor_changed(self, user: User, added: bool, method: str) -> None:
        """A second factor added or removed (a security notice)."""
        self.letters.second_factor_changed(user, added, method,
                                           self._issuer() + "/account/security")
