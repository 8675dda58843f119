"""``tessera``: the root command, login and the session commands (SPEC §10)."""

from __future__ import annotations

import importlib
import os
import sys

import click

from tessera_cli import __version__
from tessera_cli.context import App, warn
from tessera_cli.errors import CliError
from tessera_cli.options import Ordered, json_option, make_app, server_option, with_app
from tessera_cli.output import emit_json, pairs, relative, when

# The demo stage's public CLI client (SPEC §7); another deployment names its own.
CLI_CLIENT_ID = "cf83e1357eefb8bd"


# The command groups a plain login does not need are imported when used (click's
# "lazily loading subcommands"): name -> (module, attribute, the line `--help` shows,
# which a test keeps equal to the group's own).
LAZY = {
    "pat": ("tessera_cli.pats", "pat", "Personal access tokens (create, list, revoke, ...)."),
    "role": ("tessera_cli.roles", "role", "Roles such as alice.ci: policies, keys, trust."),
    "sessions": ("tessera_cli.account", "sessions", "Your sign-in sessions: list them, end one."),
    "consents": ("tessera_cli.account", "consents", "Apps you allowed to act for you."),
    "events": ("tessera_cli.account", "events",
               "Your security log: sign-ins, sessions, tokens and keys, newest first."),
    "job": ("tessera_cli.job", "job", "Inside CI: a role token from the job's OIDC token."),
}


