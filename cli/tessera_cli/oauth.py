"""The OAuth side of the CLI: discovery, device login, refresh, revocation, and the
RFC 8693 exchange of a CI job's OIDC token (SPEC §6, §10). Endpoints come from
``/.well-known/openid-configuration``; only the JSON API paths (``/v1/*``) are
fixed relative to the server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tessera_cli.errors import CliError, NotLoggedIn
from tessera_cli.http import Http, Unreachable, error_message, json_of
from tessera_cli.polling import PollSchedule, Transient, poll_until_done
from tessera_cli.store import Credentials
from tessera_cli.wire import DeviceAuthorization, Discovery, TokenResponse, parse

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"


def discover(http: Http, server: str) -> Discovery:
    response = http.send("GET", f"{server}/.well-known/openid-configuration")
    if response.status_code != 200:
        raise CliError(f"{server} is not a Tessera server (discovery answered "
                       f"{response.status_code})")
    return parse(Discovery, json_of(response), "discovery document")


def start_device_login(http: Http, found: Discovery, client_id: str, scope: str) -> DeviceAuthorization:
    if not found.device_authorization_endpoint:
        raise CliError("the server does not offer the device flow")
    # No scope: the server grants every scope the client is registered for.
    data = {"client_id": client_id, "scope": scope} if scope else {"client_id": client_id}
    response = http.send("POST", found.device_authorization_endpoint, data=data)
    if response.status_code != 200:
        raise CliError(f"cannot start the login: {error_message(response)}")
    return parse(DeviceAuthorization, json_of(response), "device authorization")


def wait_for_approval(http: Http, found: Discovery, client_id: str, started: DeviceAuthorization,
                      clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep) -> TokenResponse:
    def poll() -> tuple[int, Any]:
        try:
            response = http.send("POST", found.token_endpoint, data={
                "grant_type": DEVICE_GRANT, "device_code": started.device_code, "client_id": client_id})
        except Unreachable as exc:
            raise Transient(str(exc)) from exc
        if response.status_code >= 500:
            raise Transient(error_message(response))
        return response.status_code, json_of(response)

    schedule = PollSchedule.start(started.interval, started.expires_in, clock())
    return parse(TokenResponse, poll_until_done(poll, schedule, clock, sleep), "token response")


def credentials(server: str, client_id: str, found: Discovery | Credentials, tokens: TokenResponse,
                now: float, previous: Credentials | None = None) -> Credentials:
    return Credentials(
        server=server, client_id=client_id, token_endpoint=found.token_endpoint,
        revocation_endpoint=found.revocation_endpoint, access_token=tokens.access_token,
        # RFC 6749 §6: a refresh answer may omit refresh_token; the old one stays valid then.
        refresh_token=tokens.refresh_token or (previous.refresh_token if previous else None),
        expires_at=int(now) + (tokens.expires_in if tokens.expires_in is not None else 300),
        scope=tokens.scope or (previous.scope if previous else ""))


def refresh(http: Http, creds: Credentials, now: float) -> Credentials:
    """RFC 6749 §6; the refresh token rotates (SPEC §3)."""
    if not creds.refresh_token:
        raise NotLoggedIn("your login has expired; run `tessera login`")
    response = http.send("POST", creds.token_endpoint, data={
        "grant_type": "refresh_token", "refresh_token": creds.refresh_token, "client_id": creds.client_id})
    if response.status_code == 400 and (json_of(response) or {}).get("error") == "invalid_grant":
        raise NotLoggedIn("your login has expired or was ended; run `tessera login`")
    if response.status_code != 200:
        raise CliError(f"cannot refresh the token: {error_message(response)}")
    tokens = parse(TokenResponse, json_of(response), "token response")
    return credentials(creds.server, creds.client_id, creds, tokens, now, previous=creds)


def revoke(http: Http, creds: Credentials) -> None:
    """RFC 7009: revoking the refresh token ends its session (SPEC §2)."""
    if not creds.revocation_endpoint or not creds.refresh_token:
        raise CliError("the server offers no revocation endpoint")
    response = http.send("POST", creds.revocation_endpoint, data={
        "token": creds.refresh_token, "token_type_hint": "refresh_token", "client_id": creds.client_id})
    if response.status_code != 200:
        raise CliError(f"the server did not end the session: {error_message(response)}")


def exchange_job_token(http: Http, found: Discovery, job_token: str, role: str) -> TokenResponse:
    """RFC 8693 §2.1 with the job's OIDC ID token; no client authentication (SPEC §6)."""
    response = http.send("POST", found.token_endpoint, data={
        "grant_type": EXCHANGE_GRANT, "subject_token": job_token,
        "subject_token_type": ID_TOKEN_TYPE, "audience": f"urn:tessera:role:{role}"})
    if response.status_code != 200:
        raise CliError(f"the server refused the job token: {error_message(response)}")
    return parse(TokenResponse, json_of(response), "token exchange response")
