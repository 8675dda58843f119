"""The device authorization grant (RFC 8628): start, poll, decide, consume.

A request is stored once at start (one transaction: the state and the user-code
reservation). A poll of a pending request is one conditional UpdateItem and no
read: the condition both checks the state and enforces the polling interval, and
a lost condition returns the item as it was (ALL_OLD), which says why. The
approved code is spent in the same transaction that creates the session, so it
is single use and no token is issued whose state was not durably written.
"""

from __future__ import annotations

import json
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import (
    AccessDenied,
    AuthorizationPending,
    ConditionFailed,
    ExpiredToken,
    InvalidGrant,
    SlowDown,
    StorageUnavailable,
    TooManyRequests,
)
from chalicelib.models import Session, User
from chalicelib.security.opaque import DEVICE_CODE, digest
from chalicelib.storage.devices import (
    APPROVED,
    CONSUMED,
    DENIED,
    PENDING,
    DeviceRequest,
    DevicesRepo,
    device_from_item,
)
from chalicelib.storage.tables import BatchGet
from chalicelib.storage.throttle import Counter, Limit, ThrottleRepo

# SPEC §3: 8 characters of consonants without look-alikes (RFC 8628 §6.1).
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LEN = 8
SLOW_DOWN_STEP = 5          # RFC 8628 §3.5: "increased by 5 seconds"
DRIFT_ALLOWANCE = 0.8       # a poll after 80 % of the interval is on time (clock drift)
INSERT_ATTEMPTS = 5
# Counters of wrong user codes on the page (SPEC §8; RFC 8628 §5.1): per source,
# per signed-in user, over all callers, and per issued code. With 20**8 codes and
# a few tries per window the space cannot be searched.
GUESS_SOURCE = "usercode-src#"
GUESS_USER = "usercode-user#"
GUESS_CODE = "usercode-code#"
GUESS_ALL = "usercode-all"


def new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LEN))


def display_user_code(code: str) -> str:
    """``WDJBMJHT`` -> ``WDJB-MJHT`` (RFC 8628 §6.1: easier to read and type)."""
    return f"{code[:4]}-{code[4:]}"


def normalise_user_code(text: str) -> str | None:
    """What a person typed, as a stored user code, or None.

    NFKC folds full-width and compatibility forms (``ｗｄｊｂ`` -> ``wdjb``); case,
    white space and dashes are ignored. Anything left outside the alphabet is
    refused, never mapped to a nearby letter.
    """
    if len(text) > 64:
        return None
    folded = unicodedata.normalize("NFKC", text).upper()
    kept = "".join(ch for ch in folded
                   if not ch.isspace() and unicodedata.category(ch) != "Pd")
    if len(kept) != USER_CODE_LEN or any(ch not in USER_CODE_ALPHABET for ch in kept):
        return None
    return kept


@dataclass(frozen=True)
class Started:
    device_code: str
    request: DeviceRequest