class Root(Ordered):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.commands, *(name for name in LAZY if name not in self.commands)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY and name not in self.commands:
            module, attribute, _ = LAZY[name]
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, with the lazy groups' lines taken from ``LAZY`` (no import)."""
        rows = [(name, self.commands[name].get_short_help_str(limit=formatter.width - 20)
                 if name in self.commands else LAZY[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=Root, context_settings={"help_option_names": ["-h", "--help"],
                                            "max_content_width": 100})
@click.version_option(__version__, prog_name="tessera")
def cli() -> None:
    """Log in to Tessera and manage your tokens, personal access tokens and roles.

    \b
    Start with:  tessera login --server https://tessera.example.com
    Then:        tessera whoami
                 curl -H "$(tessera token show -H)" https://api.example.com/...

    \b
    TESSERA_SERVER / --server   which server (default: the last one you logged in to)
    TESSERA_TOKEN / --token     a PAT, role key or access token used instead of your login
    Exit status: 0 ok, 1 error, 2 usage, 4 not logged in or token rejected.
    """


# --------------------------------------------------------------------------
# login, logout
# --------------------------------------------------------------------------

def can_open_browser() -> bool:
    """A browser only where one can show: never over SSH, and on Linux/BSD only with a
    display or an explicit ``BROWSER``."""
    if any(os.environ.get(v) for v in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")):
        return False
    if os.environ.get("BROWSER"):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@cli.command()
@server_option
@click.option("--no-browser", is_flag=True, help="Print the URL only; never open a browser.")
@click.option("--scopes", metavar="SCOPES",
              help="Scopes to ask for, space- or comma-separated (default: all the CLI client may have).")
@click.option("--client-id", envvar="TESSERA_CLIENT_ID", default=CLI_CLIENT_ID, show_default=True,
              help="The server's public CLI client.")
def login(server: str | None, no_browser: bool, scopes: str | None, client_id: str) -> None:
    """Log in with the device flow: approve a code in a browser.

    Prints a URL and a code such as CGAX-GSVT, opens the browser where there is
    one, and waits for the approval; the tokens go to the OS keyring (or a 0600
    file where there is none).
    """
    from tessera_cli import oauth
    from tessera_cli.polling import LoginEnded, PollFailed

    app = make_app(server, None)
    try:
        target = app.server
        scope = " ".join(s for s in (scopes or "").replace(",", " ").split() if s)
        found = oauth.discover(app.http, target)
        started = oauth.start_device_login(app.http, found, client_id, scope)
        url = started.verification_uri_complete or started.verification_uri
        click.echo(f"Open this URL in a browser and sign in:\n\n    {url}\n", err=True)
        click.echo(f"Check that it shows this code: {started.user_code}\n", err=True)
        if not no_browser and can_open_browser():
            import webbrowser

            if webbrowser.open(url):
                click.echo("(A browser window was opened.)", err=True)
        click.echo(f"Waiting for approval (the code expires {relative(started.expires_in)})...",
                   err=True)
        try:
            tokens = oauth.wait_for_approval(app.http, found, client_id, started,
                                             clock=app.monotonic, sleep=app.sleep)
        except (LoginEnded, PollFailed) as exc:
            raise CliError(str(exc)) from exc
        if not tokens.refresh_token:
            warn("the server gave no refresh token: you will need to log in again when "
                 "the access token expires")
        try:
            app.store.save(oauth.credentials(target, client_id, found, tokens, app.clock()))
        except KeyboardInterrupt:
            pass  # held off until the login was stored whole (store.save): it is complete
    except KeyboardInterrupt:
        click.echo("\nLogin cancelled; nothing was stored.", err=True)
        sys.exit(130)
    finally:
        app.close()
    click.echo("Login successful!")


@cli.command()
@server_option
def logout(server: str | None) -> None:
    """End the session on the server, then delete the stored login.

    Offline, the local login is deleted anyway, with a warning.
    """
    from tessera_cli import oauth
    from tessera_cli.http import Unreachable

    app = make_app(server, None)
    try:
        creds = app.stored()
        try:
            oauth.revoke(app.http, creds)
        except Unreachable as exc:
            warn(f"{exc}; the session stays valid on the server until it expires")
        except CliError as exc:
            warn(f"{exc.message}; deleting the local login anyway")
        app.store.delete(creds.server)
    finally:
        app.close()
    click.echo(f"Logged out of {creds.server}.")


# --------------------------------------------------------------------------
# whoami, token
# --------------------------------------------------------------------------

@cli.command()
@with_app
@json_option
def whoami(app: App, as_json: bool) -> None:
    """Who you are: name, email, id, active."""
    me = app.api("GET", "/v1/me")
    if as_json:
        emit_json(me)
        return
    rows = [("First name", me.get("firstname")), ("Last name", me.get("lastname")),
            ("Email", me.get("email")), ("ID", me.get("id")), ("Active", me.get("active"))]
    if me.get("role"):
        rows += [("Role", me.get("role")), ("Owner ID", me.get("owner_id"))]
    pairs(rows)


@cli.group(cls=Ordered)
def token() -> None:
    """Show, refresh and describe the current access token."""


@token.command("show")
@with_app
@click.option("-H", "--header", is_flag=True, help="Print `Authorization: Bearer …` for curl -H.")
def token_show(app: App, header: bool) -> None:
    """Print the access token, refreshed first if it expired.

    Says on stderr whether it is valid and for how long.
    """
    if app.override is not None:
        value = app.override
        click.echo("Token from TESSERA_TOKEN / --token (not checked).", err=True)
    else:
        creds = app.stored()
        was_expired = creds.expired(app.clock())
        if was_expired:
            creds = app.fresh(force=True)
        value = creds.access_token
        state = "refreshed, valid" if was_expired else "valid"
        click.echo(f"Token {state}: expires {relative(creds.expires_at - app.clock())}.", err=True)
    click.echo(f"Authorization: Bearer {value}" if header else value)


@token.command("refresh")
@server_option
def token_refresh(server: str | None) -> None:
    """Rotate the tokens now (a new access and refresh token)."""
    app = make_app(server, None)
    try:
        creds = app.fresh(force=True)
    finally:
        app.close()
    click.echo(f"Token refreshed: expires {relative(creds.expires_at - app.clock())}.")


@token.command("info")
@with_app
@json_option
def token_info(app: App, as_json: bool) -> None:
    """What the server says about the token: kind, times, scopes, session."""
    info = app.api("GET", "/v1/token-info")
    if as_json:
        emit_json(info)
        return
    now = app.clock()
    rows: list[tuple[str, object]] = [("Type", info.get("type"))]
    rows.append(("Issued at", when(info.get("issued_at"))))
    expires_at = info.get("expires_at")
    rows.append(("Expires at", when(expires_at) if expires_at is not None else "never"))
    if info.get("expires_in") is not None:
        rows.append(("Expires in", relative(info["expires_in"])))
    if info.get("session_issued_at") is not None:
        rows.append(("Originally issued at", when(info.get("session_issued_at"))))
        rows.append(("Session idle deadline", f"{when(info.get('idle_deadline'))} "
                                              f"({relative(info['idle_deadline'] - now)})"))
        rows.append(("Session ends at", when(info.get("session_expires_at"))))
    rows.append(("Scopes", info.get("scopes")))
    rows.append(("Client", info.get("client_id")))
    shown = {"type", "issued_at", "expires_at", "expires_in", "session_issued_at", "idle_deadline",
             "session_expires_at", "scopes", "client_id"}
    rows += [(key.replace("_", " ").capitalize(),
              when(value) if key.endswith("_at") and isinstance(value, int) else value)
             for key, value in sorted(info.items()) if key not in shown]
    pairs(rows)


def main() -> None:
    cli(prog_name="tessera")
