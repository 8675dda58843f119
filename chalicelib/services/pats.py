"""Personal access tokens (SPEC §4, §5): policy, lifecycle, validation.

``PatCredentials`` is how a PAT is used: the composition root hands its
``resolve`` to ``Principals`` (so ``/v1/me`` and friends accept PATs) and its
``opaque_kind()`` to ``OAuthTokens`` (RFC 7009 revocation, RFC 7662
introspection). Nothing here touches AWS at import.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import (
    ConditionFailed,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unprocessable,
)
from chalicelib.models import Client, User
from chalicelib.security.opaque import ID_LEN, PAT, digest, is_base62, new_id, same_digest
from chalicelib.services.oauth_tokens import OpaqueKind
from chalicelib.services.principals import Principal
from chalicelib.services.security_log import NOWHERE, SecurityLog, Where
from chalicelib.storage.identities import UsersRepo, user_from_item
from chalicelib.storage.pats import Pat, PatsRepo, pat_from_item
from chalicelib.storage.tables import BatchGet, Transact

if TYPE_CHECKING:
    from chalicelib.services.notices import Notices

MAX_PATS_PER_USER = 100
MAX_DESCRIPTION = 200
MAX_BULK = 100
DEFAULT_LIFETIME_DAYS = 30
READ_SCOPES = frozenset({"tokens:read", "tokens:manage"})
MANAGE_SCOPE = "tokens:manage"
STATES = ("active", "expired", "revoked")
# ASCII digits only (``\d`` and ``str.isdigit`` also take other scripts' digits).
# fullmatch, not match: ``$`` also matches before a final newline.
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_EPOCH = re.compile(r"^[0-9]{1,12}$")
_DAY = 86400


class PatOverrides(Protocol):
    """Settings of a PAT as the edge validated them (``api_models.PatCopy``): the form of
    each is checked (``check_*`` below); whether the stage and the owner allow them is
    ``Pats``'s to check. ``model_fields_set`` names the members given."""

    @property
    def model_fields_set(self) -> set[str]: ...
    @property
    def description(self) -> str | None: ...
    @property
    def expires_at(self) -> str | None: ...


class PatSettings(PatOverrides, Protocol):
    """All of a PAT's settings (``api_models.PatCreate``, ``PatEdit``)."""

    @property
    def scopes(self) -> list[str] | None: ...
    @property
    def api_set(self) -> str | None: ...


class NewPat(PatSettings, Protocol):
    """A new PAT's settings (``api_models.PatCreate``): a description is required."""

    @property
    def description(self) -> str: ...


class PatIds(Protocol):
    """The ids of a bulk remove, validated (``api_models.PatRemoveMany``)."""

    @property
    def ids(self) -> list[str]: ...


@dataclass(frozen=True)
class Issued:
    """A PAT and its secret: the only moment the secret exists outside the caller."""

    pat: Pat
    token: str


# --------------------------------------------------------------------------
# input validation (422 with a clear detail)
#
# The rules of form below are written once: ``api_models`` runs them as the field
# validators of the commands (PatCreate, PatEdit, ...) that the API routes and the
# dashboard validate; ``Pats`` takes the validated command and checks only what
# needs the stage or the owner (``stage_*``).
# --------------------------------------------------------------------------

def valid_id(pat_id: str) -> bool:
    return len(pat_id) == ID_LEN and is_base62(pat_id)


