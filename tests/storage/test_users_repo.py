"""UsersRepo.is_active: one projected read of a user's ``active`` (introspection's second read)."""

from __future__ import annotations

from chalicelib.models import user_id_for


def test_is_active_follows_disable_and_enable_and_reads_only_active(ctr):
    user = ctr.identities.create_user("carol", "password4carol", email="carol@example.com")
    assert ctr.users.is_active(user.id)
    ctr.identities.set_user_active("carol", False)
    assert not ctr.users.is_active(user.id)
    ctr.identities.set_user_active("carol", True)
    assert ctr.users.is_active(user.id)
    assert not ctr.users.is_active(user_id_for("nobody"))
    projected = ctr.users.table.get(ctr.users.key(user.id), attributes=("id", "active"))
    assert projected == {"id": user.id, "active": True}


def test_a_user_stored_before_active_existed_is_active(ctr):
    user = ctr.identities.create_user("dave", "password4dave", email="dave@example.com")
    ctr.users.table.update(ctr.users.key(user.id), "REMOVE active", returns="NONE")
    assert ctr.users.get(user.id).active and ctr.users.is_active(user.id)
