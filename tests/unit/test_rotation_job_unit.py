"""The daily key rotation, given a key ring and the settings (no container, no AWS)."""

from __future__ import annotations

from chalicelib.jobs.rotate import rotate_if_due
from tests.unit.fakes import settings

DAY = 86400


class FakeKeyRing:
    algorithms = ("ES256", "RS256")

    def __init__(self, age: int) -> None:
        self.age = age
        self.kid = "k1"
        self.ensured: list[str] = []

    def ensure(self, alg: str) -> None:
        self.ensured.append(alg)

    def current_age(self) -> int:
        return self.age

    def rotate(self) -> None:
        self.kid, self.age = "k2", 0

    def current_kid(self) -> str:
        return self.kid


def test_the_key_rotates_once_it_has_been_current_for_the_period():
    s = settings(key_rotation_days=30)
    young, old = FakeKeyRing(30 * DAY - 1), FakeKeyRing(30 * DAY)
    assert rotate_if_due(young, s) == {"event": "key_rotation", "rotated": False, "age": 30 * DAY - 1}
    assert rotate_if_due(old, s) == {"event": "key_rotation", "rotated": True, "current": "k2"}
    assert young.kid == "k1"


def test_a_day_without_rotation_completes_the_families_the_key_set_lacks():
    young = FakeKeyRing(DAY)
    rotate_if_due(young, settings(key_rotation_days=30))
    assert young.ensured == ["ES256", "RS256"]
