"""The stack's warm floor: the least CPU the peer's rows can cost on Tessera's parts.

Issue 27 holds Tessera's own CPU per refresh to 0.7 × node-oidc-provider's, and its
introspection of a refresh token to at most the peer's. What is the least that any
service built of the same parts (Chalice, boto3, PyJWT over ``cryptography``) pays
for the same answers on this machine? This module is that service: a Chalice app
whose routes do only what each answer cannot do without, and nothing SPEC asks
beyond it, measured as the CPU phase measures Tessera (the handler's process time
less the DynamoDB client's, ``bench.cpu.BotocoreTime``), in the same process, on
the same moto server, with the same session items.

* ``client_credentials``: parse the form, sign an ES256 access token, answer JSON.
* ``refresh`` / ``refresh_no_openid``: parse the form, one conditional UpdateItem
  (ALL_NEW) of a session item as Tessera stores it, an ES256 access token and, with
  ``openid``, an RS256 ID token (its ``at_hash``), answer JSON.
* ``introspect_refresh``: parse the form, one GetItem, compare the token's SHA-256,
  answer JSON.

Left out, though SPEC asks for them: client authentication, the tokens' prefix and
checksum, the successor's AES-GCM wrap for the grace window, reuse detection, the
idle deadline and the cap, scope and resource checks, the origin check, CORS, the
error middlewares and the disabled user's check. The difference between a row's
target and this floor is what a target leaves for all of them.
"""

from __future__ import annotations

import gc
import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from bench.cases import FORM, YOUNG_ROTATIONS
from bench.cpu import WARMUP, BotocoreTime, Samples, summarize
from bench.lambda_http import LambdaContext, LambdaDriver, Request, response_of
from bench.peer import COMPARED
from chalicelib.security.opaque import digest, same_digest
from chalicelib.services.tokens import at_hash

ISSUER = "http://127.0.0.1/bench-floor"
CLIENT_ID = "bench-floor"
TABLE = "bench-floor-sessions"
# The rows of the peer's table, by Tessera's case names.
CASES = tuple(case for case, *_ in COMPARED)


def _answer(body: dict[str, Any], status: int = 200) -> Any:
    from chalice import Response

    return Response(json.dumps(body), status_code=status,
                    headers={"Content-Type": "application/json", "Cache-Control": "no-store"})


def floor_app(client: Any, table: str, es256: Any, rs256: Any) -> Any:
    """The floor's Chalice app, on ``client`` and ``table``, signing with the two keys.

    A refresh token here is ``<session id>.<secret>``; the item keeps the secret's
    SHA-256 in ``rt_hash``, as Tessera's does."""
    import jwt
    from chalice import Chalice

    app = Chalice("bench-floor")

    def form() -> dict[str, str]:
        request = app.current_request
        assert request is not None
        raw = request.raw_body
        text = raw.decode("ascii") if isinstance(raw, bytes) else str(raw or "")
        return {k: v[0] for k, v in parse_qs(text).items()}

    def access_token(sub: str, scope: str, sid: str | None, now: int) -> str:
        claims = {"iss": ISSUER, "sub": sub, "aud": ISSUER, "exp": now + 300, "iat": now,
                  "jti": secrets.token_urlsafe(16), "client_id": CLIENT_ID, "scope": scope}
        if sid is not None:
            claims["sid"] = sid
        return jwt.encode(claims, es256, algorithm="ES256", headers={"kid": "es", "typ": "at+jwt"})

    @app.route("/token", methods=["POST"], content_types=[FORM["Content-Type"]])
    def token() -> Any:
        params, now = form(), int(time.time())
        if params.get("grant_type") == "client_credentials":
            return _answer({"access_token": access_token(CLIENT_ID, "api:read", None, now),
                            "token_type": "Bearer", "expires_in": 300})
        session_id, _, secret = params.get("refresh_token", "").partition(".")
        successor = secrets.token_urlsafe(16)
        try:
            item = client.update_item(
                TableName=table, Key={"id": {"S": session_id}},
                UpdateExpression="SET rt_hash = :new, last_used_at = :now",
                ConditionExpression="rt_hash = :old",
                ExpressionAttributeValues={":new": {"S": digest(successor)},
                                           ":old": {"S": digest(secret)},
                                           ":now": {"N": str(now)}},
                ReturnValues="ALL_NEW")["Attributes"]
        except client.exceptions.ConditionalCheckFailedException:
            return _answer({"error": "invalid_grant"}, 400)
        sub, scope = item["user_id"]["S"], item["scope"]["S"]
        at = access_token(sub, scope, session_id, now)
        body = {"access_token": at, "token_type": "Bearer", "expires_in": 300,
                "refresh_token": f"{session_id}.{successor}", "scope": scope}
        if "openid" in scope.split():
            body["id_token"] = jwt.encode(
                {"iss": ISSUER, "sub": sub, "aud": CLIENT_ID, "azp": CLIENT_ID, "exp": now + 300,
                 "iat": now, "auth_time": int(item["auth_time"]["N"]), "sid": session_id,
                 "at_hash": at_hash(at)}, rs256, algorithm="RS256", headers={"kid": "rs"})
        return _answer(body)

    @app.route("/introspect", methods=["POST"], content_types=[FORM["Content-Type"]])
    def introspect() -> Any:
        session_id, _, secret = form().get("token", "").partition(".")
        item = client.get_item(TableName=table, Key={"id": {"S": session_id}}).get("Item")
        if item is None or not same_digest(item["rt_hash"]["S"], digest(secret)):
            return _answer({"active": False})
        return _answer({"active": True, "scope": item["scope"]["S"],
                        "client_id": item["client_id"]["S"], "sub": item["user_id"]["S"],
                        "exp": int(item["expires_at"]["N"]), "sid": session_id})

    return app


