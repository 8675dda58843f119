"""The roles table's conditions (``storage/roles.py``) against moto: caps under
concurrency with real threads, removal of what is not there, recreation after a
delete, and retries of writes whose answer was lost."""

from __future__ import annotations

import threading

import pytest

from chalicelib.errors import ConditionFailed
from chalicelib.models import user_id_for
from chalicelib.storage.roles import (
    COUNTER_ID,
    LimitReached,
    Role,
    RoleExists,
    RoleKey,
    RolesRepo,
    TrustPolicy,
    policy_id_for,
    role_id_for,
    trust_id_for,
)
from tests.concurrency import atomic_container, run_together
from tests.faults import LostResponse

ALICE = user_id_for("alice")
POLICY = "data:get@urn:tessera:data:alice.workspace"


def role(name: str = "alice.ci", created_at: int = 1000) -> Role:
    return Role(name=name, owner=user_id_for(name.rsplit(".", 1)[0]), description="CI",
                created_at=created_at)


def key(n: int = 0) -> RoleKey:
    return RoleKey(id=f"tka_{n:016d}", secret_hash=f"hash{n}", description="k", created_at=5)


def trust(subject: str = "repo:acme/app:*") -> TrustPolicy:
    issuer, audience = "https://token.actions.githubusercontent.com", "tessera"
    return TrustPolicy(id=trust_id_for(issuer, audience, subject, {}), issuer=issuer,
                       audience=audience, subject=subject, created_at=7)


@pytest.fixture
def repo(ctr) -> RolesRepo:
    return ctr.roles_repo


def counter(repo: RolesRepo, owner: str = ALICE) -> int:
    return int((repo.table.get(repo.key(owner, COUNTER_ID)) or {}).get("n", 0))


# -- create, list, get, delete ---------------------------------------------------------

def test_a_created_role_reads_back_and_is_counted(repo):
    repo.create(role(), cap=5)
    found = repo.get("alice.ci")
    assert found is not None and found.owner == ALICE and found.id == role_id_for("alice.ci")
    assert (found.description, found.created_at, found.policies, found.keys) == ("CI", 1000, {}, {})
    assert counter(repo) == 1


def test_the_listing_holds_roles_only_never_the_counter(repo):
    for name in ("alice.web", "alice.ci"):
        repo.create(role(name), cap=5)
    repo.create(role("bob.ci"), cap=5)
    assert [r.name for r in repo.list(ALICE)] == ["alice.ci", "alice.web"]


def test_a_second_create_of_a_name_is_role_exists_and_counts_once(repo):
    repo.create(role(), cap=5)
    with pytest.raises(RoleExists):
        repo.create(role(created_at=2000), cap=5)
    assert repo.get("alice.ci").created_at == 1000 and counter(repo) == 1


def test_the_cap_is_limit_reached(repo):
    for n in range(3):
        repo.create(role(f"alice.r{n}"), cap=3)
    with pytest.raises(LimitReached):
        repo.create(role("alice.r3"), cap=3)
    assert repo.get("alice.r3") is None and counter(repo) == 3


def test_delete_uncounts_and_frees_a_place_under_the_cap(repo):
    for n in range(3):
        repo.create(role(f"alice.r{n}"), cap=3)
    assert repo.delete("alice.r0") is True
    assert counter(repo) == 2 and repo.get("alice.r0") is None
    repo.create(role("alice.r3"), cap=3)


def test_deleting_an_absent_role_is_false_and_leaves_the_counter(repo):
    repo.create(role(), cap=5)
    assert repo.delete("alice.gone") is False
    assert repo.delete("not a name") is False
    assert counter(repo) == 1


def test_a_role_recreated_after_delete_is_a_new_role_without_the_old_keys(repo):
    repo.create(role(), cap=5)
    repo.add_key("alice.ci", key(1), cap=10)
    repo.add_policy("alice.ci", policy_id_for(POLICY), POLICY, cap=10)
    assert repo.delete("alice.ci")
    repo.create(role(created_at=3000), cap=5)
    again = repo.get("alice.ci")
    assert again.created_at == 3000 and again.keys == {} and again.policies == {}
    assert counter(repo) == 1


