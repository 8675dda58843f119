"""``tessera sessions``, ``tessera consents`` and ``tessera events``: where you are
signed in, which apps may act for you (SPEC §2), and what happened to your account
(the security log, SPEC §11)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from tessera_cli.context import App
from tessera_cli.options import Ordered, json_option, with_app
from tessera_cli.output import emit_json, table, when


@click.group(cls=Ordered)
def sessions() -> None:
    """Your sign-in sessions: list them, end one."""


@sessions.command("list")
@with_app
@json_option
def sessions_list(app: App, as_json: bool) -> None:
    """Your live sessions (this one marked *)."""
    found = app.api("GET", "/v1/sessions")["sessions"]
    if as_json:
        emit_json(found)
        return
    rows = [{**s, "mark": "*" if s.get("current") else "", "created": when(s.get("created_at")),
             "seen": when(s.get("last_used_at")), "ends": when(s.get("expires_at")),
             "where": " ".join(v for v in ((s.get("device") or {}).get("ip"),
                                           (s.get("device") or {}).get("user_agent")) if v)}
            for s in found]
    table(rows, [("mark", ""), ("id", "ID"), ("client_id", "CLIENT"), ("created", "CREATED"),
                 ("seen", "LAST SEEN"), ("ends", "ENDS"), ("where", "DEVICE")], "No sessions.")


@sessions.command("end")
@with_app
@click.argument("session_id")
def sessions_end(app: App, session_id: str) -> None:
    """End session SESSION_ID: its tokens stop working."""
    app.api("DELETE", f"/v1/sessions/{quote(session_id, safe='')}")
    click.echo(f"Ended session {session_id}.")


@click.group(cls=Ordered)
def consents() -> None:
    """Apps you allowed to act for you."""


def _consent_rows(answer: Any) -> list[dict[str, Any]]:
    found = answer.get("consents", []) if isinstance(answer, dict) else answer
    return [{**c, "granted": when(c.get("created_at")), "changed": when(c.get("updated_at"))}
            for c in found]


@consents.command("list")
@with_app
@json_option
def consents_list(app: App, as_json: bool) -> None:
    """The apps you have consented to, and for which scopes."""
    answer = app.api("GET", "/v1/consents")
    if as_json:
        emit_json(answer.get("consents", answer) if isinstance(answer, dict) else answer)
        return
    table(_consent_rows(answer), [("client_id", "CLIENT"), ("client_name", "NAME"), ("scopes", "SCOPES"),
                                  ("granted", "GRANTED"), ("changed", "CHANGED")], "No consents.")


@consents.command("revoke")
@with_app
@click.argument("client_id")
def consents_revoke(app: App, client_id: str) -> None:
    """Withdraw your consent to CLIENT_ID: its tokens for you stop working."""
    app.api("DELETE", f"/v1/consents/{quote(client_id, safe='')}")
    click.echo(f"Withdrew consent for {client_id}.")


PAGE = 100   # the most events the server gives per page


def _summary(detail: dict[str, Any]) -> str:
    """The detail in one cell: ``key=value`` pairs, lists joined by commas."""
    return " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                    for k, v in detail.items()) or "-"


@click.command("events")
@with_app
@click.option("--kind", "-k", metavar="KIND",
              help="Only events of this kind (signin, signin_failed, session_ended, ...).")
@click.option("--limit", "-n", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="At most this many events (older pages are followed to reach it).")
@json_option
def events(app: App, kind: str | None, limit: int, as_json: bool) -> None:
    """Your security log: sign-ins, sessions, tokens and keys, newest first."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(found) < limit:
        params: dict[str, Any] = {"limit": min(PAGE, limit - len(found))}
        if kind:
            params["kind"] = kind
        if cursor:
            params["cursor"] = cursor
        answer = app.api("GET", "/v1/events", params=params)
        found += answer.get("events", [])
        cursor = answer.get("next_cursor")
        if not cursor:
            break
    found = found[:limit]
    if as_json:
        emit_json(found)
        return
    rows = [{**e, "at": when(e.get("time")), "ip": e.get("ip") or None,
             "summary": _summary(e.get("detail") or {})} for e in found]
    table(rows, [("at", "TIME"), ("kind", "KIND"), ("ip", "IP"), ("summary", "DETAIL")],
          "No events.")