class Sessions:
    """Session items of the floor, copies of a template item of Tessera's: each refreshed
    as often as the CPU phase's young sessions (``YOUNG_ROTATIONS``), then a new one."""

    def __init__(self, client: Any, table: str, template: dict[str, Any]) -> None:
        self.client, self.table, self.template = client, table, template
        self.current, self.rotations = "", YOUNG_ROTATIONS

    def new(self) -> str:
        session_id, secret = secrets.token_urlsafe(12), secrets.token_urlsafe(16)
        item = {**self.template, "id": {"S": session_id}, "rt_hash": {"S": digest(secret)}}
        self.client.put_item(TableName=self.table, Item=item)
        return f"{session_id}.{secret}"

    def token(self) -> str:
        if self.rotations >= YOUNG_ROTATIONS:
            self.current, self.rotations = self.new(), 0
        return self.current

    def rotated(self, token: str) -> None:
        self.current, self.rotations = token, self.rotations + 1


def create_table(client: Any, table: str = TABLE) -> None:
    if table in client.list_tables()["TableNames"]:
        return
    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])


def _keys() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from chalicelib.services.signing import RSA_BITS

    return (ec.generate_private_key(ec.SECP256R1()),
            rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS))


def measure(client: Any, templates: dict[str, dict[str, Any]], iterations: int,
            log: Callable[[str], None] = print, table: str = TABLE) -> dict[str, Any]:
    """Own CPU per request of each of ``CASES`` on the floor, ``iterations`` in a row
    after ``WARMUP`` unmeasured ones. ``templates``: a raw session item (DynamoDB
    JSON) of Tessera's per refresh case, ``refresh`` with ``openid`` in its scope,
    ``refresh_no_openid`` without."""
    create_table(client, table)
    es256, rs256 = _keys()
    driver = LambdaDriver(floor_app(client, table, es256, rs256))
    sessions = {case: Sessions(client, table, item) for case, item in templates.items()}
    introspected = Sessions(client, table, templates["refresh_no_openid"])

    def request(case: str) -> tuple[Request, Callable[[dict[str, Any]], None]]:
        if case == "client_credentials":
            return (Request("POST", "/token", FORM, b"grant_type=client_credentials"),
                    lambda body: None)
        if case == "introspect_refresh":
            return (Request("POST", "/introspect", FORM, f"token={introspected.token()}".encode()),
                    _expect_active)
        s = sessions[case]
        return (Request("POST", "/token", FORM,
                        f"grant_type=refresh_token&refresh_token={s.token()}".encode()),
                lambda body: s.rotated(body["refresh_token"]))

    inside = BotocoreTime(client)
    out: dict[str, Any] = {}
    try:
        for case in CASES:
            samples = Samples()
            gc.collect()
            for i in range(WARMUP + iterations):
                r, after = request(case)
                event = driver.event(r)
                inside.take()
                c0, w0 = time.process_time(), time.perf_counter()
                raw = driver.app(event, LambdaContext())
                c1, w1 = time.process_time(), time.perf_counter()
                spent = inside.take()
                response = response_of(raw)
                if response.status != 200:
                    raise AssertionError(f"floor {case}: {response.status} {response.body[:200]!r}")
                after(response.json())
                if i >= WARMUP:
                    samples.cpu.append(c1 - c0)
                    samples.botocore.append(spent)
                    samples.wall.append(w1 - w0)
            # the figures of the CPU phase's cases (own_cpu_ms among them)
            out[case] = summarize(samples)
    finally:
        inside.close()
    log("  the stack's floor: " + ", ".join(f"{k} {v['own_cpu_ms']['median']:.3f} ms"
                                            for k, v in out.items()))
    return out


def _expect_active(body: dict[str, Any]) -> None:
    if body.get("active") is not True:
        raise AssertionError(f"floor introspect_refresh: {body!r}")
