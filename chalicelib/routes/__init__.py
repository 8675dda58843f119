"""Thin blueprints, one per area. ``endpoints()`` feeds discovery."""

from __future__ import annotations

# Discovery metadata name -> path, for the endpoints that exist.
_ENDPOINTS: dict[str, str] = {
    "authorization_endpoint": "/oauth/authorize",
    "end_session_endpoint": "/oauth/logout",
    "revocation_endpoint": "/oauth/revoke",
    "introspection_endpoint": "/oauth/introspect",
    "userinfo_endpoint": "/oauth/userinfo",
    "device_authorization_endpoint": "/oauth/device_authorization",
}


def endpoints() -> dict[str, str]:
    return dict(_ENDPOINTS)
