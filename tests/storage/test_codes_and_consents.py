"""The authorization-code items of the devices table and the consents table (moto)."""

from __future__ import annotations

import pytest

from chalicelib.errors import ConditionFailed
from chalicelib.storage.codes import USED, AuthorizationCode


def code(now: int, **kw: object) -> AuthorizationCode:
    fields: dict[str, object] = dict(
        digest="d" * 64, client_id="web", redirect_uri="https://app.example/cb",
        code_challenge="c" * 43, nonce="n", scope="openid", user_id="u" * 16, auth_time=now - 5,
        web_session_id="w" * 16, created_at=now, expires_at=now + 60, username="alice",
        email="alice@example.com", user_version=3)
    fields.update(kw)
    return AuthorizationCode(**fields)  # type: ignore[arg-type]


def redeem(ctr, **kw: object) -> AuthorizationCode:
    args: dict[str, object] = dict(client_id="web", redirect_uri="https://app.example/cb",
                                   code_challenge="c" * 43, session_id="s" * 16,
                                   now=ctr.clock.now())
    args.update(kw)
    return ctr.codes_repo.redeem("d" * 64, **args)


def test_a_code_is_spent_once_and_returns_its_bindings(ctr):
    ctr.codes_repo.insert(code(ctr.clock.now()))
    spent = redeem(ctr)
    assert spent.status == USED and spent.session_id == "s" * 16 and spent.nonce == "n"
    assert spent.user().version == 3 and spent.user().email == "alice@example.com"
    with pytest.raises(ConditionFailed) as lost:
        redeem(ctr, session_id="t" * 16)
    assert lost.value.item["session_id"] == "s" * 16      # ALL_OLD names the first use


@pytest.mark.parametrize("wrong", [{"client_id": "other"}, {"redirect_uri": "https://x.example/"},
                                   {"code_challenge": "x" * 43}])
def test_a_wrong_binding_spends_nothing(ctr, wrong):
    ctr.codes_repo.insert(code(ctr.clock.now()))
    with pytest.raises(ConditionFailed):
        redeem(ctr, **wrong)
    assert redeem(ctr).status == USED


def test_an_expired_code_is_not_spent(ctr):
    ctr.codes_repo.insert(code(ctr.clock.now()))
    with pytest.raises(ConditionFailed):
        redeem(ctr, now=ctr.clock.now() + 60)


def test_a_code_is_never_overwritten(ctr):
    ctr.codes_repo.insert(code(ctr.clock.now()))
    with pytest.raises(ConditionFailed):
        ctr.codes_repo.insert(code(ctr.clock.now(), client_id="evil"))


def test_consents_grow_keep_their_creation_and_list_per_user(ctr):
    repo = ctr.consents_repo
    first = repo.grant("alice", "web", ["openid"], 100)
    later = repo.grant("alice", "web", ["email"], 200)
    assert first.scopes == ("openid",) and later.scopes == ("email", "openid")
    assert (later.created_at, later.updated_at) == (100, 200)
    repo.grant("alice", "cli", [], 300)
    repo.grant("bob", "web", ["openid"], 300)
    assert [c.client_id for c in repo.for_user("alice")] == ["cli", "web"]
    assert repo.delete("alice", "web").scopes == ("email", "openid")
    assert repo.delete("alice", "web") is None and repo.get("alice", "web") is None


def test_the_consent_check_fails_a_transaction_once_withdrawn_or_narrower(ctr):
    repo = ctr.consents_repo
    repo.grant("alice", "web", ["openid", "email"], 100)
    ctr.transact([repo.op_check_covers("alice", "web", ["openid", "email"])])
    with pytest.raises(ConditionFailed):
        ctr.transact([repo.op_check_covers("alice", "web", ["openid", "profile"])])
    repo.delete("alice", "web")
    with pytest.raises(ConditionFailed):
        ctr.transact([repo.op_check_covers("alice", "web", ["openid"])])
