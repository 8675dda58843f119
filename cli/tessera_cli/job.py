"""``tessera job token``: inside CI, exchange the job's OIDC ID token for a role token
(SPEC §6, RFC 8693). No secret lives in the CI configuration.

Where the job token comes from, first found wins:

* ``--oidc-token-file PATH``;
* ``TESSERA_OIDC_TOKEN`` (GitLab: an ``id_tokens:`` entry of that name, with
  ``aud: tessera``);
* GitHub Actions (``permissions: id-token: write``): a GET of
  ``$ACTIONS_ID_TOKEN_REQUEST_URL&audience=tessera`` with
  ``Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN``, answering ``{"value": JWT}``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from tessera_cli.context import App
from tessera_cli.errors import CliError, UsageProblem
from tessera_cli.options import Ordered, make_app, server_option

GITHUB_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"


@click.group(cls=Ordered)
def job() -> None:
    """Inside CI: a role token from the job's OIDC token."""


def job_oidc_token(app: App, token_file: Path | None, audience: str) -> str:
    if token_file is not None:
        try:
            text = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageProblem(f"--oidc-token-file: {exc}") from exc
        if not text:
            raise UsageProblem(f"--oidc-token-file: {token_file} is empty")
        return text
    if os.environ.get("TESSERA_OIDC_TOKEN", "").strip():
        return os.environ["TESSERA_OIDC_TOKEN"].strip()
    url, bearer = os.environ.get(GITHUB_URL), os.environ.get(GITHUB_TOKEN)
    if url and bearer:
        from httpx import URL

        from tessera_cli.http import error_message, json_of

        request_url = URL(url).copy_merge_params({"audience": audience})
        response = app.http.send("GET", str(request_url), bearer=bearer)
        value = (json_of(response) or {}).get("value") if response.status_code == 200 else None
        if not isinstance(value, str) or not value:
            raise CliError(f"GitHub Actions gave no ID token ({error_message(response)}); "
                           "does the job have `permissions: id-token: write`?")
        return value
    raise UsageProblem("no job OIDC token: run inside GitHub Actions with `id-token: write`, set "
                       "TESSERA_OIDC_TOKEN (GitLab id_tokens), or pass --oidc-token-file")


@job.command("token")
@server_option
@click.option("--role", required=True, metavar="NAME", help="The role to act as, e.g. alice.ci.")
@click.option("-H", "--header", is_flag=True, help="Print `Authorization: Bearer …` for curl -H.")
@click.option("--oidc-token-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Read the job's OIDC token from this file.")
@click.option("--audience", default="tessera", show_default=True,
              help="The audience asked of GitHub Actions' token endpoint.")
def job_token(server: str | None, role: str, header: bool, oidc_token_file: Path | None,
              audience: str) -> None:
    """Print a role token (1 h) for this CI job, from the job's OIDC token.

    \b
    The job's token comes from, first found:
      --oidc-token-file PATH
      TESSERA_OIDC_TOKEN   (GitLab: id_tokens: TESSERA_OIDC_TOKEN: aud: tessera)
      GitHub Actions       (the job needs `permissions: id-token: write`)
    """
    from tessera_cli import oauth

    app = make_app(server, None)
    try:
        target = app.server
        subject = job_oidc_token(app, oidc_token_file, audience)
        answer = oauth.exchange_job_token(app.http, oauth.discover(app.http, target), subject, role)
    finally:
        app.close()
    click.echo(f"Authorization: Bearer {answer.access_token}" if header else answer.access_token)
