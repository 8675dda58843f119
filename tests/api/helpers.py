"""Small helpers for API tests: form posts and seeded identities."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

CLI = "cf83e1357eefb8bd"
RS = "resource-server"
RS_SECRET = "resource-server-secret-value"
ALL_SCOPES = ["openid", "profile", "email", "offline_access", "tokens:read", "tokens:manage",
              "roles:manage", "sessions:manage", "api:read", "api:write"]


def seed(ctr: Any) -> None:
    ids = ctr.identities
    ids.create_user("alice", "password4alice", email="alice@example.com", firstname="Alice",
                    lastname="Liddell")
    ids.create_user("bob", "password4bob", email="bob@example.com", firstname="Bob",
                    lastname="Builder")
    ids.create_client(CLI, public=True, grant_types=[
        "password", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        scopes=ALL_SCOPES)
    ids.create_client(RS, secret=RS_SECRET, grant_types=["client_credentials"], introspect=True)
    ids.create_client("other-cli", public=True, grant_types=["password", "refresh_token"],
                      scopes=ALL_SCOPES)
    ids.create_client("no-password", public=True, grant_types=["refresh_token"], scopes=ALL_SCOPES)


def form(client: Any, path: str, headers: dict[str, str] | None = None, **params: str) -> Any:
    body = urlencode(params).encode()
    hdrs = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    return client.http.post(path, body=body, headers=hdrs)


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: Any, username: str = "alice", password: str = "password4alice",
          client_id: str = CLI, **extra: str) -> Any:
    return form(client, "/oauth/token", grant_type="password", client_id=client_id,
                username=username, password=password, **extra)


def tokens(client: Any, **kw: str) -> dict[str, Any]:
    response = login(client, **kw)
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def refresh(client: Any, refresh_token: str, client_id: str = CLI, **extra: str) -> Any:
    return form(client, "/oauth/token", grant_type="refresh_token", client_id=client_id,
                refresh_token=refresh_token, **extra)


def body(response: Any) -> Any:
    return json.loads(response.body)
