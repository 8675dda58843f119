"""``tessera role``: roles, their policies, keys and trust policies over ``/v1/roles``
(SPEC §6). A role key's secret is in the answer of ``key new`` only."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from tessera_cli.context import App
from tessera_cli.errors import UsageProblem
from tessera_cli.options import Ordered, json_option, password_stdin_option, read_password_stdin, with_app
from tessera_cli.output import emit_json, pairs, table, when

KEY_FIELDS = ("id", "access", "secret", "token")
DEFAULT_KEY_DESCRIPTION = "made with tessera role key new"


def _path(name: str, *rest: str) -> str:
    return "/".join([f"/v1/roles/{quote(name, safe='')}", *(quote(p, safe="") for p in rest)])


@click.group(cls=Ordered)
def role() -> None:
    """Roles such as alice.ci: policies, keys, trust."""


@role.command("new")
@with_app
@click.argument("name")
@click.option("--description", "-d", help="What the role is for.")
@json_option
def new(app: App, name: str, description: str | None, as_json: bool) -> None:
    """Create a role NAME (<your username>.<name>, e.g. alice.ci)."""
    body = {"name": name} if description is None else {"name": name, "description": description}
    created = app.api("POST", "/v1/roles", body=body)
    if as_json:
        emit_json(created)
    else:
        click.echo(f"Created role {created.get('name', name)}.")


@role.command("list")
@with_app
@json_option
def list_(app: App, as_json: bool) -> None:
    """Your roles."""
    answer = app.api("GET", "/v1/roles")
    roles = answer.get("roles", []) if isinstance(answer, dict) else answer
    if as_json:
        emit_json(roles)
        return
    rows = [{**r, "created": when(r.get("created_at")), "policies": _permissions(r)} for r in roles]
    table(rows, [("name", "NAME"), ("description", "DESCRIPTION"), ("policies", "POLICIES"),
                 ("created", "CREATED")], "No roles.")


def _permissions(role_view: dict[str, Any]) -> list[str]:
    return [p["permission"] if isinstance(p, dict) else str(p) for p in role_view.get("policies") or []]


@role.command("show")
@with_app
@click.argument("name")
@json_option
def show(app: App, name: str, as_json: bool) -> None:
    """One role."""
    view = app.api("GET", _path(name))
    if as_json:
        emit_json(view)
        return
    pairs([("Name", view.get("name")), ("Description", view.get("description")),
           ("Created at", when(view.get("created_at"))), ("Policies", _permissions(view))])


@role.command("delete")
@with_app
@click.argument("name")
def delete(app: App, name: str) -> None:
    """Delete a role: every key and token of it stops working."""
    app.api("DELETE", _path(name))
    click.echo(f"Deleted role {name}.")


# -- policies --------------------------------------------------------------

@role.group(cls=Ordered)
def policy() -> None:
    """A role's policies (permissions such as data:get@urn:tessera:data:alice.*)."""


@policy.command("add")
@with_app
@click.argument("name")
@click.argument("permission")
@json_option
@password_stdin_option
def policy_add(app: App, name: str, permission: str, as_json: bool, password_stdin: bool) -> None:
    """Add PERMISSION (action@resource) to role NAME; you must hold it yourself."""
    added = app.api("POST", _path(name, "policies"), body={"permission": permission},
                    password=read_password_stdin(password_stdin))
    if as_json:
        emit_json(added)
    else:
        click.echo(f"Added policy {added['id']}: {added['permission']}")


@policy.command("list")
@with_app
@click.argument("name")
@json_option
def policy_list(app: App, name: str, as_json: bool) -> None:
    """The policies of role NAME."""
    policies = app.api("GET", _path(name)).get("policies") or []
    if as_json:
        emit_json(policies)
        return
    rows = [p if isinstance(p, dict) else {"permission": p} for p in policies]
    table(rows, [("id", "ID"), ("permission", "PERMISSION")], "No policies.")


@policy.command("remove")
@with_app
@click.argument("name")
@click.argument("policy_id")
def policy_remove(app: App, name: str, policy_id: str) -> None:
    """Remove policy POLICY_ID from role NAME."""
    app.api("DELETE", _path(name, "policies", policy_id))
    click.echo(f"Removed policy {policy_id}.")


# -- keys ------------------------------------------------------------------

@role.group(cls=Ordered)
def key() -> None:
    """A role's keys (tka_…:tsk_…), for scripts and docker login."""


def render_key(created: dict[str, Any], template: str | None, fmt: str) -> str:
    """``--format-template '{access}:{secret}'`` (fields id, access, secret, token), or
    ``--format json``, or the default lines."""
    if template is not None:
        try:
            return template.format_map({k: created.get(k, "") for k in KEY_FIELDS})
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageProblem(f"--format-template: {exc!s} (fields: "
                               f"{', '.join('{' + f + '}' for f in KEY_FIELDS)})") from exc
    if fmt == "json":
        return json.dumps(created, indent=2, sort_keys=True)
    return "\n".join([f"id      {created.get('id')}", f"access  {created.get('access')}",
                      f"secret  {created.get('secret')}", f"token   {created.get('token')}"])


