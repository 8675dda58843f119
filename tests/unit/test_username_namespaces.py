"""Usernames and their namespaces (SPEC §6, issue 21 item 4).

A user's default right is ``*@urn:tessera:*:<username>.*``: every resource whose
segment starts with the username and a dot. With a dot inside a username,
``alice``'s namespace held ``alice.x``'s. The rule: a username has no dot (the
namespace separator) and nothing else the permission language reads (``:``,
``*``, ``@``); a user stored before the rule whose name has a dot holds no default.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from chalicelib.clock import FakeClock
from chalicelib.errors import BadRequest, ConditionFailed
from chalicelib.models import User, normalise_username, user_id_for, valid_username
from chalicelib.security.permissions import covers, default_rights, matches
from chalicelib.services.identities import Identities
from chalicelib.storage.identities import ClientsRepo, UsersRepo
from chalicelib.storage.roles import owner_id_of, split_role_name
from tests.unit.fakes import offline_table, settings

# The alphabet usernames had before the rule (upper case is lowered), kept small so
# that one name is often a prefix of another.
OLD_NAMES = st.text(alphabet="abxAB09._-@", min_size=1, max_size=10)
VALID_NAMES = OLD_NAMES.map(normalise_username).filter(valid_username)
SERVICES = st.sampled_from(["data", "role", "files", "tokens"])
# What may follow "<username>." in a resource segment, and a further segment or none.
RESTS = st.tuples(st.from_regex(r"[a-z0-9._@-]{0,8}", fullmatch=True),
                  st.sampled_from(["", ":x", ":x.y"])).map("".join)
ROLE_SHORT_NAMES = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)


def pairs(names: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str]]:
    """Two names, independent or one extending the other (the case that collides),
    in either order."""
    extended = st.tuples(names, OLD_NAMES.map(normalise_username)).map(
        lambda t: (t[0], t[0] + t[1]))
    either = st.one_of(st.tuples(names, names), extended)
    return st.tuples(either, st.booleans()).map(lambda t: t[0][::-1] if t[1] else t[0])


@given(pairs(VALID_NAMES), SERVICES, RESTS, ROLE_SHORT_NAMES)
def test_no_valid_user_s_default_rights_reach_another_s_namespace_or_roles(names, service, rest,
                                                                           short):
    u, v = names
    assume(u != v and valid_username(u) and valid_username(v))
    (mine,) = default_rights(u)
    (theirs,) = default_rights(v)
    role = f"{v}.{short}"
    assert matches(theirs, f"data:get@urn:tessera:{service}:{v}.{rest}")
    assert not matches(mine, f"data:get@urn:tessera:{service}:{v}.{rest}")
    assert not matches(mine, f"roles:use@urn:tessera:role:{role}")
    assert not covers(mine, theirs) and not covers(theirs, mine)
    # A role name says one owner, the one whose namespace holds it.
    assert split_role_name(role) == (v, short)
    assert owner_id_of(role) == user_id_for(v)
    assert matches(theirs, f"roles:use@urn:tessera:role:{role}")


@given(pairs(OLD_NAMES.map(normalise_username)), SERVICES, RESTS)
def test_users_stored_under_any_name_hold_disjoint_namespaces(names, service, rest):
    """Also the users stored before the rule: one whose name has a dot holds no default."""
    a, b = names
    assume(a and b and a != b)
    holder, other = User(id=user_id_for(b), username=b), User(id=user_id_for(a), username=a)
    resource = f"data:get@urn:tessera:{service}:{b}.{rest}"
    if any(matches(right, resource) for right in holder.permissions):
        assert not any(matches(right, resource) for right in other.permissions)


def test_a_name_with_the_separator_holds_no_default_right():
    assert default_rights("alice.x") == ()
    assert User(id=user_id_for("alice.x"), username="alice.x").permissions == ()
    granted = User(id=user_id_for("alice.x"), username="alice.x",
                   granted_permissions=("data:get@urn:tessera:data:shared",))
    assert granted.permissions == ("data:get@urn:tessera:data:shared",)


class MemoryUsers(UsersRepo):
    def __init__(self) -> None:
        super().__init__(offline_table("users"))
        self.items: dict[str, User] = {}

    def create(self, user: User) -> None:
        if user.id in self.items:
            raise ConditionFailed("exists")
        self.items[user.id] = user

    def get(self, user_id: str) -> User | None:
        return self.items.get(user_id)


def identities() -> Identities:
    return Identities(MemoryUsers(), ClientsRepo(offline_table("clients")), FakeClock(1_000),
                      settings())


@pytest.mark.parametrize("name", [
    "alice.x", "alice.", ".alice", "bob@example.com", "bob@example", "alice:x", "alice*", "-alice",
    "_alice", "al ice", "ålice", "", "a" * 65,
])
def test_create_user_refuses_a_name_outside_the_rule(name: Any):
    with pytest.raises(BadRequest, match="no dot"):
        identities().create_user(name, "password4anyone")


@pytest.mark.parametrize("name, stored", [
    ("alice", "alice"), ("Alice", "alice"), ("a-b_c", "a-b_c"), ("0day", "0day"), ("x" * 64, "x" * 64),
])
def test_create_user_accepts_a_name_within_the_rule(name, stored):
    user = identities().create_user(name, "password4anyone")
    assert user.username == stored
    assert user.permissions == (f"*@urn:tessera:*:{stored}.*",)
