"""Daily: rotate the signing keys once the current one has been current for the period."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib import audit

if TYPE_CHECKING:
    from chalicelib.container import Container


def rotate_if_due(c: Container) -> dict[str, object]:
    period = c.settings.key_rotation_days * 86400
    age = c.keyring.current_age()
    if age < period:
        report: dict[str, object] = {"rotated": False, "age": age}
    else:
        c.keyring.rotate()
        report = {"rotated": True, "current": c.keyring.current_kid()}
    audit.event("key_rotation", **report)
    return {"event": "key_rotation", **report}
