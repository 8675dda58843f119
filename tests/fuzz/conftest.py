"""Fixtures of the fuzz suite: a target (the app in process behind chalice.local's
gateway, or the real local runner over HTTP) and the seeded account's credentials
to mix into hostile requests.

``TESSERA_FUZZ_EXAMPLES`` and ``TESSERA_FUZZ_LIVE_EXAMPLES`` set the campaigns' sizes
(400 in process and 120 over HTTP in `make test`; `make fuzz` runs far more).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import pytest

from tests.api.helpers import CLI, RS, RS_SECRET, seed
from tests.e2e.conftest import live_server  # noqa: F401  (the real runner, for the live target)
from tests.fuzz.formats import Answer, served_path
from tests.fuzz.strategies import Credentials, FuzzRequest

EXAMPLES = int(os.environ.get("TESSERA_FUZZ_EXAMPLES", "400"))
LIVE_EXAMPLES = int(os.environ.get("TESSERA_FUZZ_LIVE_EXAMPLES", "120"))
DEMO_RS_SECRET = "resource-server-local-secret"
ROLE = "alice.fuzz"


class Target(Protocol):
    def routes(self) -> list[tuple[str, str]]: ...
    def send(self, request: FuzzRequest) -> Answer: ...


def _app_routes() -> list[tuple[str, str]]:
    from app import app

    return sorted((path, method) for path, methods in app.routes.items() for method in methods)


class InProcess:
    """Sends a request through chalice.local's API Gateway stand-in (the local
    runner's, which answers unknown routes with problem JSON) to the Lambda handler.
    """

    def __init__(self) -> None:
        from chalice.config import Config

        from app import app
        from devserver import ProblemGateway

        config = Config.create(chalice_stage="local", app_name=app.app_name, lambda_timeout=60,
                               lambda_memory_size=512)
        self.gateway = ProblemGateway(app, config)

    def routes(self) -> list[tuple[str, str]]:
        return _app_routes()

    def send(self, request: FuzzRequest) -> Answer:
        from chalice.local import LocalGatewayException

        try:
            # As the runner's HTTP layer does before its gateway sees the path.
            raw = self.gateway.handle_request(method=request.method, path=served_path(request.path),
                                              headers=dict(request.headers), body=request.body)
        except LocalGatewayException as exc:
            return Answer(exc.CODE, {k.lower(): str(v) for k, v in exc.headers.items()},
                          exc.body or b"")
        body = raw.get("body") or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = {k.lower(): str(v) for k, v in (raw.get("headers") or {}).items()}
        for k, values in (raw.get("multiValueHeaders") or {}).items():
            headers[k.lower()] = ", ".join(str(v) for v in values)
        return Answer(int(raw["statusCode"]), headers, body)


class OverHttp:
    """Sends a request to the real local runner over one keep-alive connection."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.conn: http.client.HTTPConnection | None = None

    def routes(self) -> list[tuple[str, str]]:
        return _app_routes()

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def send(self, request: FuzzRequest) -> Answer:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.putrequest(request.method, request.path, skip_accept_encoding=True)
                for name, value in request.headers.items():
                    self.conn.putheader(name, value.encode("utf-8", "surrogateescape"))
                self.conn.putheader("Content-Length", str(len(request.body)))
                self.conn.endheaders(request.body)
                response = self.conn.getresponse()
                body = response.read()
                answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
                if response.will_close:
                    self.conn.close()
                    self.conn = None
                return answer
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server may close a kept-alive connection between requests; a reset
                # in the middle of a request is a finding, so only the first try is forgiven.
                self._drop()
                if attempt == 2:
                    raise
            except Exception:
                self._drop()   # a garbled answer (a body after HEAD, say) is a finding
                raise
        raise AssertionError("unreachable")


def _form(target: Target, path: str, params: dict[str, str]) -> Answer:
    return target.send(FuzzRequest("POST", path, {"Content-Type": "application/x-www-form-urlencoded"},
                                   urlencode(params).encode()))


