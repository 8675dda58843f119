"""``tessera pat``: personal access tokens over ``/v1/tokens`` (SPEC §5).

A PAT's secret is in the answer of create, regenerate and copy only: it is
printed once, alone on stdout, so ``TOKEN=$(tessera pat create …)`` works.
"""

from __future__ import annotations

from typing import Any

import click

from tessera_cli.context import App
from tessera_cli.errors import CliError
from tessera_cli.options import Ordered, json_option, password_stdin_option, read_password_stdin, with_app
from tessera_cli.output import emit_json, pairs, table, when

COLUMNS = [("id", "ID"), ("description", "DESCRIPTION"), ("hint", "TOKEN"), ("rights", "SCOPES"),
           ("expires_at", "EXPIRES"), ("last_used", "LAST USED"), ("state", "STATE")]


@click.group(cls=Ordered)
def pat() -> None:
    """Personal access tokens (create, list, revoke, ...)."""


def _rights(view: dict[str, Any]) -> str:
    return f"api set {view['api_set']}" if view.get("api_set") else " ".join(view.get("scopes") or [])


def _row(view: dict[str, Any]) -> dict[str, Any]:
    return {**view, "rights": _rights(view), "expires_at": view.get("expires_at") or "never",
            "last_used": when(view.get("last_used_at")) or "never"}


