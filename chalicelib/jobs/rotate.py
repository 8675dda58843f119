"""Daily: rotate the signing keys once the current one has been current for the period."""

from __future__ import annotations

from chalicelib import audit
from chalicelib.config import Settings
from chalicelib.services.signing import KeyRing


def rotate_if_due(keyring: KeyRing, settings: Settings) -> dict[str, object]:
    period = settings.key_rotation_days * 86400
    age = keyring.current_age()
    if age < period:
        report: dict[str, object] = {"rotated": False, "age": age}
    else:
        keyring.rotate()
        report = {"rotated": True, "current": keyring.current_kid()}
    audit.event("key_rotation", **report)
    return {"event": "key_rotation", **report}
