"""Managing roles (SPEC §6): roles, their policies, keys and trust policies.

A role is named ``<username>.<name>`` and belongs to that user: its name says
where it is stored (``storage.roles``), so a role of anyone else is answered
exactly as a role that does not exist (404), before any read, on every verb.
Creating a role under another user's name is a 403 ("a role's name starts with
your username"), as GitHub answers creating a repository in an organisation
one does not belong to: the rule is about the name, and says nothing about
which roles exist.

A policy must be covered by one of the owner's own permissions
(``permissions.covers``): a role never holds more than its owner could do,
and its effective rights (policies ∩ the owner's *current* rights) are
recomputed wherever the role is used, not here. Caps on roles per user and on
policies, keys and trust policies per role are conditions of the writes; like
the PAT cap they answer 409.

Using a role key as a credential and the federation exchange live elsewhere;
this module only mints a key's secret, once, at creation. Nothing here touches
AWS at import, nor pydantic: the API models call the ``check_*`` rules below.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalicelib.audit import event
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import (
    ConditionFailed,
    Conflict,
    Forbidden,
    NotFound,
    Unprocessable,
    bearer_challenge,
)
from chalicelib.models import User, user_id_for, valid_username
from chalicelib.security.opaque import (
    ID_LEN,
    ROLE_KEY_SECRET,
    digest,
    is_base62,
    is_role_key_access_id,
    new_role_key_access_id,
)
from chalicelib.security.outbound import host_problem
from chalicelib.security.permissions import InvalidPermission, covers, parse
from chalicelib.services.pats import parse_description
from chalicelib.services.principals import Principal
from chalicelib.services.security_log import NOWHERE, SecurityLog, Where
from chalicelib.storage.identities import UsersRepo
from chalicelib.storage.roles import (
    MAX_ROLE_NAME,
    LimitReached,
    Role,
    RoleExists,
    RoleKey,
    RolesRepo,
    TrustPolicy,
    owner_id_of,
    policy_id_for,
    role_id_for,
    split_role_name,
    trust_id_for,
)

if TYPE_CHECKING:
    from chalicelib.services.notices import Notices

MANAGE_SCOPE = "roles:manage"
NAME_RULE = ("name must be <your username>.<name>, the name of lowercase letters, digits and "
             "dashes (e.g. alice.ci)")
MAX_ISSUER = 512
MAX_AUDIENCE = 256
MAX_SUBJECT = 512
MAX_CLAIMS = 20
MAX_CLAIM_NAME = 128
MAX_CLAIM_VALUE = 512
# Claims a trust policy matches by their own members, or that say nothing about
# who the job is: matching them for equality would be redundant or never hold.
RESERVED_CLAIMS = frozenset({"iss", "aud", "sub", "exp", "nbf", "iat", "jti"})
LOOPBACK_NAMES = frozenset({"localhost"})
# Subject formats of known CI issuers: the fixed prefix, and how to say it.
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
PROVIDER_PREFIXES = {GITHUB_ISSUER: ("repo:", "repo:OWNER/"),
                     "https://gitlab.com": ("project_path:", "project_path:GROUP/")}
MIN_SUBJECT_PREFIX = 8
WILDCARD_PREFIX = re.compile(r"^[^*:/]+[:/][^*:/]+[:/]")


# --------------------------------------------------------------------------
# who may manage roles
# --------------------------------------------------------------------------

def require_scope(principal: Principal) -> None:
    """Every ``/v1/roles`` call needs ``roles:manage`` (RFC 6750 §3.1: a 403 whose
    challenge names the scope)."""
    if MANAGE_SCOPE not in principal.scopes:
        raise Forbidden(f"This credential lacks the {MANAGE_SCOPE} scope",
                        challenges=(bearer_challenge("insufficient_scope", MANAGE_SCOPE),))


# --------------------------------------------------------------------------
# rules of shape (422); the API models call these so both say the same
# --------------------------------------------------------------------------

def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise Unprocessable(f"{what} must be a string")
    if not value:
        raise Unprocessable(f"{what} must not be empty")
    if len(value) > limit:
        raise Unprocessable(f"{what} must be at most {limit} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise Unprocessable(f"{what} must not contain control characters")
    return value


def check_name(value: object) -> str:
    """A well-formed role name (whose it is, is the caller's business)."""
    if not isinstance(value, str) or split_role_name(value) is None:
        raise Unprocessable(NAME_RULE)
    return value


def check_description(value: object) -> str:
    """An optional description: absent is empty; given, the PAT rules (§5)."""
    return "" if value is None else parse_description(value)


def check_permission(value: object) -> str:
    """A permission pattern of SPEC §6, in its canonical spelling."""
    if not isinstance(value, str):
        raise Unprocessable("permission must be a string")
    try:
        return parse(value).format()
    except InvalidPermission as exc:
        raise Unprocessable(f"invalid permission: {exc}") from exc


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_issuer(value: object, *, allow_http: bool) -> str:
    """An OIDC issuer: an https URL with a host and no query or fragment (OpenID
    Connect Discovery §3); plain http only for a loopback host, and only where
    ``TESSERA_FEDERATION_ALLOW_HTTP`` is on (``allow_http``)."""
    text = _text(value, "issuer", MAX_ISSUER)
    https_only = "issuer must be an https URL" + (
        "" if not allow_http else " (or http on a loopback host such as 127.0.0.1)")
    if " " in text:
        raise Unprocessable("issuer must not contain spaces")
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as exc:
        raise Unprocessable(f"{https_only}; this one does not parse") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname or not port_ok:
        raise Unprocessable(https_only)
    if parts.scheme == "http" and not (allow_http and is_loopback(parts.hostname)):
        raise Unprocessable(https_only)
    # Public hosts only, each address in its one spelling (127.1 is refused);
    # where a name leads is checked at every fetch (services.federation).
    problem = host_problem(parts.hostname, allow_loopback=allow_http)
    if problem:
        raise Unprocessable(f"issuer: {problem}")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise Unprocessable("issuer must have no query or fragment (OpenID Connect Discovery §3)")
    if parts.username is not None or parts.password is not None:
        raise Unprocessable("issuer must not carry user information")
    return text


def check_audience(value: object) -> str:
    return _text(value, "audience", MAX_AUDIENCE)


def check_subject(value: object) -> str:
    """The job's ``sub``, exactly, or a prefix: a ``*`` only at the very end, after
    at least one character (a bare ``*`` would trust every job of the issuer)."""
    text = _text(value, "subject", MAX_SUBJECT)
    if "*" in text[:-1]:
        raise Unprocessable("subject may hold a * only at its very end")
    if text == "*":
        raise Unprocessable("subject must name something before its trailing * (a bare * "
                            "would trust every job of the issuer)")
    return text


def check_trusted_subject(issuer: str, subject: str) -> str:
    """A subject that names a job of one owner at least (issue: ``r*`` trusted
    every GitHub repository). GitHub Actions subjects (the github.com issuer, or
    any subject beginning ``repo:``) start with ``repo:OWNER/``; GitLab's
    (gitlab.com, or any subject beginning ``project_path:``) with
    ``project_path:GROUP/``; no ``*`` before that. Any other issuer's wildcard
    subject has a prefix before its ``*`` of at least MIN_SUBJECT_PREFIX
    characters holding two segments ended by ``:`` or ``/`` (``kind:name:``)."""
    prefix = subject[:-1] if subject.endswith("*") else subject
    provider = PROVIDER_PREFIXES.get(issuer.rstrip("/")) or next(
        (p for p in PROVIDER_PREFIXES.values() if subject.startswith(p[0])), None)
    if issuer.startswith(GITHUB_ISSUER + "/"):      # GitHub Enterprise Cloud's own issuer
        provider = PROVIDER_PREFIXES[GITHUB_ISSUER]
    if provider is not None:
        kind, shape = provider
        if not re.match(re.escape(kind) + r"[^*/:\s]+/", prefix):
            raise Unprocessable(f"subject of this issuer must start with {shape} (the owner "
                                "named in full, no * before the /)")
    elif subject.endswith("*") and (len(prefix) < MIN_SUBJECT_PREFIX
                                    or not WILDCARD_PREFIX.match(prefix)):
        raise Unprocessable(
            "subject with a * must name at least a kind and an owner before it: "
            f"{MIN_SUBJECT_PREFIX} or more characters with two segments ended by : or / "
            "(e.g. organization:acme:*)")
    return subject


def check_claims(value: object) -> dict[str, str]:
    """Claims of the job's token that must equal the given strings."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Unprocessable("claims must be an object of strings")
    if len(value) > MAX_CLAIMS:
        raise Unprocessable(f"claims must hold at most {MAX_CLAIMS} entries")
    out: dict[str, str] = {}
    for name, wanted in value.items():
        _text(name, "a claim name", MAX_CLAIM_NAME)
        if name in RESERVED_CLAIMS:
            raise Unprocessable(f"claim {name!r} cannot be matched in claims (issuer, audience "
                                "and subject have their own members)")
        out[name] = _text(wanted, f"claim {name!r}", MAX_CLAIM_VALUE)
    return out


def valid_entry_id(entry_id: str) -> bool:
    """Policy and trust ids are 16 base62 characters: anything else names nothing."""
    return len(entry_id) == ID_LEN and is_base62(entry_id)


# --------------------------------------------------------------------------
# views
# --------------------------------------------------------------------------

def policy_view(policy_id: str, permission: str) -> dict[str, str]:
    return {"id": policy_id, "permission": permission}


def policies_view(role: Role) -> list[dict[str, str]]:
    return [policy_view(i, p) for i, p in sorted(role.policies.items(), key=lambda e: e[1])]


def role_view(role: Role) -> dict[str, Any]:
    return {"name": role.name, "description": role.description, "created_at": role.created_at,
            "policies": policies_view(role)}


def key_view(key: RoleKey) -> dict[str, Any]:
    """A role key as listed: never its secret nor the secret's hash."""
    return {"id": key.id, "description": key.description, "created_at": key.created_at,
            "last_used_at": key.last_used_at}


def keys_view(role: Role) -> list[dict[str, Any]]:
    return [key_view(k) for k in sorted(role.keys.values(), key=lambda k: (k.created_at, k.id))]


def trust_view(role: Role) -> list[dict[str, Any]]:
    return [t.view() for t in sorted(role.trust.values(), key=lambda t: (t.created_at, t.id))]


@dataclass(frozen=True)
class IssuedKey:
    """A new role key and its secret: the only moment the secret exists outside the caller."""

    key: RoleKey
    secret: str

    @property
    def token(self) -> str:
        """SPEC §6: ``tka_…:tsk_…``, usable as a Bearer token or a Basic password."""
        return f"{self.key.id}:{self.secret}"

    def view(self) -> dict[str, Any]:
        return {"id": self.key.id, "access": self.key.id, "secret": self.secret,
                "token": self.token, "description": self.key.description,
                "created_at": self.key.created_at}


# --------------------------------------------------------------------------
# the service
# --------------------------------------------------------------------------

NO_ROLE = "No such role"


class RoleNameTaken(Conflict):
    """The owner has a role of that name already (a 409, as any conflict)."""


class Roles:
    """The owner's roles. Every method takes the acting owner first; a name that is
    not theirs is ``NotFound`` before any read."""

    def __init__(self, repo: RolesRepo, clock: Clock, settings: Settings, *,
                 users: UsersRepo, security_log: SecurityLog | None = None,
                 notices: Callable[[], Notices] | None = None) -> None:
        self.repo = repo
        self.clock = clock
        self.settings = settings
        self.users = users
        # The owner's security log (SPEC §11); None in unit tests.
        self.security_log = security_log
        # Mails the owner of a new key, after its write (SPEC §11); None in unit tests.
        self._notices = notices

    def _record(self, owner: User, kind: str, where: Where, detail: Mapping[str, Any]) -> None:
        """A key or trust change's security-log entry: one PutItem after the role's
        conditional UpdateItem, which returns the role (ALL_NEW) and tells a cap
        from a missing role by its failed condition's old item, neither of which
        a transaction gives back."""
        if self.security_log is not None:
            self.security_log.record(owner.id, kind, where, detail)

    # -- whose role ---------------------------------------------------------------

    def owner_of(self, name: str) -> User:
        """The user a role name belongs to (the admin command and seed files act as
        them); ``Unprocessable`` for a malformed name, ``NotFound`` for no such user."""
        parts = split_role_name(check_name(name))
        assert parts is not None
        user = self.users.get(user_id_for(parts[0]))
        if user is None:
            raise NotFound(f"No user {parts[0]} to own role {name}")
        return user

    @staticmethod
    def own(owner: User, name: str) -> str:
        """``name`` if it is a role name of ``owner``; else the 404 of a missing role.
        Nothing is read: the name says whose it is."""
        if len(name) > MAX_ROLE_NAME or owner_id_of(name) != owner.id:
            raise NotFound(NO_ROLE)
        return name

    # -- roles --------------------------------------------------------------------

    def create(self, owner: User, name: str, description: object = None) -> Role:
        check_name(name)
        parts = split_role_name(name)
        assert parts is not None
        if owner_id_of(name) != owner.id:
            raise Forbidden(f"A role's name starts with your username: {owner.username}."
                            f"{parts[1]}, not {name}")
        if not valid_username(owner.username):
            # A username from before the rule (only one with a dot gets this far): its
            # role names would lie in another user's namespace (alice.x.ci in alice's).
            raise Forbidden(f"Your username {owner.username} has a dot, which usernames no "
                            "longer take, so it cannot own new roles; ask an administrator "
                            "for a username without one")
        role = Role(name=name, owner=owner.id, description=check_description(description),
                    created_at=self.clock.now())
        cap = self.settings.max_roles_per_user
        try:
            self.repo.create(role, cap)
        except RoleExists as exc:
            raise RoleNameTaken(f"You already have a role named {name}") from exc
        except LimitReached as exc:
            raise Conflict(f"You already have the maximum of {cap} roles; remove some "
                           "first") from exc
        event("role_created", owner=owner.id, role=name)
        return role

    def list(self, owner: User) -> list[Role]:
        return self.repo.list(owner.id)

    def get(self, owner: User, name: str) -> Role:
        role = self.repo.get(self.own(owner, name))
        if role is None:
            raise NotFound(NO_ROLE)
        return role

    def delete(self, owner: User, name: str) -> None:
        """Remove the role; its keys, which live in its item, go with it."""
        if not self.repo.delete(self.own(owner, name)):
            raise NotFound(NO_ROLE)
        event("role_deleted", owner=owner.id, role=name)

    # -- policies -----------------------------------------------------------------

    def policy_for(self, owner: User, permission: object) -> str:
        """The canonical permission, if the owner may put it in a role: one of their
        own permissions covers it (SPEC §6), else 403."""
        wanted = check_permission(permission)
        if not any(covers(right, wanted) for right in owner.permissions):
            raise Forbidden(f"{owner.username} does not hold {wanted}: a role's policy must be "
                            "covered by one of its owner's permissions")
        return wanted

    def add_policy(self, owner: User, name: str, permission: object) -> tuple[str, str]:
        """(id, canonical permission). Adding a permission the role already has
        changes nothing and answers the same."""
        self.own(owner, name)
        wanted = self.policy_for(owner, permission)
        policy_id = policy_id_for(wanted)
        cap = self.settings.max_policies_per_role
        try:
            role = self.repo.add_policy(name, policy_id, wanted, cap)
        except LimitReached as exc:
            raise Conflict(f"The role already has the maximum of {cap} policies; remove some "
                           "first") from exc
        if role is None:
            raise NotFound(NO_ROLE)
        event("role_policy_added", owner=owner.id, role=name, policy_id=policy_id,
              permission=wanted)
        return policy_id, wanted

    def remove_policy(self, owner: User, name: str, policy_id: str) -> None:
        self.own(owner, name)
        if not (valid_entry_id(policy_id) and self.repo.remove_policy(name, policy_id)):
            raise NotFound("No such policy")
        event("role_policy_removed", owner=owner.id, role=name, policy_id=policy_id)

    # -- keys ---------------------------------------------------------------------

    def create_key(self, owner: User, name: str, description: object = None,
                   where: Where = NOWHERE) -> IssuedKey:
        """A new key ``tka_…`` with its secret ``tsk_…``; only the secret's digest is
        stored, and the secret names the role (owner id + role id) so that using
        it costs one read (SPEC §9)."""
        self.own(owner, name)
        secret = ROLE_KEY_SECRET.mint(owner.id + role_id_for(name))
        key = RoleKey(id=new_role_key_access_id(), secret_hash=digest(secret),
                      description=check_description(description), created_at=self.clock.now())
        cap = self.settings.max_keys_per_role
        try:
            role = self.repo.add_key(name, key, cap)
        except LimitReached as exc:
            raise Conflict(f"The role already has the maximum of {cap} keys; revoke some "
                           "first") from exc
        except ConditionFailed as exc:
            # A fresh random access id that is taken: never in practice; say so plainly.
            raise Conflict("Key id collision; try again") from exc
        if role is None:
            raise NotFound(NO_ROLE)
        event("role_key_created", owner=owner.id, role=name, key_id=key.id)
        self._record(owner, "role_key_created", where,
                     {"role": name, "key_id": key.id, "description": key.description})
        if self._notices is not None:
            self._notices().token_created(owner, "role_key", f"{key.id} of the role {name}")
        return IssuedKey(key, secret)

    def revoke_key(self, owner: User, name: str, key_id: str, where: Where = NOWHERE) -> None:
        """Remove the key: every later use of it fails (the role is read strongly
        consistently wherever a key is checked)."""
        self.own(owner, name)
        if not (is_role_key_access_id(key_id) and self.repo.remove_key(name, key_id)):
            raise NotFound("No such key")
        event("role_key_revoked", owner=owner.id, role=name, key_id=key_id)
        self._record(owner, "role_key_revoked", where,
                     {"role": name, "key_id": key_id, "reason": "revoked"})

    # -- trust --------------------------------------------------------------------

    def trust_for(self, body: Mapping[str, Any]) -> TrustPolicy:
        """A trust policy from ``{issuer, audience, subject, claims?}``, checked."""
        unknown = sorted(set(body) - {"issuer", "audience", "subject", "claims"})
        if unknown:
            raise Unprocessable(f"Unknown fields: {', '.join(unknown)}")
        issuer = check_issuer(body.get("issuer"), allow_http=self.settings.federation_allow_http)
        audience, subject = check_audience(body.get("audience")), check_subject(body.get("subject"))
        check_trusted_subject(issuer, subject)
        claims = check_claims(body.get("claims"))
        return TrustPolicy(id=trust_id_for(issuer, audience, subject, claims), issuer=issuer,
                           audience=audience, subject=subject, claims=claims,
                           created_at=self.clock.now())

    def add_trust(self, owner: User, name: str, body: Mapping[str, Any],
                  where: Where = NOWHERE) -> TrustPolicy:
        """Add a trust policy (``trust_for``). Adding one the role already has
        changes nothing and answers the existing one."""
        self.own(owner, name)
        trust = self.trust_for(body)
        cap = self.settings.max_trust_per_role
        try:
            role = self.repo.add_trust(name, trust, cap)
        except LimitReached as exc:
            raise Conflict(f"The role already has the maximum of {cap} trust policies; remove "
                           "some first") from exc
        if role is None:
            raise NotFound(NO_ROLE)
        event("role_trust_added", owner=owner.id, role=name, trust_id=trust.id,
              issuer=trust.issuer, audience=trust.audience, subject=trust.subject,
              claims=sorted(trust.claims))
        kept = role.trust.get(trust.id, trust)
        if kept.created_at == trust.created_at:     # new, not one the role had
            self._record(owner, "trust_policy_changed", where,
                         {"change": "added", "role": name, "trust_id": trust.id,
                          "issuer": trust.issuer, "audience": trust.audience,
                          "subject": trust.subject})
        return kept

    def remove_trust(self, owner: User, name: str, trust_id: str,
                     where: Where = NOWHERE) -> None:
        self.own(owner, name)
        if not (valid_entry_id(trust_id) and self.repo.remove_trust(name, trust_id)):
            raise NotFound("No such trust policy")
        event("role_trust_removed", owner=owner.id, role=name, trust_id=trust_id)
        self._record(owner, "trust_policy_changed", where,
                     {"change": "removed", "role": name, "trust_id": trust_id})