class DeviceFlow:
    def __init__(self, repo: DevicesRepo, clock: Clock, settings: Settings,
                 throttle: ThrottleRepo, user_codes: Callable[[], str] = new_user_code, *,
                 batch_get: BatchGet | None = None) -> None:
        self.repo = repo
        self.batch_get = batch_get     # the page's one read: the code and its counters
        self.user_codes = user_codes   # injectable: tests force collisions
        self.throttle = throttle
        self.clock = clock
        self.settings = settings

    # -- RFC 8628 §3.1/3.2: the device authorization request ---------------------------

    def start(self, *, client_id: str, scope: str, source_ip: str, user_agent: str) -> Started:
        now = self.clock.now()
        interval = self.settings.device_poll_interval
        device = {"ip": source_ip, "user_agent": user_agent}
        for _ in range(INSERT_ATTEMPTS):
            device_code = DEVICE_CODE.mint()
            request = DeviceRequest(digest=digest(device_code), client_id=client_id,
                                    user_code=self.user_codes(), scope=scope, created_at=now,
                                    expires_at=now + self.settings.device_code_seconds,
                                    interval=interval, device=device)
            try:
                self.repo.insert(request, poll_gap=int(interval * DRIFT_ALLOWANCE))
            except ConditionFailed:
                continue   # the user code is taken by a live request: draw another
            self._log("device_authorization_started", request)
            return Started(device_code, request)
        # Vanishingly unlikely with 20**8 codes: answer 503, the client may retry.
        raise StorageUnavailable(detail="no free user code after several attempts")

    # -- RFC 8628 §3.4/3.5: polling ----------------------------------------------------

    def poll(self, client_id: str, device_code: str) -> DeviceRequest:
        """The approved request, or the RFC 8628 §3.5 error that says why not."""
        if DEVICE_CODE.parse(device_code) is None:
            raise InvalidGrant("Invalid device code", detail="malformed device code")
        code_digest, now = digest(device_code), self.clock.now()
        try:
            self.repo.record_poll(code_digest, client_id, now)
        except ConditionFailed as lost:
            return self._not_pending(lost.item, code_digest, client_id, now)
        raise AuthorizationPending("The user has not yet approved this device")

    def _not_pending(self, item: dict[str, Any] | None, code_digest: str, client_id: str,
                     now: int) -> DeviceRequest:
        if item is None:
            raise InvalidGrant("Invalid device code", detail="unknown device code")
        if item.get("client_id") != client_id:
            raise InvalidGrant("Invalid device code", detail="device code of another client")
        request = device_from_item(item)
        if not request.live(now):
            raise ExpiredToken("The device code has expired")
        if request.status == APPROVED:
            return request
        if request.status == DENIED:
            raise AccessDenied("The user denied the authorization request")
        if request.status == CONSUMED:
            raise InvalidGrant("Invalid device code", detail="device code already used")
        # Still pending, so the poll came too early: slow down (RFC 8628 §3.5).
        gap = int(item.get("poll_gap", 0))
        step = SLOW_DOWN_STEP
        interval = self.repo.slow_down(code_digest, request.interval, gap, now, step,
                                       int(step * DRIFT_ALLOWANCE))
        raise SlowDown("Polling too fast; wait the interval between requests",
                       extra={"interval": interval})

    def consume_op(self, request: DeviceRequest, session: Session) -> dict[str, Any]:
        return self.repo.op_consume(request.digest, request.client_id, self.clock.now(), session.id)

    # -- RFC 8628 §3.3: the user's decision ------------------------------------------------

    def lookup(self, user_code: str, *, source_ip: str, user_id: str) -> DeviceRequest | None:
        """The live request of a user code the signed-in ``user_id`` typed on the page,
        or None. One BatchGetItem reads the code's reservation and the wrong-code
        counters (SPEC §8; RFC 8628 §5.1); a block is a 429 before the code counts;
        every miss counts against the caps (per source, per user, over all callers,
        and per code if issued).
        """
        assert self.batch_get is not None, "the page's DeviceFlow reads with batch_get"
        items = self.batch_get({"devices": [self.repo.code_key(user_code)],
                                "throttle": self.guess_keys(source_ip, user_id, user_code)})
        counters = self.guess_counters(source_ip, user_id, user_code, items["throttle"])
        if self.guessing_blocked(counters):
            raise TooManyRequests("Too many wrong codes were entered. Wait 15 minutes, then try "
                                  "again with the code shown on your device.",
                                  headers={"Retry-After": str(self.guessing_retry_after(counters))})
        reservation = items["devices"][0] if items["devices"] else None
        found = self.find(reservation)
        if found is None:
            self.record_wrong_code(counters, code_issued=reservation is not None)
        return found

    def find(self, reservation: dict[str, Any] | None) -> DeviceRequest | None:
        """The live request a ``uc#`` item points at (read with the page's counters)."""
        now = self.clock.now()
        code_digest = self.repo.digest_of_reservation(reservation, now)
        if code_digest is None:
            return None
        request = self.repo.get(code_digest)
        if request is None or not request.live(now):
            return None
        return request

    def approve(self, request: DeviceRequest, user: User, granted_scope: str, *,
                auth_time: int, amr: tuple[str, ...] = ("pwd",)) -> DeviceRequest:
        """Approve as ``user``, who signed in (authenticated) at ``auth_time`` with the
        methods ``amr``: the device's session carries that time and those methods,
        not the poll's (OIDC Core §2), so an old browser sign-in never makes a
        "recent sign-in" on the device.
        """
        return self._decide(request, APPROVED, user, granted_scope, auth_time, amr)

    def deny(self, request: DeviceRequest, user: User) -> DeviceRequest:
        return self._decide(request, DENIED, user, "", 0)

    def _decide(self, request: DeviceRequest, status: str, user: User,
                granted_scope: str, auth_time: int,
                amr: tuple[str, ...] = ("pwd",)) -> DeviceRequest:
        decided = self.repo.decide(request.digest, self.clock.now(), status, user.id, granted_scope,
                                   auth_time, amr)
        self._log("device_authorization_" + status, decided, user_id=user.id)
        return decided

    # -- capping wrong codes (SPEC §8; RFC 8628 §5.1) ---------------------------------

    @staticmethod
    def guess_keys(source_ip: str, user_id: str, user_code: str) -> list[dict[str, str]]:
        return [{"pk": GUESS_SOURCE + source_ip}, {"pk": GUESS_USER + user_id},
                {"pk": GUESS_ALL}, {"pk": GUESS_CODE + user_code}]

    def guess_counters(self, source_ip: str, user_id: str, user_code: str,
                       items: list[dict[str, Any]]) -> list[Counter]:
        found = {i["pk"]: i for i in items}
        now, window = self.clock.now(), self.settings.login_window_seconds
        return [Counter.from_item(k["pk"], found.get(k["pk"]), now, window)
                for k in self.guess_keys(source_ip, user_id, user_code)]

    def guess_limit(self, key: str) -> Limit:
        s = self.settings
        cap = s.user_code_global_misses if key == GUESS_ALL else s.user_code_max_misses
        return Limit(window=s.login_window_seconds, lock_after=cap,
                     lock_seconds=s.login_window_seconds)

    def guessing_blocked(self, counters: list[Counter]) -> bool:
        now = self.clock.now()
        return any(c.locked(now) for c in counters)

    def guessing_retry_after(self, counters: list[Counter]) -> int:
        """Seconds until the longest of the blocks in ``counters`` ends."""
        now = self.clock.now()
        return max([c.locked_until - now for c in counters] + [1])

    def record_wrong_code(self, counters: list[Counter], *, code_issued: bool) -> None:
        """Count one miss. A code that was never issued gets no counter of its
        own: misses on it would block it for whoever is issued it later.
        """
        now = self.clock.now()
        for counter in counters:
            if counter.key.startswith(GUESS_CODE) and not code_issued:
                continue
            self.throttle.record_failure(counter.key, now, self.guess_limit(counter.key))

    @staticmethod
    def is_pending(request: DeviceRequest) -> bool:
        return request.status == PENDING

    def _log(self, event: str, request: DeviceRequest, **extra: Any) -> None:
        # The digest prefix identifies the request in logs; no secret is logged.
        log.info(json.dumps({"event": event, "client_id": request.client_id,
                             "request": request.digest[:12], **extra}))
