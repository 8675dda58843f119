"""Options shared by the commands, and the ``App`` each command is handed."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from tessera_cli.context import App

F = TypeVar("F", bound=Callable[..., Any])

class Ordered(click.Group):
    """Lists commands in the order a person meets them, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


server_option = click.option(
    "--server", envvar="TESSERA_SERVER", metavar="URL", show_envvar=True,
    help="The Tessera server (default: the server of your last login).")
token_option = click.option(
    "--token", envvar="TESSERA_TOKEN", metavar="TOKEN", show_envvar=True,
    help="Use this PAT, role key or access token instead of the stored login.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def make_app(server: str | None, token: str | None) -> App:
    # Tests hand a fake transport and clock through the click context's ``obj``.
    obj = click.get_current_context().obj or {}
    return App(server, token, **obj)


def with_app(command: F) -> F:
    """Adds ``--server`` and ``--token`` and passes an ``App`` as the first argument."""

    @functools.wraps(command)
    def wrapper(*args: Any, server: str | None, token: str | None, **kwargs: Any) -> Any:
        app = make_app(server, token)
        try:
            return command(app, *args, **kwargs)
        finally:
            app.close()

    return server_option(token_option(wrapper))  # type: ignore[return-value]


def read_password_stdin(flag: bool) -> str | None:
    """``--password-stdin``: the account password, first line of stdin."""
    if not flag:
        return None
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise click.UsageError("--password-stdin: no password on standard input")
    return line


password_stdin_option = click.option(
    "--password-stdin", is_flag=True,
    help="Read your password from stdin, for changes that need it (sign-ins older than 10 minutes).")
