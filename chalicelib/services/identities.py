"""Users and clients: creation, secrets, authentication of clients."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import BadRequest, ConditionFailed, Conflict, NotFound
from chalicelib.models import (
    MAX_CLIENT_ID,
    USERNAME_RULE,
    Client,
    User,
    normalise_username,
    possible_client_id,
    user_id_for,
    valid_username,
)
from chalicelib.security.cors import MAX_ALLOWED_ORIGINS, origin_problem, web_origins
from chalicelib.security.passwords import hash_password
from chalicelib.security.permissions import NAMESPACE_SEPARATOR, InvalidPermission, default_rights, parse
from chalicelib.security.redirect_uris import registrable
from chalicelib.services.audiences import well_formed_resource
from chalicelib.services.signing import supported_algorithms
from chalicelib.storage.identities import ClientsRepo, UsersRepo
from chalicelib.storage.tables import Transact

MAX_CLIENT_RESOURCES = 20

KNOWN_GRANTS = (
    "password", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code",
    "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange", "authorization_code",
)


def hash_client_secret(secret: str) -> str:
    """Salted SHA-256. Secrets the admin command generates carry 128+ random bits."""
    salt = secrets.token_hex(16)
    return f"sha256${salt}${hashlib.sha256((salt + secret).encode('utf-8')).hexdigest()}"


def verify_client_secret(secret: str, encoded: str) -> bool:
    try:
        scheme, salt, expected = encoded.split("$")
    except ValueError:
        return False
    if scheme != "sha256":
        return False
    actual = hashlib.sha256((salt + secret).encode("utf-8")).hexdigest()
    return hmac.compare_digest(actual, expected)


def canonical_permission(permission: str) -> str:
    """The permission as stored (SPEC §6), or BadRequest saying what is wrong."""
    try:
        return parse(permission).format()
    except InvalidPermission as exc:
        raise BadRequest(f"invalid permission: {exc}") from exc


@dataclass(frozen=True)
class NameOutsideRule:
    """A user stored before the username rule whose name breaks it (``valid_username``)."""

    id: str
    username: str
    active: bool
    # Whether the name still owns a namespace: only a name without the separator does.
    holds_namespace: bool
    # The existing user whose namespace holds this name's (``alice`` for ``alice.x``).
    inside_namespace_of: str | None


class Identities:
    def __init__(self, users: UsersRepo, clients: ClientsRepo, clock: Clock,
                 settings: Settings, transact: Transact | None = None) -> None:
        self.users = users
        self.clients = clients
        self.clock = clock
        self.settings = settings
        self.transact = transact

    # -- users -------------------------------------------------------------------

    def create_user(self, username: str, password: str, *, email: str = "",
                    firstname: str = "", lastname: str = "",
                    scopes: Iterable[str] | None = None,
                    permissions: Iterable[str] | None = None) -> User:
        """``permissions``: the user's rights exactly (None: the default of SPEC §6)."""
        if not valid_username(normalise_username(username)):
            raise BadRequest(USERNAME_RULE)
        if len(password) < 8:
            raise BadRequest("password must be at least 8 characters")
        unknown = set(scopes or ()) - set(self.settings.scopes)
        if unknown:
            raise BadRequest(f"unknown scopes: {', '.join(sorted(unknown))}")
        rights = None if permissions is None else {canonical_permission(p) for p in permissions}
        default = set(default_rights(normalise_username(username)))
        user = User(id=user_id_for(username), username=normalise_username(username), email=email,
                    firstname=firstname, lastname=lastname, active=True,
                    password_hash=hash_password(password, log_n=self.settings.scrypt_log_n),
                    scopes=tuple(sorted(scopes)) if scopes is not None else None,
                    created_at=self.clock.now(),
                    granted_permissions=tuple(sorted((rights or set()) - default)),
                    default_permission_revoked=rights is not None and not default <= rights)
        try:
            if email and self.transact is not None:
                # The user and its address in one transaction: one account per address
                # (SPEC §11), found by a password reset in one read.
                self.transact([self.users.op_create(user),
                               self.users.op_claim_email(email, user.id)])
            else:
                self.users.create(user)
        except ConditionFailed as exc:
            if self.users.get(user.id) is None:
                raise Conflict(f"another account uses {email}") from exc
            raise Conflict(f"user {user.username} exists") from exc
        return user

    def claim_missing_emails(self, users: Iterable[tuple[str, str]]) -> tuple[int, list[str]]:
        """Record the address of each (user id, email) of ``users`` whose address is not
        yet recorded (users made before addresses were claimed): (claimed, and the
        addresses another account already holds)."""
        claimed, taken = 0, []
        assert self.transact is not None
        for user_id, email in users:
            if not email:
                continue
            owner = self.users.user_id_by_email(email)
            if owner == user_id:
                continue
            if owner is not None:
                taken.append(email)
                continue
            try:
                self.transact([self.users.op_claim_email(email, user_id)])
                claimed += 1
            except ConditionFailed:
                taken.append(email)
        return claimed, taken

    def find_user(self, username: str) -> User | None:
        return self.users.get(user_id_for(username))

    def names_outside_rule(self, users: Iterable[tuple[str, str, bool]]) -> list[NameOutsideRule]:
        """Every user of ``users`` (id, username, active: ``tessera_admin.user_scan``) whose name
        breaks the username rule (stored before it), by name, with the existing user
        whose namespace holds theirs: one read per name with a dot."""
        found = []
        for user_id, username, active in sorted(users, key=lambda u: u[1]):
            if valid_username(username):
                continue
            # Only the part before the first dot can own a namespace (it has no dot).
            first, dot, _ = username.partition(NAMESPACE_SEPARATOR)
            holder = first if dot and first and self.find_user(first) is not None else None
            found.append(NameOutsideRule(id=user_id, username=username, active=active,
                                         holds_namespace=bool(default_rights(username)),
                                         inside_namespace_of=holder))
        return found

    def set_user_active(self, username: str, active: bool) -> User:
        """Returns the user as now stored, with its sessions map (to end them)."""
        try:
            return self.users.set_active(user_id_for(username), active)
        except ConditionFailed as exc:
            raise NotFound(f"no user {username}") from exc

    def set_password(self, username: str, password: str, *, end_sessions: bool = False) -> User:
        """Change the password attributes only (a concurrent disable stays). With
        ``end_sessions`` no sign-in in flight can open a session any more; the
        caller ends the returned user's sessions.
        """
        if len(password) < 8:
            raise BadRequest("password must be at least 8 characters")
        try:
            encoded = hash_password(password, log_n=self.settings.scrypt_log_n)
            return self.users.set_password_hash(user_id_for(username), encoded, bump=end_sessions)
        except ConditionFailed as exc:
            raise NotFound(f"no user {username}") from exc

    def set_scopes(self, username: str, scopes: Iterable[str] | None) -> User:
        """Set the scopes a user may hold (None: all); the caller bounds the
        returned user's sessions by them."""
        chosen = None if scopes is None else sorted(set(scopes))
        unknown = set(chosen or ()) - set(self.settings.scopes)
        if unknown:
            raise BadRequest(f"unknown scopes: {', '.join(sorted(unknown))}")
        try:
            return self.users.set_scopes(user_id_for(username), chosen)
        except ConditionFailed as exc:
            raise NotFound(f"no user {username}") from exc

    def grant_permission(self, username: str, permission: str) -> User:
        """Add a right (SPEC §6) to a user; returns the user as now stored."""
        return self._change_permission(username, permission, self.users.grant_permission)

    def revoke_permission(self, username: str, permission: str) -> User:
        """Remove a right from a user (the default one too); returns the user."""
        return self._change_permission(username, permission, self.users.revoke_permission)

    def _change_permission(self, username: str, permission: str,
                           change: Callable[..., User]) -> User:
        canonical = canonical_permission(permission)
        is_default = canonical in default_rights(normalise_username(username))
        try:
            return change(user_id_for(username), canonical, is_default=is_default)
        except ConditionFailed as exc:
            raise NotFound(f"no user {username}") from exc

    # -- clients -------------------------------------------------------------------

    def create_client(self, client_id: str, *, secret: str | None = None, public: bool = False,
                      name: str = "", grant_types: Iterable[str] = (),
                      scopes: Iterable[str] = (), introspect: bool = False,
                      id_token_signed_response_alg: str = "",
                      access_token_signed_response_alg: str = "",
                      resources: Iterable[str] = (),
                      default_audience: str = "",
                      redirect_uris: Iterable[str] = (),
                      post_logout_redirect_uris: Iterable[str] = (),
                      delegate: bool = False,
                      remember_consent: bool | None = None,
                      allowed_origins: Iterable[str] = (),
                      require_mfa: bool = False) -> tuple[Client, str | None]:
        """Register a client; returns it and its secret (shown once) if confidential.

        ``*_signed_response_alg``: ES256 or RS256 ("" = the stage's signing_alg);
        ``resources``: the URIs a resource server answers for (RFC 8707);
        ``default_audience``: a registered resource URI (its own or another's);
        ``remember_consent``: whether a remembered consent skips the consent page
        (None: ``Client.remembers_consent``'s default rule, RFC 6749 §10.2).
        ``allowed_origins``: web origins beyond those of the redirect URIs, where
        a browser app may use this client (``scheme://host[:port]``, security/cors.py).
        ``require_mfa``: every sign-in for this client needs a second factor (SPEC §11).
        """
        if not possible_client_id(client_id):
            raise BadRequest(f"client_id must be 1-{MAX_CLIENT_ID} printable characters without spaces")
        grants = tuple(grant_types)
        unknown = set(grants) - set(KNOWN_GRANTS)
        if unknown:
            raise BadRequest(f"unknown grant types: {', '.join(sorted(unknown))}")
        bad_scopes = set(scopes) - set(self.settings.scopes)
        if bad_scopes:
            raise BadRequest(f"unknown scopes: {', '.join(sorted(bad_scopes))}")
        if public and secret:
            raise BadRequest("a public client has no secret")
        if public and "client_credentials" in grants:
            raise BadRequest("client_credentials needs a confidential client")
        algorithms = supported_algorithms(self.settings.signing_alg)
        for label, alg in (("id_token_signed_response_alg", id_token_signed_response_alg),
                           ("access_token_signed_response_alg", access_token_signed_response_alg)):
            if alg and alg not in algorithms:
                raise BadRequest(f"{label} must be one of {', '.join(algorithms)}")
        uris = tuple(dict.fromkeys(resources))
        bad_uris = [uri for uri in uris if not well_formed_resource(uri)]
        if bad_uris:
            raise BadRequest(f"resource {bad_uris[0]!r} is not an absolute URI without a fragment")
        if len(uris) > MAX_CLIENT_RESOURCES:
            raise BadRequest(f"at most {MAX_CLIENT_RESOURCES} resources per client")
        if default_audience and default_audience not in uris \
                and self.clients.resource_server(default_audience) is None:
            raise BadRequest(f"default audience {default_audience} is not a registered resource")
        redirects = tuple(dict.fromkeys(redirect_uris))
        logouts = tuple(dict.fromkeys(post_logout_redirect_uris))
        for uri in (*redirects, *logouts):
            why = registrable(uri)
            if why is not None:
                raise BadRequest(f"redirect URI {uri!r} {why}")
        origins = tuple(dict.fromkeys(allowed_origins))
        for origin in origins:
            why = origin_problem(origin)
            if why is not None:
                raise BadRequest(f"allowed origin {origin!r} {why}")
        if len(web_origins(redirects, origins)) > MAX_ALLOWED_ORIGINS:
            raise BadRequest(f"at most {MAX_ALLOWED_ORIGINS} web origins per client "
                             "(its redirect URIs' and its allowed origins)")
        if "authorization_code" in grants and not redirects:
            raise BadRequest("the authorization_code grant needs at least one redirect URI")
        if delegate and public:
            raise BadRequest("only a confidential client may delegate")
        if not public and secret is None:
            secret = "tsc_" + secrets.token_urlsafe(32)
        client = Client(client_id=client_id,
                        secret_hash=None if public else hash_client_secret(secret or ""),
                        name=name or client_id, grant_types=grants,
                        scopes=tuple(scopes), introspect=introspect,
                        created_at=self.clock.now(),
                        id_token_signed_response_alg=id_token_signed_response_alg,
                        access_token_signed_response_alg=access_token_signed_response_alg,
                        resources=uris, default_audience=default_audience,
                        redirect_uris=redirects,
                        post_logout_redirect_uris=logouts, delegate=delegate,
                        remember_consent=remember_consent, allowed_origins=origins,
                        require_mfa=require_mfa)
        try:
            self.clients.create(client)
        except ConditionFailed as exc:
            if uris and self.clients.get(client_id) is None:
                taken = [uri for uri in uris if self.clients.resource_server(uri) is not None]
                raise Conflict(f"resource {', '.join(taken) or ', '.join(uris)} is already "
                               "registered by another client") from exc
            raise Conflict(f"client {client_id} exists") from exc
        return client, None if public else secret
