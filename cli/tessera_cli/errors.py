"""Errors of the command line: one line on stderr and an exit status (SPEC §10).

0 ok, 1 error, 2 usage (click's own usage errors too), 4 not logged in or the
token was rejected.
"""

from __future__ import annotations

import click

ERROR = 1
USAGE = 2
NOT_LOGGED_IN = 4


class CliError(click.ClickException):
    """A failure the user can act on; click prints ``Error: <message>``."""

    exit_code = ERROR


class UsageProblem(CliError):
    exit_code = USAGE


class NotLoggedIn(CliError):
    """No stored login, an expired one, or a token the server rejected."""

    exit_code = NOT_LOGGED_IN
