"""Daily: rotate the signing keys once the current one has been current for the period.

Every family the ring keeps (ES256 and RS256, SPEC §4) rotates together. On the
days it does not rotate, the job adds a family the stored set lacks (a set
written before RS256 existed), so no request ever has to make one.
"""

from __future__ import annotations

from chalicelib import audit
from chalicelib.config import Settings
from chalicelib.services.signing import KeyRing


def rotate_if_due(keyring: KeyRing, settings: Settings) -> dict[str, object]:
    period = settings.key_rotation_days * 86400
    age = keyring.current_age()
    if age < period:
        for alg in keyring.algorithms:
            keyring.ensure(alg)
        report: dict[str, object] = {"rotated": False, "age": age}
    else:
        keyring.rotate()
        report = {"rotated": True, "current": keyring.current_kid()}
    audit.event("key_rotation", **report)
    return {"event": "key_rotation", **report}
