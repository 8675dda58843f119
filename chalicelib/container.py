"""The composition root: builds stores and services lazily, once per process.

Nothing here runs at import. Tests install their own container (a fake clock,
moto-backed clients) with ``use()`` and drop it with ``reset()``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any

from chalicelib.clock import Clock, SystemClock
from chalicelib.config import Settings, get_settings
from chalicelib.storage.dynamo import Table, aws_client


class Container:
    def __init__(self, settings: Settings | None = None, clock: Clock | None = None,
                 client_factory: Callable[[str], Any] | None = None) -> None:
        self.settings = settings or get_settings()
        self.clock: Clock = clock or SystemClock()
        self._client_factory = client_factory or aws_client

    def dynamodb(self) -> Any:
        return self._client_factory("dynamodb")

    def table(self, kind: str) -> Table:
        return Table(self.settings.table(kind), self.dynamodb)

    # -- storage ----------------------------------------------------------------

    @cached_property
    def users(self) -> Any:
        from chalicelib.storage.identities import UsersRepo
        return UsersRepo(self.table("users"))

    @cached_property
    def clients(self) -> Any:
        from chalicelib.storage.identities import ClientsRepo
        return ClientsRepo(self.table("clients"))

    @cached_property
    def sessions_repo(self) -> Any:
        from chalicelib.storage.sessions import SessionsRepo
        return SessionsRepo(self.table("sessions"), self.settings.purge_shards)

    @cached_property
    def throttle(self) -> Any:
        from chalicelib.storage.throttle import ThrottleRepo
        return ThrottleRepo(self.table("throttle"))

    @cached_property
    def devices_repo(self) -> Any:
        from chalicelib.storage.devices import DevicesRepo
        return DevicesRepo(self.table("devices"))

    @cached_property
    def pats_repo(self) -> Any:
        from chalicelib.storage.pats import PatsRepo
        return PatsRepo(self.table("tokens"))

    def transact(self, operations: list[dict[str, Any]]) -> None:
        from chalicelib.storage.dynamo import transact
        transact(self.dynamodb(), operations)

    def batch_get(self, requests: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """Items of several tables (by logical name) in one BatchGetItem round trip."""
        from chalicelib.storage.dynamo import batch_get
        physical = {self.settings.table(kind): keys for kind, keys in requests.items() if keys}
        found = batch_get(self.dynamodb(), physical) if physical else {}
        return {kind: found.get(self.settings.table(kind), []) for kind in requests}

    @cached_property
    def keystore(self) -> Any:
        from chalicelib.storage.keystore import SecretsManagerKeyStore
        return SecretsManagerKeyStore(self.settings.keys_secret_name,
                                      lambda: self._client_factory("secretsmanager"))

    # -- services ---------------------------------------------------------------

    @cached_property
    def keyring(self) -> Any:
        from chalicelib.services.signing import KeyRing
        s = self.settings
        return KeyRing(self.keystore, self.clock, alg=s.signing_alg,
                       cache_seconds=s.key_cache_seconds, retire_seconds=s.key_retire_seconds)

    @cached_property
    def sessions(self) -> Any:
        from chalicelib.services.sessions import Sessions
        return Sessions(self.sessions_repo, self.clock, self.settings, users=self.users,
                        transact=self.transact)

    @cached_property
    def issuer(self) -> Any:
        from chalicelib.services.tokens import TokenIssuer
        return TokenIssuer(self.keyring, self.clock, self.settings)

    @cached_property
    def client_directory(self) -> Any:
        from chalicelib.services.authn import ClientDirectory
        return ClientDirectory(self.clients, self.clock)

    @cached_property
    def password_signin(self) -> Any:
        from chalicelib.services.authn import PasswordSignIn
        return PasswordSignIn(self.throttle, self.clock, self.settings)

    @cached_property
    def principals(self) -> Any:
        from chalicelib.services.principals import Principals
        return Principals(self)

    @cached_property
    def device_flow(self) -> Any:
        from chalicelib.services.device_flow import DeviceFlow
        return DeviceFlow(self.devices_repo, self.clock, self.settings, self.throttle)

    @cached_property
    def web_signin(self) -> Any:
        from chalicelib.services.web_signin import WebSignIn
        return WebSignIn(self)

    @cached_property
    def identities(self) -> Any:
        from chalicelib.services.identities import Identities
        return Identities(self.users, self.clients, self.clock, self.settings)

    @cached_property
    def pats(self) -> Any:
        from chalicelib.services.pats import Pats
        return Pats(self.pats_repo, self.clock, self.settings)


_lock = threading.Lock()
_current: Container | None = None


def container() -> Container:
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = Container()
    return _current


def use(replacement: Container) -> Container:
    global _current
    _current = replacement
    return replacement


def reset() -> None:
    global _current
    _current = None