class Account:
    """The seeded account's credentials, kept alive: hostile requests log out,
    revoke and regenerate, so after each request the dead ones are minted again.
    """

    def __init__(self, target: Target, forget_failures: Callable[[], None], rs_secret: str) -> None:
        self.target, self.forget_failures = target, forget_failures
        self.creds = Credentials(client_basic=(RS, rs_secret), extra={"client": CLI})
        self.heal()

    def _alive(self, token: str) -> bool:
        if not token:
            return False
        answer = self.target.send(FuzzRequest("GET", "/v1/me", {"Authorization": f"Bearer {token}"}, b""))
        return answer.status == 200

    def heal(self) -> None:
        creds = self.creds
        if not self._alive(creds.access_token):
            # The campaign's wrong passwords lock alice and the source out; the fixture's
            # own sign-in is not what is under test, so it starts from a clean slate.
            self.forget_failures()
            answer = _form(self.target, "/oauth/token", {
                "grant_type": "password", "client_id": CLI, "username": "alice",
                "password": "password4alice",
                "scope": "openid profile email tokens:manage roles:manage api:read"})
            assert answer.status == 200, answer.body
            grant = json.loads(answer.body)
            creds.access_token, creds.refresh_token = grant["access_token"], grant["refresh_token"]
            claims = json.loads(base64.urlsafe_b64decode(creds.access_token.split(".")[1] + "=="))
            creds.session_id = str(claims.get("sid", ""))
        if not self._alive(creds.pat):
            made = self.target.send(FuzzRequest(
                "POST", "/v1/tokens", {"Authorization": f"Bearer {creds.access_token}",
                                       "Content-Type": "application/json"},
                json.dumps({"description": "fuzz", "api_set": "ide-plugins"}).encode()))
            assert made.status == 201, made.body
            created = json.loads(made.body)
            creds.pat, creds.pat_id = created["token"], created["id"]
        if not self._role_alive():
            self._make_role()

    def _send_json(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Answer:
        headers = {"Authorization": f"Bearer {self.creds.access_token}"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        return self.target.send(FuzzRequest(method, path, headers,
                                            json.dumps(payload).encode() if payload is not None else b""))

    def _role_alive(self) -> bool:
        return self._send_json("GET", f"/v1/roles/{ROLE}").status == 200

    def _make_role(self) -> None:
        """alice's role with a policy, a key and a trust policy, so that the roles API's
        paths are reached with real ids (a hostile request may delete any of them)."""
        made = {}
        for path, payload in (("/v1/roles", {"name": ROLE}),
                              (f"/v1/roles/{ROLE}/policies",
                               {"permission": "data:get@urn:tessera:data:alice.fuzz"}),
                              (f"/v1/roles/{ROLE}/keys", {"description": "fuzz"}),
                              (f"/v1/roles/{ROLE}/trust", {
                                  "issuer": "https://token.actions.githubusercontent.com",
                                  "audience": "tessera", "subject": "repo:acme/fuzz:*"})):
            answer = self._send_json("POST", path, payload)
            assert answer.status == 201, (path, answer.body)
            made[path.rsplit("/", 1)[-1]] = json.loads(answer.body)
        # No passkey of alice's (enrolling one needs an authenticator): an id of the right
        # shape that names none (404), as for any other missing item.
        self.creds.extra.update(name=ROLE, policy_id=made["policies"]["id"],
                                key_id=made["keys"]["id"], trust_id=made["trust"]["id"],
                                passkey_id="0123456789abcdef")


def _clear_table(dynamodb: Any, table: str) -> None:
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page.get("Items", []):
            dynamodb.delete_item(TableName=table, Key={"pk": item["pk"]})


@pytest.fixture
def live_target(request: pytest.FixtureRequest) -> Iterator[tuple[Target, Account]]:
    """The real local runner over HTTP, with the demo seed."""
    import boto3

    server = request.getfixturevalue("live_server")
    env = server.admin_env
    dynamodb = boto3.client("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    table = f"tessera-{env['TESSERA_STAGE']}-throttle"
    live = OverHttp(server.base_url)
    yield live, Account(live, lambda: _clear_table(dynamodb, table), DEMO_RS_SECRET)


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Iterator[tuple[Target, Account]]:
    """The app in process behind chalice.local's gateway, on moto, with the test seed."""
    ctr = request.getfixturevalue("ctr")
    request.getfixturevalue("client")
    seed(ctr)
    local = InProcess()
    yield local, Account(local, lambda: _clear_table(ctr.dynamodb(), ctr.settings.table("throttle")),
                         RS_SECRET)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The campaign's request count and status histogram (and any breaches collected)."""
    from tests.fuzz import test_fuzz_routes as suite

    if not suite.HISTOGRAM:
        return
    total = sum(suite.HISTOGRAM.values())
    histogram = ", ".join(f"{status}: {n}" for status, n in sorted(suite.HISTOGRAM.items()))
    terminalreporter.write_line(f"fuzz: {total} requests; status histogram {histogram}")
    for line in suite.BREACHES:
        terminalreporter.write_line("breach: " + line)