def test_a_role_stored_before_counting_can_still_be_deleted(repo):
    """A role whose owner's counter is 0 (never counted) is removed alone."""
    repo.create(role())
    repo.table.update(repo.key(ALICE, COUNTER_ID), "SET n = :zero", values={":zero": 0})
    assert repo.delete("alice.ci") is True and repo.get("alice.ci") is None
    assert counter(repo) == 0


def test_concurrent_creates_never_pass_the_cap(ctr):
    repo = atomic_container(ctr).roles_repo
    names = iter(f"alice.r{n}" for n in range(12))
    lock = threading.Lock()

    def work() -> None:
        with lock:
            name = next(names)
        repo.create(role(name), cap=5)

    results = run_together(12, work)
    assert sum(status == "ok" for status, _ in results) == 5
    assert all(isinstance(err, LimitReached) for status, err in results if status == "error")
    assert len(ctr.roles_repo.list(ALICE)) == 5 and counter(ctr.roles_repo) == 5


def test_concurrent_creates_of_one_name_make_one_role(ctr):
    repo = atomic_container(ctr).roles_repo
    results = run_together(8, lambda: repo.create(role(), cap=50))
    assert sum(status == "ok" for status, _ in results) == 1
    assert all(isinstance(err, RoleExists) for status, err in results if status == "error")
    assert counter(ctr.roles_repo) == 1


def test_a_create_whose_answer_was_lost_succeeds_once(ctr, repo):
    with LostResponse(ctr.dynamodb(), "TransactWriteItems") as fault:
        repo.create(role(), cap=5)
    assert fault.lost == 1
    assert repo.get("alice.ci") is not None and counter(repo) == 1


# -- entries: policies, keys, trust ---------------------------------------------------

def test_policies_keys_and_trust_are_added_and_removed(repo):
    repo.create(role(), cap=5)
    pid = policy_id_for(POLICY)
    assert repo.add_policy("alice.ci", pid, POLICY, cap=10).policies == {pid: POLICY}
    added = repo.add_key("alice.ci", key(1), cap=10)
    assert added.keys["tka_0000000000000001"].secret_hash == "hash1"
    t = trust()
    assert repo.add_trust("alice.ci", t, cap=10).trust[t.id] == t
    assert repo.remove_policy("alice.ci", pid).policies == {}
    assert repo.remove_key("alice.ci", key(1).id).keys == {}
    assert repo.remove_trust("alice.ci", t.id).trust == {}


def test_removing_an_absent_entry_is_none_and_changes_nothing(repo):
    repo.create(role(), cap=5)
    repo.add_key("alice.ci", key(1), cap=10)
    assert repo.remove_key("alice.ci", key(2).id) is None
    assert repo.remove_policy("alice.ci", "0" * 16) is None
    assert repo.remove_trust("alice.ci", "0" * 16) is None
    assert set(repo.get("alice.ci").keys) == {key(1).id}


def test_a_removed_entry_cannot_be_removed_twice(repo):
    repo.create(role(), cap=5)
    repo.add_key("alice.ci", key(1), cap=10)
    assert repo.remove_key("alice.ci", key(1).id) is not None
    assert repo.remove_key("alice.ci", key(1).id) is None


def test_entries_of_an_absent_role_are_none_and_create_nothing(repo):
    assert repo.add_policy("alice.ci", policy_id_for(POLICY), POLICY, cap=10) is None
    assert repo.add_key("alice.ci", key(1), cap=10) is None
    assert repo.add_trust("alice.ci", trust(), cap=10) is None
    assert repo.remove_key("alice.ci", key(1).id) is None
    assert repo.add_key("no name", key(1), cap=10) is None
    assert repo.get("alice.ci") is None


