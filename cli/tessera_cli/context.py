"""What every command starts from: the server, the stored login or the override
token, and (only when a command talks to the server) an HTTP client.

``TESSERA_TOKEN`` / ``--token`` (a PAT, a role key ``tka_…:tsk_…`` or an access
token) replaces the stored login for every command; it is never refreshed or stored.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from tessera_cli.config import Config, config_dir, resolve_server
from tessera_cli.errors import CliError, NotLoggedIn
from tessera_cli.store import Credentials, CredentialStore

if TYPE_CHECKING:
    import httpx

    from tessera_cli.http import Http

# SPEC §11: the server's answer to a request a PAT (or a role key with an expiry)
# authenticated names its expiry; within this many days the CLI warns, once a command.
TOKEN_EXPIRATION = "Tessera-Token-Expiration"
EXPIRY_WARNING_SECONDS = 7 * 86400
CONFIRM_HINT = "with your password"
OTP_HINT = "field 'otp'"    # the owner has a second factor: the password needs a code too


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


class App:
    def __init__(self, server: str | None = None, token: str | None = None,
                 transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.directory = config_dir()
        self.config = Config(self.directory)
        self.store = CredentialStore(self.directory, self.config, warn)
        self.server_option = server
        self.override = token.strip() if token and token.strip() else None
        self.transport = transport
        self.clock = clock  # wall time: token expiry
        self.monotonic, self.sleep = monotonic, sleep  # the device flow's polling
        self._http: Http | None = None
        self._expiry_warned = False

    @property
    def server(self) -> str:
        return resolve_server(self.server_option, self.config)

    @property
    def http(self) -> Http:
        if self._http is None:
            from tessera_cli.http import Http

            self._http = Http(self.transport)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    # -- credentials -------------------------------------------------------

    def stored(self) -> Credentials:
        creds = self.store.load(self.server)
        if creds is None:
            raise NotLoggedIn(f"not logged in to {self.server}; run `tessera login`")
        return creds

    def fresh(self, *, force: bool = False) -> Credentials:
        """The stored login, refreshed first when its access token has expired."""
        creds = self.stored()
        if force or creds.expired(self.clock()):
            from tessera_cli import oauth

            creds = oauth.refresh(self.http, creds, self.clock())
            self.store.save(creds)
        return creds

    def bearer(self) -> str:
        return self.override or self.fresh().access_token

    # -- the JSON API ------------------------------------------------------

    def api(self, method: str, path: str, *, body: dict[str, Any] | None = None,
            params: dict[str, Any] | None = None, password: str | None = None) -> Any:
        """Call ``/v1/...``; answers the JSON body (``None`` for 204).

        A 401 with the stored login refreshes once and retries (the token may have
        been rejected for a reason the local clock did not see). A change the
        server wants confirmed (SPEC §5: the password, unless the sign-in is
        younger than 10 minutes) is retried with the password: given, or asked
        for on a terminal.
        """
        from tessera_cli.http import error_message, json_of

        response = self._send(method, path, body, params, password)
        if response.status_code == 401 and self.override is None:
            self.fresh(force=True)
            response = self._send(method, path, body, params, password)
        if (response.status_code == 403 and password is None and body is not None
                and CONFIRM_HINT in error_message(response)):
            password = ask_password()
            if password is None:
                raise CliError("this change needs your password: pass it with --password-stdin, "
                               "or run `tessera login` again (a sign-in younger than 10 minutes "
                               "needs none)")
            response = self._send(method, path, body, params, password)
        if (response.status_code == 403 and password is not None and body is not None
                and OTP_HINT in error_message(response)):
            code = ask_code()
            if code is None:
                raise CliError("this change needs a code from your authenticator app (or a "
                               "recovery code) with the password: set TESSERA_OTP, or run "
                               "`tessera login` again (a sign-in younger than 10 minutes that "
                               "used your second factor needs neither)")
            response = self._send(method, path, body, params, password, code)
        if response.status_code == 401:
            source = "TESSERA_TOKEN / --token" if self.override else "your login"
            hint = "" if self.override else "; run `tessera login`"
            raise NotLoggedIn(f"{source} was rejected: {error_message(response)}{hint}")
        if response.status_code >= 400:
            raise CliError(error_message(response))
        return None if response.status_code == 204 else json_of(response)

    def _send(self, method: str, path: str, body: dict[str, Any] | None,
              params: dict[str, Any] | None, password: str | None,
              otp: str | None = None) -> httpx.Response:
        if password is not None:
            body = {**(body or {}), "password": password}
        if otp is not None:
            body = {**(body or {}), "otp": otp}
        response = self.http.send(method, f"{self.server}{path}", bearer=self.bearer(), json=body,
                                  params={k: v for k, v in (params or {}).items() if v is not None})
        self._warn_if_expiring(response.headers.get(TOKEN_EXPIRATION))
        return response

    def _warn_if_expiring(self, value: str | None) -> None:
        """On stderr, once a command: the token in use expires within 7 days."""
        if self._expiry_warned or not value:
            return
        import datetime as dt

        from tessera_cli.output import relative

        try:
            expires = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return
        if expires.tzinfo is None:
            return
        left = expires.timestamp() - self.clock()
        if left <= EXPIRY_WARNING_SECONDS:
            self._expiry_warned = True
            when = "has expired" if left <= 0 else f"expires {relative(left)}"
            warn(f"the token in use {when} ({value.strip()}); create a new one before then "
                 "(`tessera pat regenerate ID`)")


def ask_code() -> str | None:
    """A code of the second factor (SPEC §11): ``TESSERA_OTP``, or asked on a terminal."""
    import os

    given = os.environ.get("TESSERA_OTP", "").strip()
    if given:
        return given
    if not sys.stdin.isatty():
        return None
    return click.prompt("Authentication code (or a recovery code)", err=True).strip() or None


def ask_password() -> str | None:
    """The account password, from a terminal only (scripts pass ``--password-stdin``)."""
    if not sys.stdin.isatty():
        return None
    click.echo("This change needs your password (or a sign-in younger than 10 minutes).", err=True)
    return click.prompt("Password", hide_input=True, err=True)
