"""The operator's admin command: users, clients, roles, tables, signing keys, seed files.

    tessera-admin user create alice --email alice@example.com
    tessera-admin user grant-permission alice 'data:get@urn:tessera:data:bob.shared'
    tessera-admin client create my-api --grant-types client_credentials --introspect
    tessera-admin role create alice.ci --description CI
    tessera-admin role policy add alice.ci 'data:get@urn:tessera:data:alice.*'
    tessera-admin seed seeds/demo.json

(``python -m tessera_admin`` is the same command.)

Role commands act as the role's owner (the username part of its name) under the
API's rules: a policy must be covered by the owner's permissions, so grant the
owner the permission first (``user grant-permission``).

It works on the tables of the stage named by ``TESSERA_STAGE`` (see
``chalicelib.config``), in real AWS with the usual credentials, or against a
local moto server when ``AWS_ENDPOINT_URL`` points at one (the local runner
prints the exact line). Every failure is one line on stderr and a non-zero exit
status, never a traceback. Secrets are printed once, at creation, and stored
only as hashes.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from chalicelib.container import container
from chalicelib.errors import BadRequest, StorageUnavailable, TesseraError
from chalicelib.models import USERNAME_RULE, Client, User, valid_username
from chalicelib.security.permissions import covers

if TYPE_CHECKING:
    from chalicelib.storage.roles import Role

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 130


class CommandError(Exception):
    """A failure to report to the operator as one line."""


class Console:
    """Where the command reads passwords from; injected by tests."""

    def __init__(self, stdin: TextIO | None = None,
                 prompt: Callable[[str], str] | None = None) -> None:
        self.stdin = stdin if stdin is not None else sys.stdin
        self.prompt = prompt or getpass.getpass

    def password(self, args: argparse.Namespace) -> str:
        if args.password is not None:
            return str(args.password)
        if args.password_stdin:
            return self.stdin.readline().rstrip("\r\n")
        if self.stdin.isatty():
            first = self.prompt("Password: ")
            if self.prompt("Repeat password: ") != first:
                raise CommandError("passwords do not match")
            return first
        raise CommandError("no password given: use --password, --password-stdin or run in a terminal")


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _emit(data: dict[str, Any]) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def _user_view(user: User) -> dict[str, Any]:
    # Never the password hash.
    return {"id": user.id, "username": user.username, "email": user.email,
            "firstname": user.firstname, "lastname": user.lastname, "active": user.active,
            "scopes": list(user.scopes) if user.scopes is not None else None,
            "permissions": list(user.permissions), "created_at": user.created_at,
            "username_rule": "met" if valid_username(user.username) else "broken"}


def _client_view(client: Client) -> dict[str, Any]:
    # Never the secret hash.
    return {"client_id": client.client_id, "name": client.name, "public": client.public,
            "grant_types": list(client.grant_types), "scopes": list(client.scopes),
            "introspect": client.introspect, "created_at": client.created_at,
            "id_token_signed_response_alg": client.id_token_signed_response_alg or None,
            "access_token_signed_response_alg": client.access_token_signed_response_alg or None,
            "resources": list(client.resources),
            "default_audience": client.default_audience or None,
            "redirect_uris": list(client.redirect_uris),
            "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
            "allowed_origins": list(client.allowed_origins),
            "web_origins": list(client.web_origins),
            "delegate": client.delegate, "remember_consent": client.remember_consent,
            "require_mfa": client.require_mfa}


# --------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------

def user_create(args: argparse.Namespace, console: Console) -> None:
    password = console.password(args)
    user = container().identities.create_user(
        args.username, password, email=args.email, firstname=args.firstname,
        lastname=args.lastname, scopes=_csv(args.scopes) if args.scopes is not None else None)
    print(f"created user {user.username} (id {user.id})")


def user_set_active(args: argparse.Namespace, console: Console) -> None:
    active = args.action == "enable"
    c = container()
    user = c.identities.set_user_active(args.username, active)
    if active:
        print(f"enabled user {user.username}")
        return
    # Refresh never reads the user (SPEC §9: one write), so a disabled user's
    # sessions are ended here: every one in the map the disabling write returned
    # (a session created concurrently is in it, or was never created); access
    # tokens are refused from the next request. Running it again is harmless.
    ended = c.sessions.end_all_for_user(user.id, "user_disabled", known=user.sessions or {})
    print(f"disabled user {user.username}; ended {ended} session(s)")


def user_set_password(args: argparse.Namespace, console: Console) -> None:
    c = container()
    user = c.identities.set_password(args.username, console.password(args),
                                     end_sessions=args.end_sessions)
    if not args.end_sessions:
        print(f"changed the password of user {user.username}")
        return
    ended = c.sessions.end_all_for_user(user.id, "password_reset", known=user.sessions or {})
    print(f"changed the password of user {user.username}; ended {ended} session(s)")


def user_set_scopes(args: argparse.Namespace, console: Console) -> None:
    c = container()
    user = c.identities.set_scopes(args.username, None if args.all else _csv(args.scopes or ""))
    # Refresh reads no user: the live sessions themselves are narrowed (or ended).
    narrowed, ended = c.sessions.narrow_for_user(user, "user_scopes_narrowed")
    held = "all scopes" if user.scopes is None else ", ".join(user.scopes) or "no scopes"
    print(f"user {user.username} now holds {held}; narrowed {narrowed} session(s), "
          f"ended {ended}")


def user_change_permission(args: argparse.Namespace, console: Console) -> None:
    identities = container().identities
    if args.action == "grant-permission":
        user = identities.grant_permission(args.username, args.permission)
    else:
        user = identities.revoke_permission(args.username, args.permission)
    held = ", ".join(user.permissions) or "no permissions"
    print(f"user {user.username} now holds {held}")
    if args.action == "revoke-permission":
        still = [right for right in user.permissions if covers(right, args.permission)]
        if still:
            print(f"note: {args.permission} is still covered by {', '.join(still)}",
                  file=sys.stderr)


def user_show(args: argparse.Namespace, console: Console) -> None:
    user = container().identities.find_user(args.username)
    if user is None:
        raise CommandError(f"no user {args.username}")
    _emit(_user_view(user))


def user_check_names(args: argparse.Namespace, console: Console) -> None:
    """Report the users whose names break the username rule (stored before it);
    with --disable, disable those with a dot and end their sessions."""
    c = container()
    report = []
    from tessera_admin.user_scan import usernames

    for found in c.identities.names_outside_rule(usernames(c.users.table)):
        entry: dict[str, Any] = {
            "id": found.id, "username": found.username, "active": found.active,
            "holds_namespace": found.holds_namespace,
            "inside_namespace_of": found.inside_namespace_of}
        if args.disable and found.active and not found.holds_namespace:
            user = c.identities.set_user_active(found.username, False)
            entry["active"] = False
            entry["ended_sessions"] = c.sessions.end_all_for_user(
                user.id, "user_disabled", known=user.sessions or {})
        report.append(entry)
    _emit({"rule": USERNAME_RULE, "users": report})


def user_invite(args: argparse.Namespace, console: Console) -> None:
    """Mail an invitation (SPEC §11): a single-use link to create an account."""
    c = container()
    issuer = (args.issuer or c.settings.issuer).rstrip("/")
    if not issuer:
        raise BadRequest("give --issuer (the service's URL, for the link), or set TESSERA_ISSUER")
    scopes = _csv(args.scopes) if args.scopes else None
    made = c.invitations.invite(args.email, scopes=scopes, issuer=issuer)
    _emit(made.view())


def user_claim_emails(args: argparse.Namespace, console: Console) -> None:
    """Record the address of every user made before addresses were recorded, so a
    password reset finds them (one account per address)."""
    c = container()
    from tessera_admin.user_scan import addresses

    claimed, taken = c.identities.claim_missing_emails(addresses(c.users.table))
    _emit({"claimed": claimed, "held_by_another_account": taken})


# A client that signs people in and was given no scopes gets these, not none
# (a client with no scope could never log anyone in).
DEFAULT_SIGNIN_SCOPES = ("openid", "profile", "email")
SIGNIN_GRANTS = frozenset({"password", "urn:ietf:params:oauth:grant-type:device_code",
                           "authorization_code"})


def client_create(args: argparse.Namespace, console: Console) -> None:
    grants, scopes = _csv(args.grant_types), _csv(args.scopes)
    if not scopes and SIGNIN_GRANTS & set(grants):
        scopes = list(DEFAULT_SIGNIN_SCOPES)
    c = container()
    client, secret = c.identities.create_client(
        args.client_id, secret=args.secret, public=args.public, name=args.name or "",
        grant_types=grants, scopes=scopes, introspect=args.introspect,
        id_token_signed_response_alg=args.id_token_signed_response_alg,
        access_token_signed_response_alg=args.access_token_signed_response_alg,
        resources=_csv(args.resources), default_audience=args.default_audience,
        redirect_uris=args.redirect_uri or (),
        post_logout_redirect_uris=args.post_logout_redirect_uri or (), delegate=args.delegate,
        remember_consent=args.remember_consent, allowed_origins=args.allowed_origin or (),
        require_mfa=args.require_mfa)
    _ensure_keys(c.keyring, client.signing_algs)
    print(f"created {'public' if client.public else 'confidential'} client {client.client_id}"
          + (f" with scopes {', '.join(client.scopes)}" if client.scopes else ""))
    if secret is not None and args.secret is None:
        print(f"client_secret: {secret}")
        print("Store this secret now: it is shown once and kept only as a hash.", file=sys.stderr)


def _ensure_keys(keyring: Any, algorithms: Iterable[str]) -> None:
    """Create the key family of each algorithm a client registered, now rather than
    on its first sign-in, so that every instance publishes it before it is used."""
    for alg in sorted({a for a in algorithms if a}):
        keyring.ensure(alg)


def client_show(args: argparse.Namespace, console: Console) -> None:
    client = container().identities.clients.get(args.client_id)
    if client is None:
        raise CommandError(f"no client {args.client_id}")
    _emit(_client_view(client))


def _role_view(role: Role) -> dict[str, Any]:
    # Never a key's secret or its hash.
    from chalicelib.services import roles

    return {**roles.role_view(role), "keys": roles.keys_view(role),
            "trust": roles.trust_view(role)}


def role_create(args: argparse.Namespace, console: Console) -> None:
    roles = container().roles
    role = roles.create(roles.owner_of(args.name), args.name, args.description)
    print(f"created role {role.name}")


def role_list(args: argparse.Namespace, console: Console) -> None:
    c = container()
    user = c.identities.find_user(args.username)
    if user is None:
        raise CommandError(f"no user {args.username}")
    _emit({"roles": [_role_view(r) for r in c.roles.list(user)]})


def role_delete(args: argparse.Namespace, console: Console) -> None:
    roles = container().roles
    roles.delete(roles.owner_of(args.name), args.name)
    print(f"deleted role {args.name}; its keys stopped working")


def role_policy_add(args: argparse.Namespace, console: Console) -> None:
    roles = container().roles
    policy_id, permission = roles.add_policy(roles.owner_of(args.name), args.name,
                                             args.permission)
    print(f"role {args.name}: policy {policy_id} {permission}")


def _claims(pairs: Sequence[str]) -> dict[str, str]:
    claims: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"--claim {pair}: give it as name=value")
        if name in claims:
            raise CommandError(f"--claim {name} is given twice")
        claims[name] = value
    return claims


def role_trust_add(args: argparse.Namespace, console: Console) -> None:
    roles = container().roles
    body: dict[str, Any] = {"issuer": args.issuer, "audience": args.audience,
                            "subject": args.subject, "claims": _claims(args.claim or [])}
    trust = roles.add_trust(roles.owner_of(args.name), args.name, body)
    print(f"role {args.name}: trust policy {trust.id} for {trust.issuer} subject {trust.subject}")


def tables_create(args: argparse.Namespace, console: Console) -> None:
    from chalicelib.storage.schema import create_tables

    c = container()
    for name in create_tables(c.dynamodb(), c.settings.table_prefix):
        print(f"table {name} ready")


def tokens_backfill_notices(args: argparse.Namespace, console: Console) -> None:
    from tessera_admin.token_backfill import backfill_notices

    c = container()
    added = backfill_notices(c.pats_repo, c.clock.now())
    print(f"{added} personal access tokens added to the expiry-notice index")


def keys_rotate(args: argparse.Namespace, console: Console) -> None:
    keyring = container().keyring
    keyset = keyring.rotate()
    statuses = ", ".join(f"{k['kid']} {k['status']}" for k in keyset["keys"])
    print(f"rotated signing keys; now signing with {keyring.current_kid()} ({statuses})")


# The demo account's seed (make run): well-known passwords and client secrets.
DEMO_SEED = Path(__file__).resolve().parents[1] / "seeds" / "demo.json"
LOCAL_STAGE = "local"


def _credentials(data: Any) -> set[tuple[str, str]]:
    if not isinstance(data, dict):
        return set()
    users = data.get("users")
    clients = data.get("clients")
    users = users if isinstance(users, list) else []
    clients = clients if isinstance(clients, list) else []
    return ({("user", f"{u.get('username')}:{u.get('password')}") for u in users
             if isinstance(u, dict) and u.get("password")}
            | {("client", f"{c.get('client_id')}:{c.get('client_secret')}") for c in clients
               if isinstance(c, dict) and c.get("client_secret")})


def carries_demo_credentials(data: Any) -> bool:
    """Whether ``data`` holds any password or client secret of the demo seed, under
    whatever file name it was loaded."""
    try:
        demo = json.loads(DEMO_SEED.read_text())
    except (OSError, ValueError):
        return False
    return bool(_credentials(demo) & _credentials(data))


def seed(args: argparse.Namespace, console: Console) -> None:
    from tessera_admin.seed import SeedError, load_seed

    try:
        if args.file == "-":
            data = json.load(console.stdin)
        else:
            with open(args.file, encoding="utf-8") as fh:
                data = json.load(fh)
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise CommandError(f"{args.file} is not valid JSON: {exc}") from exc
    c = container()
    if c.settings.stage != LOCAL_STAGE and carries_demo_credentials(data):
        # Its passwords and secrets are published: on a deployed stage they would be
        # the first administrator's (deploy/README.md, "The first administrator").
        raise CommandError(f"{args.file} carries the demo account's published passwords or client "
                           f"secrets: refused on stage {c.settings.stage} (only {LOCAL_STAGE}); create "
                           "users and clients with `tessera-admin user create` and `client create`")
    try:
        report = load_seed(c.identities, data, c.roles)
    except SeedError as exc:
        raise CommandError(f"{args.file}: {exc}") from exc
    _ensure_keys(c.keyring, report.signing_algs)
    for line in report.lines() or ["nothing to load"]:
        print(line)


# --------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------

def _password_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password", help="the password (visible to other local users in the "
                                          "process list; prefer the prompt or --password-stdin)")
    group.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of stdin")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tessera-admin",
        description="Manage Tessera users, clients, roles, tables and signing keys.",
        epilog="Targets the tables of TESSERA_STAGE (default dev); set AWS_ENDPOINT_URL to use "
               "a local moto server.")
    areas = parser.add_subparsers(dest="area", required=True,
                                  metavar="{user,client,role,tables,keys,seed}")

    user = areas.add_parser("user", help="create, enable, disable, show users; set passwords, "
                                         "scopes and permissions")
    user_cmds = user.add_subparsers(dest="action", required=True)
    p = user_cmds.add_parser("create", help="create a user (prompts for the password)")
    p.add_argument("username")
    _password_options(p)
    p.add_argument("--email", default="")
    p.add_argument("--firstname", default="")
    p.add_argument("--lastname", default="")
    p.add_argument("--scopes", help="comma-separated scopes the user may hold (default: all)")
    p.set_defaults(run=user_create)
    for action in ("disable", "enable"):
        p = user_cmds.add_parser(action, help=f"{action} a user")
        p.add_argument("username")
        p.set_defaults(run=user_set_active)
    p = user_cmds.add_parser("set-password", help="set a user's password (prompts for it)")
    p.add_argument("username")
    _password_options(p)
    p.add_argument("--end-sessions", action="store_true",
                   help="also end every session of the user (sign-ins in flight fail too)")
    p.set_defaults(run=user_set_password)
    p = user_cmds.add_parser("set-scopes", help="set the scopes a user may hold; narrows or "
                                                "ends their live sessions to match")
    p.add_argument("username")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--scopes", help="comma-separated scopes")
    group.add_argument("--all", action="store_true", help="every scope of the stage")
    p.set_defaults(run=user_set_scopes)
    for action, what in (("grant-permission", "add a right (action@resource, SPEC §6)"),
                         ("revoke-permission", "remove a right (the default one too)")):
        p = user_cmds.add_parser(action, help=what)
        p.add_argument("username")
        p.add_argument("permission", help="e.g. data:get@urn:tessera:data:alice.workspace")
        p.set_defaults(run=user_change_permission)
    p = user_cmds.add_parser("show", help="print a user as JSON")
    p.add_argument("username")
    p.set_defaults(run=user_show)
    p = user_cmds.add_parser("invite", help="mail an invitation: a link to create an account, "
                                            "valid 7 days (prints it as JSON, not the link)")
    p.add_argument("email")
    p.add_argument("--scopes", help="comma-separated scopes the account may hold (default: all)")
    p.add_argument("--issuer", default="", help="the service's URL for the link (default: "
                                                "TESSERA_ISSUER)")
    p.set_defaults(run=user_invite)
    p = user_cmds.add_parser("claim-emails", help="record the address of every user made before "
                                                  "addresses were recorded (a Scan), as JSON")
    p.set_defaults(run=user_claim_emails)
    p = user_cmds.add_parser("check-names", help="list the users whose names break the username "
                                                 "rule (stored before it), as JSON")
    p.add_argument("--disable", action="store_true",
                   help="also disable those whose name has a dot and end their sessions")
    p.set_defaults(run=user_check_names)

    client = areas.add_parser("client", help="register and show OAuth clients")
    client_cmds = client.add_subparsers(dest="action", required=True)
    p = client_cmds.add_parser("create", help="register a client; prints a generated secret once")
    p.add_argument("client_id")
    p.add_argument("--public", action="store_true", help="a public client (no secret)")
    p.add_argument("--secret", help="use this secret instead of generating one")
    p.add_argument("--grant-types", default="", help="comma-separated grant types")
    p.add_argument("--scopes", default="",
                   help="comma-separated scopes (default for a client that signs people in: "
                        "openid,profile,email)")
    p.add_argument("--introspect", action="store_true", help="allowed to call /oauth/introspect")
    p.add_argument("--name", help="display name shown on the device approval and consent pages")
    p.add_argument("--redirect-uri", action="append", metavar="URI",
                   help="a redirect URI of the authorization code flow (repeatable)")
    p.add_argument("--post-logout-redirect-uri", action="append", metavar="URI",
                   help="where RP-initiated logout may return the browser (repeatable)")
    p.add_argument("--allowed-origin", action="append", metavar="ORIGIN",
                   help="a web origin (scheme://host[:port]) whose browser apps may use this "
                        "client, beyond its redirect URIs' origins (repeatable)")
    p.add_argument("--delegate", action="store_true",
                   help="may exchange a person's token to act for them (SPEC §6)")
    p.add_argument("--require-mfa", action="store_true",
                   help="every sign-in for this client needs a second factor (SPEC §11); the "
                        "password grant refuses")
    p.add_argument("--remember-consent", action=argparse.BooleanOptionalAction, default=None,
                   help="whether a remembered consent skips the consent page (default: yes for "
                        "a confidential client or an https redirect URI, else ask every time; "
                        "RFC 6749 §10.2)")
    for kind in ("id-token", "access-token"):
        p.add_argument(f"--{kind}-signed-response-alg", default="", choices=("", "ES256", "RS256"),
                       metavar="{ES256,RS256}",
                       help=f"sign this client's {kind.replace('-', ' ')}s with this algorithm "
                            "(default: the stage's TESSERA_SIGNING_ALG)")
    p.add_argument("--resources", default="",
                   help="comma-separated URIs this client answers for as a resource server "
                        "(RFC 8707 resource indicators)")
    p.add_argument("--default-audience", default="",
                   help="aud of this client's access tokens when a request names no resource "
                        "(a registered resource URI; default: Tessera's own API)")
    p.set_defaults(run=client_create)
    p = client_cmds.add_parser("show", help="print a client as JSON (never its secret)")
    p.add_argument("client_id")
    p.set_defaults(run=client_show)

    role = areas.add_parser("role", help="create, list and delete roles; add policies and "
                                         "trust policies (as the role's owner)")
    role_cmds = role.add_subparsers(dest="action", required=True)
    p = role_cmds.add_parser("create", help="create a role NAME = <username>.<name>")
    p.add_argument("name", help="e.g. alice.ci")
    p.add_argument("--description", help="what the role is for")
    p.set_defaults(run=role_create)
    p = role_cmds.add_parser("list", help="print a user's roles as JSON (never key secrets)")
    p.add_argument("username")
    p.set_defaults(run=role_list)
    p = role_cmds.add_parser("delete", help="delete a role with its keys")
    p.add_argument("name")
    p.set_defaults(run=role_delete)
    policy = role_cmds.add_parser("policy", help="a role's policies")
    policy_cmds = policy.add_subparsers(dest="policy_action", required=True)
    p = policy_cmds.add_parser("add", help="add a policy the owner holds (SPEC §6)")
    p.add_argument("name")
    p.add_argument("permission", help="e.g. 'data:get@urn:tessera:data:alice.*'")
    p.set_defaults(run=role_policy_add)
    trust = role_cmds.add_parser("trust", help="a role's trust policies (CI federation)")
    trust_cmds = trust.add_subparsers(dest="trust_action", required=True)
    p = trust_cmds.add_parser("add", help="trust a CI's job tokens")
    p.add_argument("name")
    p.add_argument("--issuer", required=True,
                   help="e.g. https://token.actions.githubusercontent.com")
    p.add_argument("--audience", required=True, help="the aud the job token carries")
    p.add_argument("--subject", required=True,
                   help="the job's sub, or a prefix ending with * (repo:acme/app:*)")
    p.add_argument("--claim", action="append", metavar="NAME=VALUE",
                   help="a further claim that must equal VALUE (repeatable)")
    p.set_defaults(run=role_trust_add)

    tables = areas.add_parser("tables", help="create the stage's tables")
    tables_cmds = tables.add_subparsers(dest="action", required=True)
    tables_cmds.add_parser("create", help="create missing tables and enable TTL").set_defaults(
        run=tables_create)

    tokens = areas.add_parser("tokens", help="personal access tokens")
    tokens_cmds = tokens.add_subparsers(dest="action", required=True)
    tokens_cmds.add_parser("backfill-notices", help="put PATs written before the expiry-notice "
                           "index into it (once, after the upgrade; safe to repeat)").set_defaults(
        run=tokens_backfill_notices)

    keys = areas.add_parser("keys", help="signing keys")
    keys_cmds = keys.add_subparsers(dest="action", required=True)
    keys_cmds.add_parser("rotate", help="promote the next key, retire the current one").set_defaults(
        run=keys_rotate)

    p = areas.add_parser("seed", help="load users, clients and roles from a JSON seed file "
                                      "(SPEC §7)")
    p.add_argument("file", help="the seed file, or - for stdin")
    p.set_defaults(run=seed)
    return parser


def _describe(exc: BaseException) -> str | None:
    """One line for the errors an operator can act on; None for real bugs."""
    if isinstance(exc, CommandError):
        return str(exc)
    if isinstance(exc, StorageUnavailable):
        return f"storage unavailable ({exc.detail or 'no detail'}); check AWS_ENDPOINT_URL and credentials"
    if isinstance(exc, TesseraError):
        return exc.description
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Error")
        line = f"AWS {code}: {error.get('Message', '')}".rstrip(": ")
        if code == "ResourceNotFoundException":
            line += " (create the tables first: tessera-admin tables create)"
        return line
    if isinstance(exc, BotoCoreError):
        return f"AWS: {exc}"
    if isinstance(exc, ValueError):
        # Settings that do not parse (chalicelib.config raises ValueError).
        return str(exc)
    return None


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    args = build_parser().parse_args(argv)
    from chalicelib import audit

    audit.send_to("stderr")   # stdout is the command's answer; audit lines still go out
    try:
        args.run(args, console or Console())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        message = _describe(exc)
        if message is None:
            message = f"unexpected {type(exc).__name__}: {exc}"
        print(f"error: {message}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        audit.send_to("stdout")
    return EXIT_OK
