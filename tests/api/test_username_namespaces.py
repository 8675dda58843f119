"""One user's namespace never covers another's (issue 21 item 4).

The report: usernames could hold a dot, so ``alice``'s default right
``*@urn:tessera:*:alice.*`` covered user ``alice.x``'s namespace, and alice's role
accepted ``data:delete@urn:tessera:data:alice.x.private``. Now no user ``alice.x``
can be made; one stored before the rule holds no default right and owns no new role.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.errors import BadRequest
from chalicelib.models import User, user_id_for
from chalicelib.security.passwords import hash_password
from tessera_admin.seed import SeedError, load_seed
from tests.api.helpers import bearer, body, login, seed, tokens
from tests.api.role_support import make_role
from tests.conftest import TEST_SCRYPT_LOG_N

JSON = {"Content-Type": "application/json"}
REPORTED = "data:delete@urn:tessera:data:alice.x.private"


def post(client: Any, path: str, token: str, payload: dict[str, Any]) -> Any:
    return client.http.post(path, body=json.dumps(payload).encode(),
                            headers={**JSON, **bearer(token)})


def scoped(client: Any, username: str, password: str) -> str:
    return str(tokens(client, username=username, password=password,
                      scope="roles:manage")["access_token"])


@pytest.fixture
def alice(client: Any, ctr: Any) -> str:
    seed(ctr)
    return scoped(client, "alice", "password4alice")


def store_user_from_before_the_rule(ctr: Any, username: str, password: str) -> None:
    """A user item as the old rule let ``create_user`` write it (the dot allowed)."""
    ctr.identities.users.create(User(id=user_id_for(username), username=username,
                                     password_hash=hash_password(password, log_n=TEST_SCRYPT_LOG_N),
                                     created_at=ctr.clock.now()))


def test_the_reported_user_alice_x_cannot_be_created_anywhere(client, ctr, alice):
    with pytest.raises(BadRequest, match="no dot"):
        ctr.identities.create_user("alice.x", "password4alicex")
    with pytest.raises(SeedError, match=r"users\[0\]: username must be"):
        load_seed(ctr.identities, {"users": [{"username": "alice.x", "password": "password4alicex"}]})
    assert ctr.identities.find_user("alice.x") is None
    r = login(client, username="alice.x", password="password4alicex")
    assert r.status_code == 400 and body(r)["error"] == "invalid_grant"
    # So alice.x.private is alice's own namespace, which no other user can hold.
    assert post(client, "/v1/roles", alice, {"name": "alice.ci"}).status_code == 201
    assert post(client, "/v1/roles/alice.ci/policies", alice,
                {"permission": REPORTED}).status_code == 201


def test_a_user_with_a_dot_from_before_the_rule_holds_no_namespace_and_no_new_role(client, ctr,
                                                                                 alice):
    store_user_from_before_the_rule(ctr, "alice.x", "password4alicex")
    legacy = scoped(client, "alice.x", "password4alicex")
    r = post(client, "/v1/roles", legacy, {"name": "alice.x.ci"})
    assert r.status_code == 403, r.body
    assert "dot" in body(r)["detail"]
    # A role it made before the rule gets nothing of the namespace alice.x.* (it is alice's).
    make_role(ctr, "alice.x", "old")
    r = post(client, "/v1/roles/alice.x.old/policies", legacy,
             {"permission": "data:get@urn:tessera:data:alice.x.private"})
    assert r.status_code == 403 and "alice.x does not hold" in body(r)["detail"]
