"""The composition root: builds stores and services lazily, once per process.

Only ``app.py``, ``routes/`` and the command-line entry points use it; every
service below gets its collaborators in its constructor and never sees the
container. Nothing here runs at import, and a property imports its service's
module only when first read, so a route loads only what it uses (cold start).
Tests install their own container (a fake clock, moto-backed clients) with
``use()`` and drop it with ``reset()``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from chalicelib.clock import Clock, SystemClock
from chalicelib.config import Settings, get_settings
from chalicelib.storage.dynamo import Item, Table, aws_client
from chalicelib.storage.tables import Key, Tables

if TYPE_CHECKING:
    from chalicelib.services.audiences import Audiences
    from chalicelib.services.authn import ClientDirectory, PasswordSignIn
    from chalicelib.services.authorization import Authorization
    from chalicelib.services.confirmation import Confirmation
    from chalicelib.services.delegation import Delegation
    from chalicelib.services.device_flow import DeviceFlow
    from chalicelib.services.email_change import EmailChanges
    from chalicelib.services.federation import Federation, IssuerKeys
    from chalicelib.services.identities import Identities
    from chalicelib.services.invitations import Invitations
    from chalicelib.services.mail_letters import MailLetters
    from chalicelib.services.mailer import Mailer
    from chalicelib.services.notices import Notices
    from chalicelib.services.oauth_tokens import OAuthTokens
    from chalicelib.services.passkeys import Passkeys
    from chalicelib.services.password_reset import PasswordReset
    from chalicelib.services.passwords import PasswordChange
    from chalicelib.services.pats import PatCredentials, Pats
    from chalicelib.services.principals import Principals
    from chalicelib.services.role_credentials import RoleCredentials
    from chalicelib.services.roles import Roles
    from chalicelib.services.second_factors import SecondFactors
    from chalicelib.services.security_log import SecurityLog
    from chalicelib.services.sessions import Sessions
    from chalicelib.services.signing import KeyRing
    from chalicelib.services.tokens import TokenIssuer
    from chalicelib.services.web_origins import WebOrigins
    from chalicelib.services.web_signin import WebSignIn
    from chalicelib.storage.codes import CodesRepo
    from chalicelib.storage.consents import ConsentsRepo
    from chalicelib.storage.devices import DevicesRepo
    from chalicelib.storage.events import EventsRepo
    from chalicelib.storage.identities import ClientsRepo, UsersRepo
    from chalicelib.storage.keystore import SecretsManagerKeyStore
    from chalicelib.storage.links import LinksRepo
    from chalicelib.storage.mfa import MfaRepo
    from chalicelib.storage.pats import PatsRepo
    from chalicelib.storage.public_keys import PublicKeysRepo
    from chalicelib.storage.replay import ReplayRepo
    from chalicelib.storage.roles import RolesRepo
    from chalicelib.storage.sessions import SessionsRepo
    from chalicelib.storage.throttle import ThrottleRepo

# An AWS service name -> its client (boto3 clients are untyped).
ClientFactory = Callable[[str], Any]


class Container:
    def __init__(self, settings: Settings | None = None, clock: Clock | None = None,
                 client_factory: ClientFactory | None = None) -> None:
        self.settings = settings or get_settings()
        self.clock: Clock = clock or SystemClock()
        self._client_factory = client_factory or aws_client
        self.tables = Tables(self.settings.table, self.dynamodb)

    def dynamodb(self) -> Any:
        return self._client_factory("dynamodb")

    def table(self, kind: str) -> Table:
        return self.tables.table(kind)

    def transact(self, operations: list[dict[str, Any]]) -> None:
        self.tables.transact(operations)

    def batch_get(self, requests: dict[str, list[Key]]) -> dict[str, list[Item]]:
        """Items of several tables (by logical name) in one BatchGetItem round trip."""
        return self.tables.batch_get(requests)

    # -- storage ----------------------------------------------------------------

    @cached_property
    def users(self) -> UsersRepo:
        from chalicelib.storage.identities import UsersRepo
        return UsersRepo(self.table("users"))

    @cached_property
    def clients(self) -> ClientsRepo:
        from chalicelib.storage.identities import ClientsRepo
        return ClientsRepo(self.table("clients"), self.transact)

    @cached_property
    def sessions_repo(self) -> SessionsRepo:
        from chalicelib.storage.sessions import SessionsRepo
        return SessionsRepo(self.table("sessions"), self.settings.purge_shards)

    @cached_property
    def throttle(self) -> ThrottleRepo:
        from chalicelib.storage.throttle import ThrottleRepo
        return ThrottleRepo(self.table("throttle"))

    @cached_property
    def devices_repo(self) -> DevicesRepo:
        from chalicelib.storage.devices import DevicesRepo
        return DevicesRepo(self.table("devices"))

    @cached_property
    def codes_repo(self) -> CodesRepo:
        from chalicelib.storage.codes import CodesRepo
        return CodesRepo(self.table("devices"))

    @cached_property
    def consents_repo(self) -> ConsentsRepo:
        from chalicelib.storage.consents import ConsentsRepo
        return ConsentsRepo(self.table("consents"))

    @cached_property
    def pats_repo(self) -> PatsRepo:
        from chalicelib.storage.pats import PatsRepo
        return PatsRepo(self.table("tokens"))

    @cached_property
    def roles_repo(self) -> RolesRepo:
        from chalicelib.storage.roles import RolesRepo
        return RolesRepo(self.table("roles"))

    @cached_property
    def events_repo(self) -> EventsRepo:
        from chalicelib.storage.events import EventsRepo
        return EventsRepo(self.table("events"))

    @cached_property
    def mfa_repo(self) -> MfaRepo:
        from chalicelib.storage.mfa import MfaRepo
        return MfaRepo(self.table("users"))

    @cached_property
    def links_repo(self) -> LinksRepo:
        from chalicelib.storage.links import LinksRepo
        return LinksRepo(self.table("devices"))

    @cached_property
    def replay_repo(self) -> ReplayRepo:
        from chalicelib.storage.replay import ReplayRepo
        return ReplayRepo(self.table("replay"))

    @cached_property
    def public_keys_repo(self) -> PublicKeysRepo:
        from chalicelib.storage.public_keys import PublicKeysRepo
        return PublicKeysRepo(self.table("keys"))

    @cached_property
    def keystore(self) -> SecretsManagerKeyStore:
        from chalicelib.storage.keystore import SecretsManagerKeyStore
        return SecretsManagerKeyStore(self.settings.keys_secret_name,
                                      lambda: self._client_factory("secretsmanager"))

    # -- services ---------------------------------------------------------------

    @cached_property
    def keyring(self) -> KeyRing:
        from chalicelib.services.signing import KeyRing
        s = self.settings
        return KeyRing(self.keystore, self.clock, alg=s.signing_alg,
                       cache_seconds=s.key_cache_seconds, retire_seconds=s.key_retire_seconds,
                       public=self.public_keys_repo)

    @cached_property
    def sessions(self) -> Sessions:
        from chalicelib.services.sessions import Sessions
        return Sessions(self.sessions_repo, self.clock, self.settings, users=self.users,
                        transact=self.transact, security_log=self.security_log,
                        notices=lambda: self.notices)

    @cached_property
    def issuer(self) -> TokenIssuer:
        from chalicelib.services.tokens import TokenIssuer
        return TokenIssuer(self.keyring, self.clock, self.settings)

    @cached_property
    def audiences(self) -> Audiences:
        from chalicelib.services.audiences import Audiences
        return Audiences(self.clients, self.clock, self.settings)

    @cached_property
    def client_directory(self) -> ClientDirectory:
        from chalicelib.services.authn import ClientDirectory
        return ClientDirectory(self.clients, self.clock)

    @cached_property
    def web_origins(self) -> WebOrigins:
        from chalicelib.services.web_origins import WebOrigins
        return WebOrigins(self.clients, self.clock)

    @cached_property
    def password_signin(self) -> PasswordSignIn:
        from chalicelib.services.authn import PasswordSignIn
        return PasswordSignIn(self.throttle, self.clock, self.settings,
                              security_log=self.security_log)

    @cached_property
    def pat_credentials(self) -> PatCredentials:
        from chalicelib.services.pats import PatCredentials
        return PatCredentials(self.pats_repo, self.clock, self.settings, users=self.users,
                              batch_get=self.batch_get, security_log=self.security_log,
                              transact=self.transact)

    @cached_property
    def role_credentials(self) -> RoleCredentials:
        from chalicelib.services.role_credentials import RoleCredentials
        return RoleCredentials(self.roles_repo, self.clock, self.settings, users=self.users,
                               batch_get=self.batch_get, security_log=self.security_log)

    @cached_property
    def principals(self) -> Principals:
        from chalicelib.services.principals import Principals
        # Bearer credentials other than access tokens, tried in this order; role
        # tokens (JWTs of a role) go to the role credentials once verified. The role
        # credentials are built on first need: a session's JWT never loads them.
        return Principals(self.keyring, self.clock, self.settings,
                          sessions=self.sessions_repo, users=self.users,
                          batch_get=self.batch_get,
                          resolvers=(self.pat_credentials.resolve,
                                     lambda token, issuer: self.role_credentials.resolve(token, issuer)),
                          role_tokens=lambda claims: self.role_credentials.from_claims(claims))

    @cached_property
    def oauth_tokens(self) -> OAuthTokens:
        from chalicelib.security.opaque import looks_like_role_key
        from chalicelib.services.oauth_tokens import OAuthTokens, lazy_kind
        return OAuthTokens(self.principals, lambda: self.sessions, self.clock,
                           sessions_repo=self.sessions_repo, users=self.users,
                           kinds=(self.pat_credentials.opaque_kind(),
                                  lazy_kind(looks_like_role_key,
                                            lambda: self.role_credentials.opaque_kind())))

    @cached_property
    def device_flow(self) -> DeviceFlow:
        from chalicelib.services.device_flow import DeviceFlow
        return DeviceFlow(self.devices_repo, self.clock, self.settings, self.throttle,
                          batch_get=self.batch_get)

    @cached_property
    def issuer_keys(self) -> IssuerKeys:
        from chalicelib.services.federation import HttpGet, IssuerKeys
        # Per instance: external issuers' keys, fetched over HTTPS from public
        # addresses (loopback too where the local stage allows it) and cached.
        return IssuerKeys(HttpGet(allow_loopback=self.settings.federation_allow_http),
                          self.clock, self.settings)

    @cached_property
    def federation(self) -> Federation:
        from chalicelib.services.federation import Federation, JobTokenVerifier
        verifier = JobTokenVerifier(self.issuer_keys, self.clock,
                                    self.settings.federation_max_token_seconds)
        return Federation(verifier, self.replay_repo,
                          self.roles_repo, self.users, self.issuer, self.clock)

    @cached_property
    def authorization(self) -> Authorization:
        from chalicelib.services.authorization import Authorization
        return Authorization(self.codes_repo, self.consents_repo, self.clock,
                             clients=self.client_directory.get, sessions=lambda: self.sessions,
                             security_log=self.security_log)

    @cached_property
    def delegation(self) -> Delegation:
        from chalicelib.services.delegation import Delegation
        return Delegation(self.principals, self.issuer, self.clock, self.settings)

    @cached_property
    def web_signin(self) -> WebSignIn:
        from chalicelib.services.web_signin import WebSignIn
        return WebSignIn(lambda: self.sessions, self.password_signin, self.clock, self.settings,
                         sessions_repo=self.sessions_repo, users=self.users,
                         throttle=self.throttle, batch_get=self.batch_get,
                         transact=self.transact)

    @cached_property
    def identities(self) -> Identities:
        from chalicelib.services.identities import Identities
        return Identities(self.users, self.clients, self.clock, self.settings, self.transact)

    @cached_property
    def pats(self) -> Pats:
        from chalicelib.services.pats import Pats
        return Pats(self.pats_repo, self.clock, self.settings, security_log=self.security_log,
                    notices=lambda: self.notices)

    @cached_property
    def roles(self) -> Roles:
        from chalicelib.services.roles import Roles
        return Roles(self.roles_repo, self.clock, self.settings, users=self.users,
                     security_log=self.security_log, notices=lambda: self.notices)

    @cached_property
    def security_log(self) -> SecurityLog:
        from chalicelib.services.security_log import SecurityLog
        return SecurityLog(self.events_repo, self.clock, self.settings)

    @cached_property
    def factors(self) -> SecondFactors:
        from chalicelib.security.sealing import Sealer
        from chalicelib.services.second_factors import SecondFactors
        return SecondFactors(self.mfa_repo, Sealer(self.keyring.seal_keys, "totp"),
                             self.password_signin, self.security_log, self.clock, self.settings,
                             transact=self.transact, batch_get=self.batch_get,
                             notices=lambda: self.notices)

    @cached_property
    def password_change(self) -> PasswordChange:
        from chalicelib.services.passwords import PasswordChange
        return PasswordChange(self.users, self.confirmation, self.sessions, self.security_log,
                              self.settings)

    @cached_property
    def webauthn(self) -> Passkeys:
        from chalicelib.services.passkeys import Passkeys
        from chalicelib.storage.mfa import ChallengesRepo
        return Passkeys(self.mfa_repo, ChallengesRepo(self.table("devices")), self.users,
                        self.security_log, self.clock, transact=self.transact,
                        notices=lambda: self.notices)

    @cached_property
    def confirmation(self) -> Confirmation:
        from chalicelib.services.confirmation import Confirmation
        return Confirmation(self.password_signin, self.clock, self.settings,
                            batch_get=self.batch_get, second_factors=lambda: self.factors,
                            transact=self.transact)

    @cached_property
    def mailer(self) -> Mailer:
        from chalicelib.services.mailer import Mailer
        from chalicelib.web.render import render
        # The SES client is made on the first send, never when the mailer is built.
        return Mailer(lambda: self._client_factory("sesv2"), render, self.settings)


    @cached_property
    def letters(self) -> MailLetters:
        from chalicelib.services.mail_letters import MailLetters
        return MailLetters(self.mailer)

    @cached_property
    def invitations(self) -> Invitations:
        from chalicelib.services.invitations import Invitations
        return Invitations(self.links_repo, self.users, self.letters, self.clock, self.settings,
                           transact=self.transact)

    @cached_property
    def password_reset(self) -> PasswordReset:
        from chalicelib.services.password_reset import PasswordReset
        return PasswordReset(self.links_repo, self.users, self.throttle, self.letters,
                             self.security_log, self.clock, self.settings,
                             transact=self.transact, sessions=lambda: self.sessions,
                             second_factors=lambda: self.factors)

    @cached_property
    def email_changes(self) -> EmailChanges:
        from chalicelib.services.email_change import EmailChanges
        return EmailChanges(self.links_repo, self.users, self.letters, self.confirmation,
                            self.security_log, self.clock, transact=self.transact)

    @cached_property
    def notices(self) -> Notices:
        from chalicelib.services.notices import Notices
        return Notices(self.users, self.letters, lambda: self.settings.issuer)


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
