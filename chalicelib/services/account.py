"""Views of the caller's token and sessions."""

from __future__ import annotations

from typing import Any

from chalicelib.errors import Forbidden, bearer_challenge
from chalicelib.models import Client, Session
from chalicelib.security.opaque import ID_LEN, is_base62
from chalicelib.services.principals import Principal
from chalicelib.storage.consents import Consent

# Listing the caller's sessions shows where they are signed in (IP, user agent);
# ending one signs a device out. Both need this scope, as tokens need tokens:*.
# So do listing and withdrawing consents (``/v1/consents``): a withdrawal ends
# that app's sessions, and the list says which apps hold the account.
SESSIONS_SCOPE = "sessions:manage"


def require_sessions_scope(p: Principal) -> None:
    """``/v1/sessions`` and ``DELETE /v1/sessions/{id}`` need ``sessions:manage``.

    RFC 6750 §3.1: insufficient_scope is a 403 whose challenge names the scope.
    """
    if SESSIONS_SCOPE not in p.scopes:
        raise Forbidden(f"This credential lacks the {SESSIONS_SCOPE} scope",
                        challenges=(bearer_challenge("insufficient_scope", SESSIONS_SCOPE),))


def valid_session_id(session_id: str) -> bool:
    """Session ids are ``new_id()`` values: anything else names no session (no read)."""
    return len(session_id) == ID_LEN and is_base62(session_id)


def token_info(p: Principal, now: int) -> dict[str, Any]:
    """SPEC §2 ``/v1/token-info``: what the presented token is and how long it lives."""
    info: dict[str, Any] = {
        "type": p.kind, "issued_at": p.issued_at, "expires_at": p.expires_at,
        "expires_in": max(0, p.expires_at - now) if p.expires_at is not None else None,
        "scopes": sorted(p.scopes), "client_id": p.client_id or None,
    }
    if p.session is not None:
        info.update(session_id=p.session.id, session_issued_at=p.session.created_at,
                    idle_deadline=min(p.session.idle_deadline, p.session.expires_at),
                    session_expires_at=p.session.expires_at)
    info.update(p.details)
    return info


def session_view(s: Session, current: str | None) -> dict[str, Any]:
    return {"id": s.id, "client_id": s.client_id, "created_at": s.created_at,
            "last_used_at": s.last_used_at,
            "idle_deadline": min(s.idle_deadline, s.expires_at), "expires_at": s.expires_at,
            "device": s.device, "current": s.id == current}


def consent_view(c: Consent, client: Client | None) -> dict[str, Any]:
    return {"client_id": c.client_id, "client_name": client.name if client else c.client_id,
            "scopes": list(c.scopes), "created_at": c.created_at, "updated_at": c.updated_at}
