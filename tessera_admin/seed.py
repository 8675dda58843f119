"""Load users, clients and roles from a seed document (SPEC §7), idempotently.

The document is the JSON shape of SPEC §7::

    {"users":   [{"username", "password", "email"?, "firstname"?, "lastname"?,
                  "scopes"?, "active"?, "permissions"?}],
     "clients": [{"client_id", "public"?, "client_secret"?, "name"?,
                  "grant_types"?, "scopes"?, "introspect"?,
                  "id_token_signed_response_alg"?, "access_token_signed_response_alg"?,
                  "resources"?, "default_audience"?, "redirect_uris"?,
                  "post_logout_redirect_uris"?, "delegate"?, "remember_consent"?, "require_mfa"?,
                  "allowed_origins"?}],
     "roles":   [{"name", "description"?, "policies"?: ["action@resource", ...],
                  "trust"?: [{"issuer", "audience", "subject", "claims"?}]}]}

``resources`` registers a resource server with the URIs it answers for (RFC
8707); ``default_audience`` is the ``aud`` of a client's tokens when a request
names no resource. Clients are loaded in file order, so a resource server comes
before a client whose default audience it is.

Entries that already exist are skipped and reported, never overwritten, so
loading the same file twice is harmless. Roles are loaded after users, as their
owners (the username part of the name), under the same rules as the API: a
policy must be covered by the owner's permissions. Unknown sections and fields
are reported and left alone, so that seed files written for a later version
keep working. Used by the admin command (``seed FILE``), the local runner and the benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import Conflict, ProblemError
from chalicelib.security.permissions import InvalidPermission
from chalicelib.security.permissions import parse as parse_permission
from chalicelib.security.redirect_uris import registrable
from chalicelib.services import roles as role_rules
from chalicelib.services.identities import Identities
from chalicelib.services.roles import RoleNameTaken, Roles

USER_FIELDS = frozenset({"username", "password", "email", "firstname", "lastname", "scopes", "active",
                         "permissions"})
CLIENT_FIELDS = frozenset({"client_id", "public", "client_secret", "name", "grant_types", "scopes",
                           "introspect", "id_token_signed_response_alg",
                           "access_token_signed_response_alg", "resources", "default_audience",
                           "redirect_uris", "post_logout_redirect_uris", "delegate",
                           "remember_consent", "allowed_origins", "require_mfa"})
ROLE_FIELDS = frozenset({"name", "description", "policies", "trust"})
TRUST_FIELDS = frozenset({"issuer", "audience", "subject", "claims"})
SECTIONS = ("users", "clients", "roles")


class SeedError(ValueError):
    """The seed document is malformed; nothing of the faulty entry was written."""


@dataclass
class SeedReport:
    created_users: list[str] = field(default_factory=list)
    skipped_users: list[str] = field(default_factory=list)
    created_clients: list[str] = field(default_factory=list)
    skipped_clients: list[str] = field(default_factory=list)
    created_roles: list[str] = field(default_factory=list)
    skipped_roles: list[str] = field(default_factory=list)
    # client_id -> secret the loader generated (the file gave none); shown once.
    generated_secrets: dict[str, str] = field(default_factory=dict)
    # Signing algorithms the loaded clients registered (their key families must exist).
    signing_algs: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A human-readable summary (never contains a secret from the file)."""
        out: list[str] = []
        for label, names in (("created user", self.created_users),
                             ("skipped existing user", self.skipped_users),
                             ("created client", self.created_clients),
                             ("skipped existing client", self.skipped_clients),
                             ("created role", self.created_roles),
                             ("skipped existing role", self.skipped_roles)):
            out.extend(f"{label} {name}" for name in names)
        out.extend(f"generated secret for client {cid}: {secret} (shown once)"
                   for cid, secret in self.generated_secrets.items())
        out.extend(self.notes)
        return out


