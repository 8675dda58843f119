"""Daily: rotate the signing keys once the current one is older than the period."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.container import Container


def rotate_if_due(c: Container) -> dict[str, object]:
    period = c.settings.key_rotation_days * 86400
    age = c.keyring.current_age()
    if age < period:
        return {"event": "key_rotation", "rotated": False, "age": age}
    c.keyring.rotate()
    return {"event": "key_rotation", "rotated": True, "current": c.keyring.current_kid()}
