"""Each scope in words, as the device approval and consent pages list it (SPEC §7)."""

from __future__ import annotations

from chalicelib.web.page import esc

SCOPE_TEXT = {
    "openid": "Confirm who you are",
    "profile": "See your name and username",
    "email": "See your email address",
    "offline_access": "Stay signed in on the device",
    "tokens:read": "List your personal access tokens",
    "tokens:manage": "Create, change and remove your personal access tokens",
    "roles:manage": "Create and remove your roles, their policies, keys and trusted CI systems",
    "sessions:manage": "See where you are signed in and sign devices out",
    "api:read": "Read data through the platform's APIs",
    "api:write": "Change data through the platform's APIs",
}


def scope_items(scopes: list[str] | tuple[str, ...]) -> str:
    """``<li>`` items: each scope in words, then its name."""
    return "".join(f"<li>{esc(SCOPE_TEXT.get(s, s))} <span class=\"hint\">({esc(s)})</span></li>"
                   for s in scopes) or "<li>Sign in only</li>"