def parse_description(value: object) -> str:
    if not isinstance(value, str):
        raise Unprocessable("description must be a string")
    text = value.strip()
    if not text:
        raise Unprocessable("description must not be empty")
    if len(text) > MAX_DESCRIPTION:
        raise Unprocessable(f"description must be at most {MAX_DESCRIPTION} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise Unprocessable("description must not contain control characters")
    return text


def today(now: int) -> dt.date:
    return dt.datetime.fromtimestamp(now, tz=dt.UTC).date()


def check_expiry(value: object) -> str | None:
    """The form of an expiry date: ``YYYY-MM-DD`` (a calendar date) or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise Unprocessable("expires_at must be a date as YYYY-MM-DD, or null")
    try:
        dt.date.fromisoformat(value)
    except ValueError as exc:
        raise Unprocessable("expires_at is not a valid calendar date") from exc
    return value


def check_scopes(value: object) -> list[str] | None:
    """The form of explicit scopes: a non-empty list of strings, or None."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise Unprocessable("scopes must be a list of strings")
    if not value:
        raise Unprocessable("scopes must not be empty")
    return value


def check_api_set(value: object) -> str | None:
    """The form of an API set's name (whether the stage has it is ``Pats``'s rule)."""
    if value is not None and not isinstance(value, str):
        raise Unprocessable("api_set must be the name of an API set (GET /v1/scopes)")
    return value


def check_scope_choice(scopes: object, api_set: object, *, required: bool) -> None:
    """Explicit scopes xor a named API set; ``required``: one of them."""
    if scopes is not None and api_set is not None:
        raise Unprocessable("Give either scopes or api_set, not both")
    if required and scopes is None and api_set is None:
        raise Unprocessable("Give scopes (a list) or api_set (a name from GET /v1/scopes)")


def check_ids(value: object) -> list[str]:
    """The ids of a bulk remove: 1 to MAX_BULK strings."""
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise Unprocessable("ids must be a list of token ids")
    if not value:
        raise Unprocessable("ids must not be empty")
    if len(value) > MAX_BULK:
        raise Unprocessable(f"At most {MAX_BULK} ids per request")
    return value


def check_state(value: object) -> object:
    if value is not None and value not in STATES:
        raise Unprocessable(f"state must be one of: {', '.join(STATES)}")
    return value


def stage_expiry(value: str | None, now: int, settings: Settings) -> tuple[str | None, int | None]:
    """A well-formed expiry (``check_expiry``) within the stage policy: the PAT stops at
    00:00 UTC that day; None only where the stage allows no expiry."""
    if value is None:
        if not settings.pat_allow_no_expiry:
            raise Unprocessable("expires_at is required: this stage does not allow tokens "
                                "without an expiry date")
        return None, None
    day = dt.date.fromisoformat(value)
    first = today(now) + dt.timedelta(days=1)
    if day < first:
        raise Unprocessable(f"expires_at must be {first.isoformat()} or later")
    if settings.pat_max_lifetime_days > 0:
        last = today(now) + dt.timedelta(days=settings.pat_max_lifetime_days)
        if day > last:
            raise Unprocessable(f"expires_at must be {last.isoformat()} or earlier "
                                f"(at most {settings.pat_max_lifetime_days} days ahead)")
    epoch = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    return day.isoformat(), epoch


def default_expiry(now: int, settings: Settings) -> str:
    days = DEFAULT_LIFETIME_DAYS
    if settings.pat_max_lifetime_days > 0:
        days = min(days, settings.pat_max_lifetime_days)
    return (today(now) + dt.timedelta(days=days)).isoformat()


def stage_scopes(scopes: list[str] | tuple[str, ...] | None, api_set: str | None, user: User,
                 settings: Settings) -> tuple[tuple[str, ...], str | None]:
    """A well-formed scope choice (``check_scope_choice``) the stage and the owner allow:
    an API set of the stage's catalog, or known scopes the owner holds."""
    if api_set is not None:
        if api_set not in settings.api_sets:
            known = ", ".join(sorted(settings.api_sets))
            raise Unprocessable(f"api_set must be one of: {known}")
        return tuple(settings.api_sets[api_set]), api_set
    chosen = scopes or ()
    unknown = sorted({s for s in chosen if s not in settings.scopes})
    if unknown:
        raise Unprocessable(f"Unknown scopes: {', '.join(unknown)}")
    denied = sorted({s for s in chosen if not user.allows(s)})
    if denied:
        raise Unprocessable(f"You do not hold these scopes: {', '.join(denied)}")
    return tuple(sorted(set(chosen))), None


def parse_time_filter(name: str, value: str) -> int:
    """Epoch seconds, or a date (00:00 UTC)."""
    if _EPOCH.fullmatch(value):
        return int(value)
    if _DATE.fullmatch(value):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    raise Unprocessable(f"{name} must be epoch seconds or a date as YYYY-MM-DD")


FILTERS = ("state", "created_before", "created_after", "last_used_before", "last_used_after")


def matches(pat: Pat, filters: Mapping[str, str], now: int) -> bool:
    """List filters. A never-used PAT matches ``last_used_before`` and not ``..._after``."""
    if "state" in filters and pat.state(now) != filters["state"]:
        return False
    if "created_before" in filters and not pat.created_at < int(filters["created_before"]):
        return False
    if "created_after" in filters and not pat.created_at > int(filters["created_after"]):
        return False
    used = pat.last_used_at
    if "last_used_before" in filters and used is not None \
            and not used < int(filters["last_used_before"]):
        return False
    return not ("last_used_after" in filters
                and (used is None or not used > int(filters["last_used_after"])))


def parse_filters(params: Mapping[str, str]) -> dict[str, str]:
    """Validated filters (``api_models.PatFilters``) with each time as epoch seconds."""
    return {name: value if name == "state" else str(parse_time_filter(name, value))
            for name, value in params.items()}


def view(pat: Pat, now: int) -> dict[str, Any]:
    """The public view of a PAT: never the secret, only its prefix and last four."""
    return {
        "id": pat.id, "description": pat.description, "prefix": PAT.prefix,
        "last_four": pat.last_four, "hint": f"{PAT.prefix}…{pat.last_four}",
        "created_at": pat.created_at, "expires_at": pat.expires_on,
        "expires_at_epoch": pat.expires_at, "last_used_at": pat.last_used_at,
        "scopes": list(pat.scopes), "api_set": pat.api_set, "state": pat.state(now),
        "regenerated_at": pat.regenerated_at, "revoked_at": pat.revoked_at,
        "created_from": pat.created_from,
    }


def issued_view(issued: Issued, now: int) -> dict[str, Any]:
    return {**view(issued.pat, now), "token": issued.token,
            "note": "Store this token now: it is shown only once."}


# --------------------------------------------------------------------------
# who may manage tokens
# --------------------------------------------------------------------------

def require_scope(principal: Principal, *, write: bool) -> None:
    """The token API needs ``tokens:manage`` (reads also accept ``tokens:read``)."""
    if write and MANAGE_SCOPE not in principal.scopes:
        raise Forbidden("This credential lacks the tokens:manage scope")
    if not write and not principal.scopes & READ_SCOPES:
        raise Forbidden("This credential lacks the tokens:read or tokens:manage scope")


# --------------------------------------------------------------------------
# lifecycle
# --------------------------------------------------------------------------

class Pats:
    def __init__(self, repo: PatsRepo, clock: Clock, settings: Settings,
                 cap: int = MAX_PATS_PER_USER, *, security_log: SecurityLog | None = None,
                 notices: Callable[[], Notices] | None = None) -> None:
        self.repo = repo
        self.clock = clock
        self.settings = settings
        self.cap = cap
        # The owner's security log (SPEC §11); None in unit tests.
        self.security_log = security_log
        # Mails the owner of a new token, after its write (SPEC §11); None in unit tests.
        self._notices = notices

    def _tell(self, user: User, pat: Pat) -> None:
        if self._notices is not None:
            self._notices().token_created(user, "pat", pat.description)

    def _entry(self, user: User, kind: str, detail: Mapping[str, Any],
               where: Where = NOWHERE) -> list[dict[str, Any]]:
        """The security log's entry, for the transaction of the change it records."""
        return [] if self.security_log is None else [
            self.security_log.op(user.id, kind, where, detail)]

    def _mint(self, owner: str, pat_id: str) -> str:
        return PAT.mint(owner + pat_id)

    def generate(self, user: User, command: NewPat,
                 created_from: Mapping[str, str] | None = None) -> Issued:
        """A new PAT (``api_models.PatCreate``); an omitted expiry is the default."""
        expires = command.expires_at if "expires_at" in command.model_fields_set \
            else default_expiry(self.clock.now(), self.settings)
        return self._issue(user, command.description, expires, command.scopes,
                           command.api_set, created_from)

    def _issue(self, user: User, description: str, expires: str | None,
               scopes: list[str] | tuple[str, ...] | None, api_set: str | None,
               created_from: Mapping[str, str] | None) -> Issued:
        now = self.clock.now()
        expires_on, expires_at = stage_expiry(expires, now, self.settings)
        scopes, api_set = stage_scopes(scopes, api_set, user, self.settings)
        pat_id = new_id()
        token = self._mint(user.id, pat_id)
        pat = Pat(id=pat_id, owner=user.id, description=description, token_hash=digest(token),
                  last_four=token[-4:], scopes=scopes, api_set=api_set, created_at=now,
                  expires_on=expires_on, expires_at=expires_at,
                  created_from={k: str(v)[:256] for k, v in (created_from or {}).items() if v},
                  # its creator's address is not "new" at its first use from there
                  seen_ips=tuple(ip for ip in [(created_from or {}).get("ip", "")]
                                 if ip and ip != "unknown"))
        origin = created_from or {}
        entry = self._entry(user, "pat_created", {"pat_id": pat_id, "description": description},
                            Where(origin.get("ip", ""), origin.get("user_agent", "")[:256]))
        try:
            self.repo.create(pat, self.cap, entry)
        except ConditionFailed as exc:
            raise Conflict(f"You already have the maximum of {self.cap} personal access tokens; "
                           "remove some first") from exc
        self._log("pat_created", pat)
        self._tell(user, pat)
        return Issued(pat, token)

    def find(self, user: User, filters: Mapping[str, str]) -> list[Pat]:
        now = self.clock.now()
        pats = [p for p in self.repo.list(user.id) if matches(p, filters, now)]
        return sorted(pats, key=lambda p: (-p.created_at, p.id))

    def get(self, user: User, pat_id: str) -> Pat:
        # Another user's PAT is indistinguishable from no PAT: the key holds the owner.
        pat = self.repo.get(user.id, pat_id) if valid_id(pat_id) else None
        if pat is None:
            raise NotFound("No such token")
        return pat

    def edit(self, user: User, pat_id: str, command: PatSettings) -> Pat:
        """The settings ``command`` (``api_models.PatEdit``) gives; the others stay."""
        given = command.model_fields_set
        pat = self.get(user, pat_id)
        if pat.revoked_at is not None:
            raise Conflict("This token was revoked; it can only be removed")
        now = self.clock.now()
        description = command.description if command.description is not None \
            else pat.description
        if "expires_at" in given:
            expires_on, expires_at = stage_expiry(command.expires_at, now, self.settings)
        else:
            expires_on, expires_at = pat.expires_on, pat.expires_at
        if "scopes" in given or "api_set" in given:
            scopes, api_set = stage_scopes(command.scopes, command.api_set, user, self.settings)
        else:
            scopes, api_set = pat.scopes, pat.api_set
        try:
            updated = self.repo.update_settings(pat, description=description, scopes=scopes,
                                                api_set=api_set, expires_on=expires_on,
                                                expires_at=expires_at)
        except ConditionFailed as exc:
            raise Conflict("The token changed meanwhile; reload and try again") from exc
        self._log("pat_edited", updated)
        return updated

    def regenerate(self, user: User, pat_id: str, where: Where = NOWHERE) -> Issued:
        pat = self.get(user, pat_id)
        now = self.clock.now()
        if pat.revoked_at is not None:
            raise Conflict("This token was revoked; generate a new one instead")
        if pat.state(now) == "expired":
            raise Conflict("This token has expired; set a new expiry date first")
        token = self._mint(user.id, pat.id)
        try:
            updated = self.repo.replace_secret(pat, digest(token), token[-4:], now)
        except ConditionFailed as exc:
            raise Conflict("The token changed meanwhile; reload and try again") from exc
        self._log("pat_regenerated", updated)
        # A new secret is a new credential: logged as ``pat_created`` (with
        # ``regenerated``), one PutItem after the UpdateItem that returns the PAT.
        if self.security_log is not None:
            self.security_log.record(user.id, "pat_created", where,
                                     {"pat_id": pat.id, "description": pat.description,
                                      "regenerated": True})
        self._tell(user, updated)
        return Issued(updated, token)

    def copy(self, user: User, pat_id: str, overrides: PatOverrides,
             created_from: Mapping[str, str] | None = None) -> Issued:
        """A new PAT with the settings of another; ``overrides`` (``api_models.PatCopy``)
        may give description and expires_at (needed when the original's date has passed)."""
        pat = self.get(user, pat_id)
        description = overrides.description if overrides.description is not None \
            else pat.description
        expires = overrides.expires_at if "expires_at" in overrides.model_fields_set \
            else pat.expires_on
        return self._issue(user, description, expires, pat.scopes, pat.api_set, created_from)

    def remove(self, user: User, pat_id: str, where: Where = NOWHERE) -> None:
        entry = self._entry(user, "pat_revoked", {"pat_id": pat_id, "reason": "removed"}, where)
        if not (valid_id(pat_id) and self.repo.delete(user.id, pat_id, entry)):
            raise NotFound("No such token")
        log.info(json.dumps({"event": "pat_removed", "owner": user.id, "pat_id": pat_id}))

    def remove_many(self, user: User, command: PatIds,
                    where: Where = NOWHERE) -> tuple[list[str], list[str]]:
        """Removes the ids of ``command`` (``api_models.PatRemoveMany``): answers the
        removed ones, and those not found."""
        ids = command.ids
        removed: list[str] = []
        missing: list[str] = []
        for pat_id in dict.fromkeys(ids):
            entry = self._entry(user, "pat_revoked", {"pat_id": pat_id, "reason": "removed"},
                                where)
            if valid_id(pat_id) and self.repo.delete(user.id, pat_id, entry):
                removed.append(pat_id)
            else:
                missing.append(pat_id)
        log.info(json.dumps({"event": "pats_removed", "owner": user.id, "pat_ids": removed}))
        return removed, missing

    def _log(self, event: str, pat: Pat) -> None:
        log.info(json.dumps({"event": event, "owner": pat.owner, "pat_id": pat.id,
                             "scopes": list(pat.scopes), "expires_on": pat.expires_on}))


# --------------------------------------------------------------------------
# using a PAT: one strongly consistent round trip (SPEC §9)
# --------------------------------------------------------------------------

class PatCredentials:
    """Using a PAT: recognise it, check it, and revoke it when asked."""

    def __init__(self, repo: PatsRepo, clock: Clock, settings: Settings, *, users: UsersRepo,
                 batch_get: BatchGet, security_log: SecurityLog | None = None,
                 transact: Transact | None = None) -> None:
        self.repo = repo
        self.clock = clock
        self.settings = settings
        self.users = users
        self.batch_get = batch_get
        self.security_log = security_log
        self.transact = transact

    def used_from(self, principal: Principal, where: Where) -> None:
        """Note a PAT's use from ``where``: an address it has not been used from
        gets a ``pat_used_new_ip`` entry and joins the PAT's seen addresses, in one
        transaction (no entry without the address, nor the reverse). A known
        address writes nothing: the set came with the PAT's one read (SPEC §9).
        A lost condition (a concurrent use from another new address) writes
        nothing; a later use from here tries again."""
        pat = principal.pat
        if (pat is None or self.security_log is None or self.transact is None
                or not where.ip or where.ip == "unknown" or where.ip in pat.seen_ips):
            return
        try:
            self.transact([self.repo.op_seen_from(pat, where.ip),
                           self.security_log.op(pat.owner, "pat_used_new_ip", where,
                                                {"pat_id": pat.id,
                                                 "description": pat.description})])
        except ConditionFailed:
            return

    def validate(self, token: str) -> tuple[Pat, User] | None:
        """The PAT and its owner if ``token`` is a live PAT, else None.

        A malformed token or bad checksum costs no read; otherwise one BatchGetItem
        reads the PAT and its owner. Expiry is checked here (TTL is lazy).
        """
        locator = PAT.parse(token)
        if locator is None:
            return None
        owner, pat_id = locator[:ID_LEN], locator[ID_LEN:]
        found = self.batch_get({"tokens": [PatsRepo.key(owner, pat_id)],
                                "users": [self.users.key(owner)]})
        if not found["tokens"] or not found["users"] or found["tokens"][0].get("kind") != "pat":
            return None
        pat, user = pat_from_item(found["tokens"][0]), user_from_item(found["users"][0])
        now = self.clock.now()
        if not same_digest(pat.token_hash, digest(token)) or pat.state(now) != "active" \
                or not user.active:
            return None
        resolution = self.settings.pat_last_used_resolution
        if pat.last_used_at is None or pat.last_used_at <= now - resolution:
            self.repo.touch(owner, pat_id, now, resolution)
        return pat, user

    def resolve(self, token: str, issuer: str) -> Principal | None:
        """A ``Principals`` resolver: None for non-PATs, 401 for dead PATs."""
        if not token.startswith(PAT.prefix):
            return None
        valid = self.validate(token)
        if valid is None:
            raise Unauthorized(detail="PAT malformed, unknown, expired, revoked or owner disabled")
        return principal_for(*valid)

    def introspect(self, token: str) -> dict[str, Any] | None:
        """RFC 7662 §2.2 for a PAT."""
        valid = self.validate(token)
        if valid is None:
            return None
        pat, user = valid
        out: dict[str, Any] = {"active": True, "sub": user.id, "username": user.username,
                               "scope": " ".join(sorted(effective_scopes(pat, user))),
                               "iat": pat.issued_at, "tessera_token_kind": "pat",
                               "pat_id": pat.id}
        if pat.expires_at is not None:
            out["exp"] = pat.expires_at
        return out

    def revoke(self, client: Client, token: str) -> None:
        """RFC 7009 §2.1: whoever holds a PAT may revoke it; unknown tokens are fine."""
        locator = PAT.parse(token)
        if locator is None:
            return
        owner, pat_id = locator[:ID_LEN], locator[ID_LEN:]
        if self.repo.revoke(owner, pat_id, digest(token), self.clock.now()):
            log.info(json.dumps({"event": "pat_revoked", "owner": owner, "pat_id": pat_id,
                                 "client_id": client.client_id}))
            # One PutItem after the conditional UpdateItem: whoever holds the
            # secret revokes it, and only the update's outcome says it happened.
            if self.security_log is not None:
                self.security_log.record(owner, "pat_revoked", NOWHERE,
                                         {"pat_id": pat_id, "reason": "revoked",
                                          "client_id": client.client_id})

    def opaque_kind(self) -> OpaqueKind:
        """PATs as one of the opaque kinds of RFC 7009 revocation and RFC 7662 introspection."""
        return OpaqueKind(matches=PAT.matches, revoke=self.revoke, introspect=self.introspect)


def effective_scopes(pat: Pat, user: User) -> frozenset[str]:
    """SPEC §5: the PAT's scopes intersected with its owner's current rights."""
    return frozenset(s for s in pat.scopes if user.allows(s))


def principal_for(pat: Pat, user: User) -> Principal:
    return Principal(kind="pat", user=user, scopes=effective_scopes(pat, user),
                     issued_at=pat.issued_at, expires_at=pat.expires_at, token_id=pat.id,
                     details={"id": pat.id, "description": pat.description,
                              "expires_on": pat.expires_on, "api_set": pat.api_set,
                              "last_used_at": pat.last_used_at}, pat=pat)
