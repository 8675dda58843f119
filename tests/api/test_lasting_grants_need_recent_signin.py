"""Every change that grants lasting access needs a recent sign-in or the password
(SPEC §5, §6; issue 21 item 3): a role's trust policy, policy and key, and a
PAT's generate, regenerate, copy and edit. A PAT, a delegated token or a
sign-in older than ``recent_signin_seconds`` is refused with one 403 problem and
nothing is written; a fresh sign-in (or the password) goes through."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.helpers import ALL_SCOPES, basic, bearer, body, form, refresh, seed, tokens

JSON = {"Content-Type": "application/json"}
GITHUB = "https://token.actions.githubusercontent.com"
TRUST = {"issuer": GITHUB, "audience": "tessera", "subject": "repo:acme/app:ref:refs/heads/main"}
POLICY = "data:get@urn:tessera:data:alice.workspace"
WIDER = "data:put@urn:tessera:data:alice.x"
# The one refusal, the same for every route below (RFC 9457 problem JSON).
REFUSAL = {"type": "about:blank", "title": "Forbidden", "status": 403,
           "detail": "Confirm this change with your password (field 'password'), or sign in "
                     "again: the sign-in must be younger than 10 minutes"}
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
DELEGATE, DELEGATE_SECRET = "console", "console-secret-value"


def call(client: Any, method: str, path: str, token: str, payload: Any) -> Any:
    return getattr(client.http, method)(path, body=json.dumps(payload).encode(),
                                        headers={**JSON, **bearer(token)})


@dataclass(frozen=True)
class Grant:
    """A route that grants lasting access: how to call it, and what it may change."""

    name: str
    method: str
    path: str
    payload: dict[str, Any]
    status: int          # the answer to a fresh sign-in


@dataclass
class World:
    fresh: str           # an access token of a sign-in made a moment ago
    pat_id: str          # a PAT of alice's, the target of regenerate / copy / edit
    manager: str         # a PAT holding tokens:manage and roles:manage

    def route(self, grant: Grant) -> Grant:
        return Grant(grant.name, grant.method, grant.path.format(pat=self.pat_id),
                     grant.payload, grant.status)


GRANTS = [
    Grant("trust policy add", "post", "/v1/roles/alice.ci/trust", TRUST, 201),
    Grant("policy add", "post", "/v1/roles/alice.ci/policies", {"permission": WIDER}, 201),
    Grant("role key create", "post", "/v1/roles/alice.ci/keys", {"description": "ci"}, 201),
    Grant("PAT generate", "post", "/v1/tokens",
          {"description": "ci", "expires_at": "2027-02-15", "scopes": ["api:write"]}, 201),
    Grant("PAT regenerate", "post", "/v1/tokens/{pat}/regenerate", {}, 200),
    Grant("PAT copy", "post", "/v1/tokens/{pat}/copy", {}, 201),
    Grant("PAT edit", "patch", "/v1/tokens/{pat}", {"scopes": ["api:read", "api:write"]}, 200),
]
IDS = [g.name for g in GRANTS]


@pytest.fixture
def world(client: Any, ctr: Any) -> World:
    seed(ctr)
    ctr.identities.create_client(DELEGATE, secret=DELEGATE_SECRET, grant_types=[EXCHANGE],
                                 scopes=ALL_SCOPES, delegate=True)
    fresh = str(tokens(client)["access_token"])
    assert call(client, "post", "/v1/roles", fresh, {"name": "alice.ci"}).status_code == 201
    assert call(client, "post", "/v1/roles/alice.ci/policies", fresh,
                {"permission": POLICY}).status_code == 201
    made = call(client, "post", "/v1/tokens", fresh, {
        "description": "target", "expires_at": "2027-02-15", "scopes": ["api:read"]})
    manager = call(client, "post", "/v1/tokens", fresh, {
        "description": "manager", "expires_at": "2027-02-15",
        "scopes": ["tokens:manage", "roles:manage"]})
    assert made.status_code == manager.status_code == 201, (made.body, manager.body)
    return World(fresh, body(made)["id"], body(manager)["token"])


def state(ctr: Any) -> tuple[Any, ...]:
    """Everything a lasting grant could change: alice's role and her PATs (when a
    PAT was last used is not a grant)."""
    owner = ctr.identities.find_user("alice")
    pats = [dataclasses.replace(p, last_used_at=None) for p in ctr.pats_repo.list(owner.id)]
    return ctr.roles_repo.get("alice.ci"), sorted(pats, key=lambda p: p.id)


def stale(client: Any, clock: Any) -> str:
    """An access token, just refreshed, of a sign-in older than ten minutes."""
    rt = tokens(client)["refresh_token"]
    clock.advance(601)
    return str(body(refresh(client, rt))["access_token"])


def delegated(client: Any, ctr: Any) -> str:
    """A token the app ``console`` acts with for alice (RFC 8693), made a moment
    after her sign-in: her session's sign-in is recent, but she did not sign in
    to change anything."""
    owner = ctr.identities.find_user("alice")
    ctr.consents_repo.grant(owner.id, DELEGATE, ALL_SCOPES, ctr.clock.now())
    person = tokens(client)["access_token"]
    r = form(client, "/oauth/token", basic(DELEGATE, DELEGATE_SECRET), grant_type=EXCHANGE,
             subject_token=person, subject_token_type="urn:ietf:params:oauth:token-type:access_token",
             scope="tokens:manage roles:manage")
    assert r.status_code == 200, r.body
    return str(body(r)["access_token"])


CREDENTIALS: dict[str, Callable[[Any, Any, Any, World], str]] = {
    "a PAT": lambda client, ctr, clock, w: w.manager,
    "a sign-in older than ten minutes": lambda client, ctr, clock, w: stale(client, clock),
    "a delegated token": lambda client, ctr, clock, w: delegated(client, ctr),
}


@pytest.mark.parametrize("grant", GRANTS, ids=IDS)
@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_without_a_recent_sign_in_a_lasting_grant_is_refused_and_nothing_is_written(
        client, ctr, clock, world, grant, credential):
    token = CREDENTIALS[credential](client, ctr, clock, world)
    route = world.route(grant)
    before = state(ctr)
    r = call(client, route.method, route.path, token, route.payload)
    assert r.status_code == 403, r.body
    assert r.headers["Content-Type"] == "application/problem+json"
    assert body(r) == REFUSAL
    assert state(ctr) == before


@pytest.mark.parametrize("grant", GRANTS, ids=IDS)
def test_a_fresh_sign_in_makes_the_lasting_grant(client, ctr, world, grant):
    route = world.route(grant)
    before = state(ctr)
    r = call(client, route.method, route.path, world.fresh, route.payload)
    assert r.status_code == grant.status, r.body
    assert state(ctr) != before


@pytest.mark.parametrize("grant", GRANTS, ids=IDS)
def test_the_password_confirms_a_lasting_grant_made_with_a_pat(client, ctr, world, grant):
    route = world.route(grant)
    r = call(client, route.method, route.path, world.manager,
             {**route.payload, "password": "password4alice"})
    assert r.status_code == grant.status, r.body


@pytest.mark.parametrize("grant", GRANTS, ids=IDS)
def test_a_wrong_password_is_refused_and_nothing_is_written(client, ctr, world, grant):
    route = world.route(grant)
    before = state(ctr)
    r = call(client, route.method, route.path, world.manager,
             {**route.payload, "password": "wrong-password"})
    assert r.status_code == 403 and body(r)["detail"] == "Password confirmation failed"
    assert state(ctr) == before


def test_creating_a_role_grants_nothing_and_needs_no_recent_sign_in(client, ctr, world):
    # An empty role has no policy, key or trust policy: nothing can act as it yet.
    r = call(client, "post", "/v1/roles", world.manager, {"name": "alice.empty"})
    assert r.status_code == 201, r.body
    assert body(r)["policies"] == []
