"""Each scope in words, as the device approval and consent pages list it (SPEC §7);
``templates/_forms.html`` (``scope_items``) prints them."""

from __future__ import annotations

SCOPE_TEXT = {
    "openid": "Confirm who you are",
    "profile": "See your name and username",
    "email": "See your email address",
    "offline_access": "Stay signed in on the device",
    "tokens:read": "List your personal access tokens",
    "tokens:manage": "Create, change and remove your personal access tokens",
    "roles:manage": "Create and remove your roles, their policies, keys and trusted CI systems",
    "sessions:manage": "See where you are signed in and sign devices out",
    "users:invite": "Invite people to create an account",
    "api:read": "Read data through the platform's APIs",
    "api:write": "Change data through the platform's APIs",
}
