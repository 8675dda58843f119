"""The OAuth answers the CLI relies on, checked with pydantic (imported only by the
commands that talk to the server: login, refresh, logout, job token).

A server that answers without a member a flow needs gets one clear error line,
not a traceback.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tessera_cli.errors import CliError

M = TypeVar("M", bound="Wire")


class Wire(BaseModel):
    # Servers may add members (RFC 8414 §2, RFC 6749 §5.1): unknown ones are ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Discovery(Wire):
    """OIDC Discovery §3 / RFC 8414 §2: the endpoints the CLI uses."""

    issuer: str
    token_endpoint: str
    device_authorization_endpoint: str | None = None
    revocation_endpoint: str | None = None
    scopes_supported: list[str] = Field(default_factory=list)
    grant_types_supported: list[str] = Field(default_factory=list)


class DeviceAuthorization(Wire):
    """RFC 8628 §3.2."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None = None
    expires_in: int = Field(gt=0)
    interval: int = Field(default=5, ge=1)  # §3.2: 5 when absent


class TokenResponse(Wire):
    """RFC 6749 §5.1 (and RFC 8693 §2.2.1 for token exchange)."""

    access_token: str
    token_type: str
    expires_in: int | None = None
    refresh_token: str | None = None
    scope: str | None = None
    issued_token_type: str | None = None


def parse(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise CliError(f"the server's {what} is malformed ({where}: {first['msg']})") from exc