def test_adding_the_same_policy_or_trust_again_changes_nothing(repo):
    repo.create(role(), cap=5)
    pid = policy_id_for(POLICY)
    repo.add_policy("alice.ci", pid, POLICY, cap=1)
    again = repo.add_policy("alice.ci", pid, POLICY, cap=1)      # at the cap, and still fine
    assert again.policies == {pid: POLICY}
    t = trust()
    repo.add_trust("alice.ci", t, cap=1)
    later = TrustPolicy(**{**t.__dict__, "created_at": 99})
    assert repo.add_trust("alice.ci", later, cap=1).trust[t.id].created_at == 7


def test_a_key_id_taken_by_another_secret_is_a_conflict(repo):
    repo.create(role(), cap=5)
    repo.add_key("alice.ci", key(1), cap=10)
    other = RoleKey(id=key(1).id, secret_hash="different", description="k", created_at=5)
    with pytest.raises(ConditionFailed) as raised:
        repo.add_key("alice.ci", other, cap=10)
    assert not isinstance(raised.value, LimitReached)
    assert repo.get("alice.ci").keys[key(1).id].secret_hash == "hash1"


@pytest.mark.parametrize("kind", ["policies", "keys", "trust"])
def test_the_cap_of_each_map_is_limit_reached(repo, kind):
    repo.create(role(), cap=5)
    add = {
        "policies": lambda n: repo.add_policy(
            "alice.ci", policy_id_for(f"data:get@urn:tessera:data:alice.{n}"),
            f"data:get@urn:tessera:data:alice.{n}", cap=3),
        "keys": lambda n: repo.add_key("alice.ci", key(n), cap=3),
        "trust": lambda n: repo.add_trust("alice.ci", trust(f"repo:acme/app{n}:*"), cap=3),
    }[kind]
    for n in range(3):
        add(n)
    with pytest.raises(LimitReached):
        add(3)
    assert len(getattr(repo.get("alice.ci"), kind)) == 3


def test_concurrent_key_creation_never_passes_the_cap(ctr):
    repo = atomic_container(ctr).roles_repo
    repo.create(role(), cap=5)
    numbers = iter(range(20))
    lock = threading.Lock()

    def work() -> None:
        with lock:
            n = next(numbers)
        repo.add_key("alice.ci", key(n), cap=10)

    results = run_together(20, work)
    assert sum(status == "ok" for status, _ in results) == 10
    assert all(isinstance(err, LimitReached) for status, err in results if status == "error")
    assert len(ctr.roles_repo.get("alice.ci").keys) == 10


def test_concurrent_policy_adds_lose_none_below_the_cap(ctr):
    repo = atomic_container(ctr).roles_repo
    repo.create(role(), cap=5)
    numbers = iter(range(15))
    lock = threading.Lock()

    def work() -> None:
        with lock:
            n = next(numbers)
        permission = f"data:get@urn:tessera:data:alice.{n}"
        repo.add_policy("alice.ci", policy_id_for(permission), permission, cap=50)

    assert all(status == "ok" for status, _ in run_together(15, work))
    assert len(ctr.roles_repo.get("alice.ci").policies) == 15


def test_keys_added_while_the_role_is_deleted_never_recreate_it(ctr):
    """Adding to a role being deleted never recreates it."""
    repo = atomic_container(ctr).roles_repo
    repo.create(role(), cap=5)
    numbers = iter(range(10))
    lock = threading.Lock()

    def work() -> object:
        with lock:
            n = next(numbers)
        if n == 0:
            return repo.delete("alice.ci")
        return repo.add_key("alice.ci", key(n), cap=50)

    run_together(10, work)
    assert ctr.roles_repo.get("alice.ci") is None
    assert ctr.roles_repo.table.get(RolesRepo.key(ALICE, role_id_for("alice.ci"))) is None


def test_a_key_add_whose_answer_was_lost_succeeds_once(ctr, repo):
    repo.create(role(), cap=5)
    with LostResponse(ctr.dynamodb(), "UpdateItem") as fault:
        found = repo.add_key("alice.ci", key(1), cap=10)
    assert fault.lost == 1
    assert found is not None and set(found.keys) == {key(1).id}
