"""Who is calling: client authentication (RFC 6749 §2.3) and password sign-in
with brute-force throttling (SPEC §8).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import BASIC_CHALLENGE, InvalidClient, InvalidGrant, InvalidRequest
from chalicelib.models import Client, Session, User, possible_client_id, user_id_for
from chalicelib.security.opaque import looks_like_role_key
from chalicelib.security.passwords import dummy_hash, verify_password
from chalicelib.services.identities import verify_client_secret
from chalicelib.services.memo import Memo
from chalicelib.services.security_log import NOWHERE, SecurityLog, Where
from chalicelib.storage.identities import ClientsRepo, client_from_item, user_from_item
from chalicelib.storage.throttle import Counter, Limit, ThrottleRepo

BAD_CREDENTIALS = "Invalid username or password"

def client_auth_failed(description: str = "Client authentication failed") -> InvalidClient:
    """RFC 6749 §5.2: invalid_client, 401, naming the scheme the server supports."""
    return InvalidClient(description, challenges=(BASIC_CHALLENGE,))


@dataclass(frozen=True)
class ClientCredentials:
    """What a request presented to identify its client (before any lookup)."""

    client_id: str
    secret: str | None
    method: str   # client_secret_basic | client_secret_post | none

    @classmethod
    def from_request(cls, basic: tuple[str, str] | None,
                     params: Mapping[str, str]) -> ClientCredentials:
        body_id, body_secret = params.get("client_id"), params.get("client_secret")
        if basic is not None:
            # RFC 6749 §2.3.1: id and secret are form-encoded inside Basic.
            client_id, secret = unquote_plus(basic[0]), unquote_plus(basic[1])
            if body_secret is not None:
                raise InvalidRequest("Use one client authentication method per request")
            if body_id is not None and body_id != client_id:
                raise InvalidRequest("client_id does not match the Authorization header")
            return cls._checked(client_id, secret, "client_secret_basic")
        if not body_id:
            raise client_auth_failed("Client authentication is required")
        if body_secret is not None:
            return cls._checked(body_id, body_secret, "client_secret_post")
        return cls._checked(body_id, None, "none")

    @property
    def role_key(self) -> bool:
        """Whether the client id claims to be a role key's access id (``tka_…``, SPEC
        §6): such a client is authenticated by ``RoleCredentials`` (a malformed one
        with no read), never looked up in the clients table."""
        return looks_like_role_key(self.client_id)

    @classmethod
    def _checked(cls, client_id: str, secret: str | None, method: str) -> ClientCredentials:
        if not possible_client_id(client_id):
            raise client_auth_failed("Unknown client")
        return cls(client_id, secret, method)


class ClientDirectory:
    """Clients by id, cached per instance for a minute: clients are configuration,
    and the refresh grant must not spend a read on them (SPEC §9).
    """

    def __init__(self, repo: ClientsRepo, clock: Clock, ttl: int = 60) -> None:
        self.repo = repo
        self._clients: Memo[Client | None] = Memo(clock, ttl)

    def cached(self, client_id: str) -> tuple[bool, Client | None]:
        return self._clients.recall(client_id)

    def remember(self, client_id: str, item: Mapping[str, Any] | None) -> Client | None:
        return self._clients.keep(client_id, client_from_item(dict(item)) if item else None)

    def get(self, client_id: str) -> Client | None:
        known, client = self.cached(client_id)
        if known:
            return client
        item = self.repo.get_item(client_id)
        return self.remember(client_id, item)

    def authenticate(self, creds: ClientCredentials, client: Client | None) -> Client:
        """RFC 6749 §2.3.1: the client is known and its secret (if any) matches."""
        if client is None:
            raise client_auth_failed("Unknown client")
        if client.public:
            if creds.secret:
                raise client_auth_failed("A public client has no secret")
            return client
        if creds.secret is None or not verify_client_secret(creds.secret, client.secret_hash or ""):
            raise client_auth_failed("Client authentication failed")
        return client


class PasswordSignIn:
    """Username and password, with counters per user and per source.

    Past ``login_max_failures`` failures in the window, attempts closer together
    than an exponentially growing delay are refused; the failure that reaches
    ``login_lockout_failures`` locks the user (or source) for
    ``login_lockout_seconds`` from that failure, even when the counting window
    ends sooner. Unknown user, wrong password, disabled and locked account all
    get the same answer, and all cost one password hash.
    """

    def __init__(self, throttle: ThrottleRepo, clock: Clock, settings: Settings, *,
                 security_log: SecurityLog | None = None) -> None:
        self.throttle = throttle
        self.clock = clock
        self.settings = settings
        # The owner's security log (SPEC §11): failures and lockouts of known users,
        # and the entry of a finished sign-in (``signed_in``); None in unit tests.
        self.security_log = security_log

    def signed_in(self, user: User, session: Session, where: Where) -> list[dict[str, Any]]:
        """The security log's ``signin`` entry, as an operation of the transaction
        that opens the session (no extra round trip, never a session without it)."""
        if self.security_log is None:
            return []
        return [self.security_log.op(user.id, "signin", where,
                                     {"session_id": session.id, "client_id": session.client_id,
                                      "method": "+".join(session.amr)})]

    @staticmethod
    def user_counter_key(username: str) -> str:
        return "signin-user#" + user_id_for(username)

    @staticmethod
    def source_counter_key(source: str) -> str:
        return "signin-src#" + source

    def counters(self, username: str, source: str,
                 items: Mapping[str, Mapping[str, Any]]) -> tuple[Counter, Counter]:
        now, window = self.clock.now(), self.settings.login_window_seconds
        keys = (self.user_counter_key(username), self.source_counter_key(source))
        return (Counter.from_item(keys[0], dict(items.get(keys[0]) or {}), now, window),
                Counter.from_item(keys[1], dict(items.get(keys[1]) or {}), now, window))

    @property
    def limit(self) -> Limit:
        s = self.settings
        return Limit(window=s.login_window_seconds, lock_after=s.login_lockout_failures,
                     lock_seconds=s.login_lockout_seconds)

    def blocked(self, counter: Counter) -> bool:
        s, now = self.settings, self.clock.now()
        if counter.locked(now):
            return True
        if counter.failures >= s.login_max_failures:
            delay = 2 ** (counter.failures - s.login_max_failures)
            return now < counter.last_failure_at + delay
        return False

    def reads(self, username: str, source: str) -> dict[str, list[dict[str, str]]]:
        """The items a sign-in needs, for one BatchGetItem: the user and both counters."""
        return {"users": [{"id": user_id_for(username)}],
                "throttle": [{"pk": self.user_counter_key(username)},
                             {"pk": self.source_counter_key(source)}]}

    def check(self, username: str, password: str, source: str,
              items: Mapping[str, list[dict[str, Any]]],
              user_agent: str = "") -> tuple[User, Counter]:
        """Verify a sign-in against the items of ``reads``; returns the user and
        the user's failure counter (to clear in the write that opens the session).
        """
        counters = self.counters(username, source, {i["pk"]: i for i in items.get("throttle", [])})
        found = items.get("users") or []
        user = self.verify(username, password, source,
                           user_from_item(found[0]) if found else None, counters,
                           user_agent=user_agent)
        return user, counters[0]

    def verify(self, username: str, password: str, source: str, user: User | None,
               counters: tuple[Counter, Counter], *, user_agent: str = "") -> User:
        blocked = any(self.blocked(c) for c in counters)
        # Always one hash, whatever the outcome, so timing tells nothing.
        ok = verify_password(password, user.password_hash if user
                             else dummy_hash(self.settings.scrypt_log_n))
        if blocked or not ok or user is None or not user.active:
            where = Where(source, user_agent)
            if not blocked:
                self.count_failure(counters, source, user_id=user.id if user else "",
                                   where=where)
            log.info(json.dumps({"event": "signin_failed", "user_known": user is not None,
                                 "blocked": blocked, "source": source}))
            if user is not None and not blocked and self.security_log is not None:
                # A known user's counted failure (an unknown name has no log): one
                # PutItem after the counter's ADD, which has no transaction to carry
                # it. Attempts refused by the throttle are not logged: the lockout
                # bounds the entries an attacker can make a user's log hold.
                reason = "wrong_password" if not ok else "inactive"
                self.security_log.record(user.id, "signin_failed", where, {"reason": reason})
            raise InvalidGrant(BAD_CREDENTIALS)
        return user

    def count_failure(self, counters: tuple[Counter, Counter], source: str, *,
                      user_id: str = "", where: Where = NOWHERE) -> None:
        """One atomic ADD per counter; its returned count, not the one read before
        the password hash, says whether this failure started a lockout. ``user_id``:
        the known user whose security log gets the ``lockout`` entry (one PutItem
        after the ADD that started it; the ADD returns the count a transaction
        could not).
        """
        now, limit = self.clock.now(), self.limit
        for before in counters:
            after = self.throttle.record_failure(before.key, now, limit)
            if after.locked(now) and not before.locked(now):
                log.warning(json.dumps({"event": "signin_lockout", "counter": before.key,
                                        "failures": after.failures, "source": source,
                                        "until": after.locked_until}))
                # The user's own counter locked the user (a source's locks an address).
                if user_id and before is counters[0] and self.security_log is not None:
                    self.security_log.record(user_id, "lockout", where,
                                             {"failures": after.failures,
                                              "until": after.locked_until})