def _print_secret(issued: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(issued)
        return
    expires = issued.get("expires_at") or "never"
    click.echo(f"{verb} personal access token {issued['id']} ({issued['description']}), "
               f"expires {expires}. Copy it now: it is not shown again.", err=True)
    click.echo(issued["token"])


def _expiry(expires: str | None, no_expiry: bool) -> dict[str, Any]:
    if expires and no_expiry:
        raise click.UsageError("give --expires or --no-expiry, not both")
    if no_expiry:
        return {"expires_at": None}
    return {"expires_at": expires} if expires else {}


def _rights_body(scopes: tuple[str, ...], api_set: str | None) -> dict[str, Any]:
    if scopes and api_set:
        raise click.UsageError("give --scope or --api-set, not both")
    names = [s for item in scopes for s in item.replace(",", " ").split()]
    if names:
        return {"scopes": names}
    return {"api_set": api_set} if api_set else {}


expires_option = click.option("--expires", metavar="YYYY-MM-DD",
                              help="Last day (the token stops at 00:00 UTC that day).")
no_expiry_option = click.option("--no-expiry", is_flag=True,
                                help="Never expires (where the server allows it).")
scope_option = click.option("--scope", "scopes", multiple=True, metavar="SCOPE",
                            help="A scope (repeat, or space/comma separated).")
api_set_option = click.option("--api-set", metavar="NAME",
                              help="A named API set of the server (e.g. ide-plugins).")


@pat.command("create")
@with_app
@click.option("--description", "-d", required=True, help="What the token is for.")
@api_set_option
@scope_option
@expires_option
@no_expiry_option
@password_stdin_option
@json_option
def create(app: App, description: str, api_set: str | None, scopes: tuple[str, ...],
           expires: str | None, no_expiry: bool, password_stdin: bool, as_json: bool) -> None:
    """Create a token; prints its secret (tsp_…) once."""
    body = {"description": description, **_rights_body(scopes, api_set), **_expiry(expires, no_expiry)}
    if "scopes" not in body and "api_set" not in body:
        raise click.UsageError("give --api-set NAME or --scope SCOPE (see the server's /v1/scopes)")
    issued = app.api("POST", "/v1/tokens", body=body, password=read_password_stdin(password_stdin))
    _print_secret(issued, as_json, "Created")


@pat.command("list")
@with_app
@click.option("--state", type=click.Choice(["active", "expired", "revoked"]), help="Only these.")
@json_option
def list_(app: App, state: str | None, as_json: bool) -> None:
    """List your tokens (never their secrets)."""
    tokens = app.api("GET", "/v1/tokens", params={"state": state})["tokens"]
    if as_json:
        emit_json(tokens)
        return
    table([_row(t) for t in tokens], COLUMNS, "No personal access tokens.")


@pat.command("show")
@with_app
@click.argument("token_id")
@json_option
def show(app: App, token_id: str, as_json: bool) -> None:
    """Show one token."""
    view = app.api("GET", f"/v1/tokens/{token_id}")
    if as_json:
        emit_json(view)
        return
    _show(view)


def _show(view: dict[str, Any]) -> None:
    origin = view.get("created_from") or {}
    pairs([("ID", view["id"]), ("Description", view["description"]), ("Token", view.get("hint")),
           ("Scopes", _rights(view)), ("State", view.get("state")),
           ("Created at", when(view.get("created_at"))),
           ("Expires", view.get("expires_at") or "never"),
           ("Last used", when(view.get("last_used_at")) or "never"),
           ("Created from", " ".join(v for v in (origin.get("client_id"), origin.get("ip")) if v))])


@pat.command("edit")
@with_app
@click.argument("token_id")
@click.option("--description", "-d", help="A new description.")
@api_set_option
@scope_option
@expires_option
@no_expiry_option
@password_stdin_option
@json_option
def edit(app: App, token_id: str, description: str | None, api_set: str | None,
         scopes: tuple[str, ...], expires: str | None, no_expiry: bool, password_stdin: bool,
         as_json: bool) -> None:
    """Change a token's description, expiry or scopes."""
    body = {**_rights_body(scopes, api_set), **_expiry(expires, no_expiry)}
    if description is not None:
        body["description"] = description
    if not body:
        raise click.UsageError("nothing to change: give --description, --expires, --scope or --api-set")
    view = app.api("PATCH", f"/v1/tokens/{token_id}", body=body,
                   password=read_password_stdin(password_stdin))
    if as_json:
        emit_json(view)
    else:
        _show(view)


@pat.command("regenerate")
@with_app
@click.argument("token_id")
@password_stdin_option
@json_option
def regenerate(app: App, token_id: str, password_stdin: bool, as_json: bool) -> None:
    """New secret, same id and settings; the old secret stops working at once."""
    issued = app.api("POST", f"/v1/tokens/{token_id}/regenerate", body={},
                     password=read_password_stdin(password_stdin))
    _print_secret(issued, as_json, "Regenerated")


@pat.command("copy")
@with_app
@click.argument("token_id")
@click.option("--description", "-d", help="The copy's description (default: the same).")
@expires_option
@password_stdin_option
@json_option
def copy(app: App, token_id: str, description: str | None, expires: str | None,
         password_stdin: bool, as_json: bool) -> None:
    """A new token with the same settings; prints its secret once."""
    body: dict[str, Any] = {"expires_at": expires} if expires else {}
    if description is not None:
        body["description"] = description
    issued = app.api("POST", f"/v1/tokens/{token_id}/copy", body=body,
                     password=read_password_stdin(password_stdin))
    _print_secret(issued, as_json, "Copied to")


@pat.command("revoke")
@with_app
@click.argument("token_ids", nargs=-1)
@click.option("--current", is_flag=True, help="Revoke the PAT given by TESSERA_TOKEN / --token.")
@password_stdin_option
def revoke(app: App, token_ids: tuple[str, ...], current: bool, password_stdin: bool) -> None:
    """Revoke (remove) one or more tokens; they stop working at once."""
    ids = list(dict.fromkeys(token_ids))
    if current:
        if app.override is None:
            raise click.UsageError("--current revokes the PAT in TESSERA_TOKEN / --token; none is set")
        info = app.api("GET", "/v1/token-info")
        if info.get("type") != "pat":
            raise CliError("TESSERA_TOKEN / --token is not a personal access token")
        ids.append(info["id"])
    if not ids:
        raise click.UsageError("give the id of a token (see `tessera pat list`), or --current")
    password = read_password_stdin(password_stdin)
    if len(ids) == 1:
        app.api("DELETE", f"/v1/tokens/{ids[0]}", body={}, password=password)
        click.echo(f"Revoked {ids[0]}.")
        return
    answer = app.api("POST", "/v1/tokens/remove", body={"ids": ids}, password=password)
    for removed in answer.get("removed", []):
        click.echo(f"Revoked {removed}.")
    missing = answer.get("not_found", [])
    if missing:
        raise CliError(f"no such token: {', '.join(missing)}")