def _check_template(template: str | None) -> None:
    if template is None:
        return
    import string

    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None and field not in KEY_FIELDS:
            raise UsageProblem(f"--format-template: unknown field {{{field}}} (fields: "
                               f"{', '.join('{' + f + '}' for f in KEY_FIELDS)})")


@key.command("new")
@with_app
@click.argument("name")
@click.option("--description", "-d", default=DEFAULT_KEY_DESCRIPTION, show_default=True,
              help="What the key is for.")
@click.option("--format-template", "template", metavar="TEMPLATE",
              help="Print the key through this template, e.g. '{access}:{secret}' "
                   "(fields {id} {access} {secret} {token}).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format when no template is given.")
@password_stdin_option
def key_new(app: App, name: str, description: str, template: str | None, fmt: str,
            password_stdin: bool) -> None:
    """Create a key for role NAME; its secret is printed once."""
    try:
        _check_template(template)
    except ValueError as exc:
        raise UsageProblem(f"--format-template: {exc}") from exc
    created = app.api("POST", _path(name, "keys"), body={"description": description},
                      password=read_password_stdin(password_stdin))
    click.echo("Copy the secret now: it is not shown again.", err=True)
    click.echo(render_key(created, template, fmt))


@key.command("list")
@with_app
@click.argument("name")
@json_option
def key_list(app: App, name: str, as_json: bool) -> None:
    """The keys of role NAME (no secrets)."""
    answer = app.api("GET", _path(name, "keys"))
    keys = answer.get("keys", []) if isinstance(answer, dict) else answer
    if as_json:
        emit_json(keys)
        return
    rows = [{**k, "created": when(k.get("created_at")), "used": when(k.get("last_used_at")) or "never"}
            for k in keys]
    table(rows, [("id", "ID"), ("description", "DESCRIPTION"), ("created", "CREATED"),
                 ("used", "LAST USED")], "No keys.")


@key.command("revoke")
@with_app
@click.argument("name")
@click.argument("key_id")
def key_revoke(app: App, name: str, key_id: str) -> None:
    """Revoke key KEY_ID of role NAME; it stops working at once."""
    app.api("DELETE", _path(name, "keys", key_id))
    click.echo(f"Revoked key {key_id}.")


# -- trust -----------------------------------------------------------------

@role.group(cls=Ordered)
def trust() -> None:
    """Which CI jobs (by their OIDC token) may get a token of the role."""


def _claims(items: tuple[str, ...]) -> dict[str, str]:
    claims: dict[str, str] = {}
    for item in items:
        claim, sep, value = item.partition("=")
        if not sep or not claim:
            raise click.UsageError(f"--claim takes NAME=VALUE, not {item!r}")
        claims[claim] = value
    return claims


@trust.command("add")
@with_app
@click.argument("name")
@click.option("--issuer", required=True, help="e.g. https://token.actions.githubusercontent.com")
@click.option("--subject", required=True, help="The job's sub; may end with *.")
@click.option("--audience", default="tessera", show_default=True, help="The job token's aud.")
@click.option("--claim", "claims", multiple=True, metavar="NAME=VALUE",
              help="Another claim the job token must carry (repeat).")
@json_option
@password_stdin_option
def trust_add(app: App, name: str, issuer: str, subject: str, audience: str,
              claims: tuple[str, ...], as_json: bool, password_stdin: bool) -> None:
    """Let jobs whose OIDC token matches get tokens of role NAME."""
    body: dict[str, Any] = {"issuer": issuer, "audience": audience, "subject": subject}
    if claims:
        body["claims"] = _claims(claims)
    added = app.api("POST", _path(name, "trust"), body=body,
                    password=read_password_stdin(password_stdin))
    if as_json:
        emit_json(added)
    else:
        click.echo(f"Added trust policy {added['id']}.")


@trust.command("list")
@with_app
@click.argument("name")
@json_option
def trust_list(app: App, name: str, as_json: bool) -> None:
    """The trust policies of role NAME."""
    answer = app.api("GET", _path(name, "trust"))
    policies: list[dict[str, Any]] = (answer.get("trust") or answer.get("policies") or []
                                      if isinstance(answer, dict) else answer)
    if as_json:
        emit_json(policies)
        return
    table(policies, [("id", "ID"), ("issuer", "ISSUER"), ("audience", "AUDIENCE"),
                     ("subject", "SUBJECT"), ("claims", "CLAIMS")], "No trust policies.")


@trust.command("remove")
@with_app
@click.argument("name")
@click.argument("trust_id")
def trust_remove(app: App, name: str, trust_id: str) -> None:
    """Remove trust policy TRUST_ID from role NAME."""
    app.api("DELETE", _path(name, "trust", trust_id))
    click.echo(f"Removed trust policy {trust_id}.")
