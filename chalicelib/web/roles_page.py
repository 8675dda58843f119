"""Roles and keys in the console (SPEC §6, §11): what ``tessera role`` does, in the
browser, through the same service (``services.roles.Roles``).

Create and delete a role; add and remove a policy; make a key (its secret shown
once) and revoke one; add and remove a trust policy. A lasting grant (a policy,
a key, a trust policy) needs the password or a recent sign-in, as the API and the
tokens page (``Confirmation``). Another user's role is a 404, as in the API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from chalice.app import Response

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import NotFound, TesseraError
from chalicelib.services import roles as role_rules
from chalicelib.services.roles import Roles
from chalicelib.services.web_signin import WebSession
from chalicelib.storage.roles import Role
from chalicelib.web import console
from chalicelib.web.account_pages import when
from chalicelib.web.browser import Confirms, Visit
from chalicelib.web.page import Layout

LIST = "/account/roles"


def role_path(name: str) -> str:
    return f"{LIST}/{quote(name, safe='')}"


@dataclass(frozen=True)
class RolesPage:
    roles: Roles
    confirmation: Confirms
    clock: Clock
    settings: Settings

    # -- the list ------------------------------------------------------------------------

    def listing(self, visit: Visit) -> Response:
        return console.signed_in(visit, LIST, lambda web: self._list_page(visit, web))

    def create(self, visit: Visit) -> Response:
        def run(web: WebSession) -> Response:
            form = visit.request.form
            suffix = form.one("name").strip()
            name = f"{web.user.username}.{suffix}" if suffix else ""
            try:
                role = self.roles.create(web.user, name, form.one("description") or None)
            except TesseraError as err:
                return self._list_page(visit, web, error=err.description, status=err.status,
                                       name=suffix, description=form.one("description"))
            return visit.redirect(role_path(role.name))
        return console.change(visit, LIST, run)

    def _list_page(self, visit: Visit, web: WebSession, *, error: str = "", status: int = 200,
                   name: str = "", description: str = "") -> Response:
        rows = [{"name": r.name, "href": visit.path(role_path(r.name)),
                 "description": r.description, "policies": len(r.policies), "keys": len(r.keys),
                 "trust": len(r.trust), "created": when(r.created_at)}
                for r in self.roles.list(web.user)]
        return console.page(visit, "roles", Layout("Roles and keys", wide=True),
                            "account_roles.html", status, error=error, rows=rows,
                            prefix=web.user.username + ".", name=name, description=description)

    # -- one role ------------------------------------------------------------------------

    def show(self, visit: Visit, name: str) -> Response:
        return console.signed_in(visit, role_path(name),
                                 lambda web: self._role_page(visit, web, self.roles.get(web.user,
                                                                                        name)))

    def delete(self, visit: Visit, name: str) -> Response:
        def run(web: WebSession) -> Response:
            self.roles.delete(web.user, name)
            return visit.redirect(LIST)
        return console.change(visit, role_path(name), run)

    def add_policy(self, visit: Visit, name: str) -> Response:
        def run(web: WebSession) -> str:
            _, permission = self.roles.add_policy(web.user, name,
                                                  visit.request.form.one("permission").strip())
            return f"Policy added: {permission}."
        return self._change(visit, name, run, confirm=True)

    def remove_policy(self, visit: Visit, name: str, policy_id: str) -> Response:
        def run(web: WebSession) -> str:
            self.roles.remove_policy(web.user, name, policy_id)
            return "Policy removed."
        return self._change(visit, name, run)

    def create_key(self, visit: Visit, name: str) -> Response:
        def run(web: WebSession) -> Response:
            role = self.roles.get(web.user, name)
            try:
                visit.confirm_change(self.confirmation, web)
                issued = self.roles.create_key(web.user, name,
                                               visit.request.form.one("description") or None)
            except NotFound:
                raise
            except TesseraError as err:
                return self._role_page(visit, web, role, error=err.description, status=err.status)
            return console.page(visit, "roles", Layout("New role key", wide=True),
                                "role_key_secret.html", 201, role=name,
                                back=visit.path(role_path(name)), token=issued.token,
                                description=issued.key.description)
        return console.change(visit, role_path(name), run)

    def revoke_key(self, visit: Visit, name: str, key_id: str) -> Response:
        def run(web: WebSession) -> str:
            self.roles.revoke_key(web.user, name, key_id)
            return "Key revoked: it no longer works."
        return self._change(visit, name, run)

    def add_trust(self, visit: Visit, name: str) -> Response:
        def run(web: WebSession) -> str:
            form = visit.request.form
            body: dict[str, Any] = {"issuer": form.one("issuer").strip(),
                                    "audience": form.one("audience").strip(),
                                    "subject": form.one("subject").strip()}
            self.roles.add_trust(web.user, name, body)
            return "Trust policy added."
        return self._change(visit, name, run, confirm=True)

    def remove_trust(self, visit: Visit, name: str, trust_id: str) -> Response:
        def run(web: WebSession) -> str:
            self.roles.remove_trust(web.user, name, trust_id)
            return "Trust policy removed."
        return self._change(visit, name, run)

    # -- helpers -------------------------------------------------------------------------

    def _change(self, visit: Visit, name: str, run: Callable[[WebSession], Any], *,
                confirm: bool = False) -> Response:
        """A change of one role: its page again, with the outcome or the refusal.
        Another user's role (or none) is the 404 page, before anything is read."""
        def go(web: WebSession) -> Response:
            role = self.roles.get(web.user, name)
            try:
                if confirm:
                    visit.confirm_change(self.confirmation, web)
                notice = str(run(web))
            except NotFound as err:
                return self._role_page(visit, web, role, error=err.description, status=404)
            except TesseraError as err:
                return self._role_page(visit, web, role, error=err.description, status=err.status,
                                       form=visit.request.form.fields)
            return self._role_page(visit, web, self.roles.get(web.user, name), notice=notice)
        return console.change(visit, role_path(name), go)

    def _role_page(self, visit: Visit, web: WebSession, role: Role, *, error: str = "",
                   notice: str = "", status: int = 200,
                   form: Any = None) -> Response:
        base = visit.path(role_path(role.name))
        recent = (self.clock.now() - web.session.auth_time < self.settings.recent_signin_seconds)
        kept = {k: (v[0] if v else "") for k, v in (form or {}).items() if k != "password"}
        return console.page(
            visit, "roles", Layout(role.name, wide=True), "account_role.html", status,
            error=error, notice=notice, role=role.name, description=role.description,
            base=base, list_href=visit.path(LIST), created=when(role.created_at),
            policies=role_rules.policies_view(role),
            keys=[{**k, "created": when(k["created_at"]), "last_used": when(k["last_used_at"])}
                  for k in role_rules.keys_view(role)],
            trust=[{**t, "created": when(t["created_at"])} for t in role_rules.trust_view(role)],
            recent=recent, recent_minutes=self.settings.recent_signin_seconds // 60,
            otp=web.user.second_factors.enrolled,
            kept=kept)