def _str(entry: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = entry.get(key)
    if value is None:
        if required:
            raise SeedError(f"{where}: missing '{key}'")
        return ""
    if not isinstance(value, str):
        raise SeedError(f"{where}: '{key}' must be a string")
    return value


def _str_list(entry: Mapping[str, Any], key: str, where: str) -> list[str] | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SeedError(f"{where}: '{key}' must be a list of strings")
    return list(value)


def _bool(entry: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise SeedError(f"{where}: '{key}' must be true or false")
    return value


def _optional_bool(entry: Mapping[str, Any], key: str, where: str) -> bool | None:
    """A setting whose absence means a rule of its own (not a fixed default)."""
    return _bool(entry, key, where, False) if entry.get(key) is not None else None


def _entries(data: Mapping[str, Any], section: str) -> list[Mapping[str, Any]]:
    entries = data.get(section, [])
    if not isinstance(entries, list):
        raise SeedError(f"'{section}' must be a list")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise SeedError(f"{section}[{i}] must be an object")
    return entries


def _check_shape(data: Any) -> None:
    """Validate the whole document before writing anything."""
    if not isinstance(data, dict):
        raise SeedError("a seed document must be a JSON object")
    for i, user in enumerate(_entries(data, "users")):
        where = f"users[{i}]"
        _str(user, "username", where, required=True)
        _str(user, "password", where, required=True)
        for key in ("email", "firstname", "lastname"):
            _str(user, key, where)
        _str_list(user, "scopes", where)
        for permission in _str_list(user, "permissions", where) or ():
            try:
                parse_permission(permission)
            except InvalidPermission as exc:
                raise SeedError(f"{where}: invalid permission: {exc}") from exc
        _bool(user, "active", where, True)
    for i, client in enumerate(_entries(data, "clients")):
        where = f"clients[{i}]"
        _str(client, "client_id", where, required=True)
        _str(client, "client_secret", where)
        _str(client, "name", where)
        _str_list(client, "grant_types", where)
        _str_list(client, "scopes", where)
        _str_list(client, "resources", where)
        for key in ("id_token_signed_response_alg", "access_token_signed_response_alg",
                    "default_audience"):
            _str(client, key, where)
        _bool(client, "public", where, False)
        _bool(client, "introspect", where, False)
        for key in ("redirect_uris", "post_logout_redirect_uris"):
            for uri in _str_list(client, key, where) or ():
                # The service's own rule, checked before any write.
                why = registrable(uri)
                if why is not None:
                    raise SeedError(f"{where}: redirect URI {uri!r} {why}")
        _str_list(client, "allowed_origins", where)
        _bool(client, "delegate", where, False)
        _optional_bool(client, "remember_consent", where)
        _bool(client, "require_mfa", where, False)
    for i, role in enumerate(_entries(data, "roles")):
        _check_role(role, f"roles[{i}]")


def _check_role(role: Mapping[str, Any], where: str) -> None:
    """A role entry's shape, by the API's own rules (``services.roles``); whether
    the owner exists and holds the policies is checked when the entry is loaded."""
    try:
        role_rules.check_name(_str(role, "name", where, required=True))
        role_rules.check_description(role.get("description"))
        for permission in _str_list(role, "policies", where) or ():
            role_rules.check_permission(permission)
        trust = role.get("trust") or []
        if not isinstance(trust, list) or not all(isinstance(t, dict) for t in trust):
            raise SeedError(f"{where}: 'trust' must be a list of objects")
        for j, entry in enumerate(trust):
            unknown = sorted(set(entry) - TRUST_FIELDS)
            if unknown:
                raise SeedError(f"{where}.trust[{j}]: unknown fields {', '.join(unknown)}")
            # The shape only: whether plain http is allowed is the stage's, at load.
            issuer = role_rules.check_issuer(entry.get("issuer"), allow_http=True)
            role_rules.check_audience(entry.get("audience"))
            role_rules.check_trusted_subject(issuer, role_rules.check_subject(entry.get("subject")))
            role_rules.check_claims(entry.get("claims"))
    except ProblemError as exc:
        raise SeedError(f"{where}: {exc.description}") from exc


def load_seed(identities: Identities, data: Any, roles: Roles | None = None) -> SeedReport:
    """Create the users, clients and roles of ``data`` that do not exist yet
    (roles only when given the ``roles`` service; otherwise the section is noted).

    Raises ``SeedError`` for a malformed document (before any write) or for an
    entry the service rejects (the message names the entry); entries before
    that one stay created, and loading the file again after the fix skips them.
    Storage errors propagate unchanged.
    """
    _check_shape(data)
    report = SeedReport()
    for section in sorted(set(data) - set(SECTIONS)):
        report.notes.append(f"ignored section '{section}' (not loaded by this version)")
    if roles is None and data.get("roles"):
        report.notes.append("ignored section 'roles' (no roles service given)")

    for i, user in enumerate(_entries(data, "users")):
        where = f"users[{i}]"
        _note_unknown(report, where, user, USER_FIELDS)
        username = user["username"]
        try:
            identities.create_user(
                username, user["password"], email=_str(user, "email", where),
                firstname=_str(user, "firstname", where), lastname=_str(user, "lastname", where),
                scopes=_str_list(user, "scopes", where),
                # The user's rights exactly (SPEC §6); absent: the default.
                permissions=_str_list(user, "permissions", where))
        except Conflict:
            report.skipped_users.append(username)
            continue
        except ProblemError as exc:
            raise SeedError(f"{where}: {exc.description}") from exc
        if not _bool(user, "active", where, True):
            identities.set_user_active(username, False)
        report.created_users.append(username)

    for i, client in enumerate(_entries(data, "clients")):
        where = f"clients[{i}]"
        _note_unknown(report, where, client, CLIENT_FIELDS)
        client_id = client["client_id"]
        given_secret = client.get("client_secret")
        try:
            created, secret = identities.create_client(
                client_id, secret=given_secret, public=_bool(client, "public", where, False),
                name=_str(client, "name", where),
                grant_types=_str_list(client, "grant_types", where) or (),
                scopes=_str_list(client, "scopes", where) or (),
                introspect=_bool(client, "introspect", where, False),
                id_token_signed_response_alg=_str(client, "id_token_signed_response_alg", where),
                access_token_signed_response_alg=_str(client, "access_token_signed_response_alg",
                                                      where),
                resources=_str_list(client, "resources", where) or (),
                default_audience=_str(client, "default_audience", where),
                redirect_uris=_str_list(client, "redirect_uris", where) or (),
                post_logout_redirect_uris=_str_list(client, "post_logout_redirect_uris", where) or (),
                delegate=_bool(client, "delegate", where, False),
                remember_consent=_optional_bool(client, "remember_consent", where),
                allowed_origins=_str_list(client, "allowed_origins", where) or (),
                require_mfa=_bool(client, "require_mfa", where, False))
        except Conflict:
            report.skipped_clients.append(client_id)
            continue
        except ProblemError as exc:
            raise SeedError(f"{where}: {exc.description}") from exc
        report.created_clients.append(client_id)
        report.signing_algs.update(created.signing_algs)
        if secret is not None and given_secret is None:
            report.generated_secrets[client_id] = secret

    for i, role in enumerate(_entries(data, "roles") if roles is not None else ()):
        where = f"roles[{i}]"
        _note_unknown(report, where, role, ROLE_FIELDS)
        assert roles is not None
        if _load_role(roles, role, where):
            report.created_roles.append(role["name"])
        else:
            report.skipped_roles.append(role["name"])
    return report


def _load_role(roles: Roles, entry: Mapping[str, Any], where: str) -> bool:
    """Create one role with its policies and trust; False when it exists already.

    Everything the service could refuse (no such owner, a policy the owner does
    not hold, too many entries, an issuer the stage refuses) is checked before the
    role is written, so a refused entry leaves nothing behind.
    """
    name = entry["name"]
    try:
        owner = roles.owner_of(name)
        policies = [roles.policy_for(owner, p) for p in entry.get("policies") or ()]
        trust = [roles.trust_for(t) for t in entry.get("trust") or ()]
        settings = roles.settings
        if len(set(policies)) > settings.max_policies_per_role:
            raise SeedError(f"{where}: at most {settings.max_policies_per_role} policies")
        if len({t.id for t in trust}) > settings.max_trust_per_role:
            raise SeedError(f"{where}: at most {settings.max_trust_per_role} trust policies")
        try:
            roles.create(owner, name, entry.get("description"))
        except RoleNameTaken:
            return False
        for permission in policies:
            roles.add_policy(owner, name, permission)
        for body in entry.get("trust") or ():
            roles.add_trust(owner, name, body)
    except ProblemError as exc:
        raise SeedError(f"{where}: {exc.description}") from exc
    return True


def _note_unknown(report: SeedReport, where: str, entry: Mapping[str, Any],
                  known: frozenset[str]) -> None:
    unknown = sorted(set(entry) - known)
    if unknown:
        report.notes.append(f"{where}: ignored fields {', '.join(unknown)}")

