"""DynamoDB round trips per request (SPEC §9, issue 6): exact counts, so a regression fails CI.

Every endpoint case of ``bench/cases.py`` is served through the Lambda handler
(``app(event, context)``) against moto, and the calls on the service's one
DynamoDB client are counted with a botocore event hook. Before the counted
request each case is served once: the per-instance caches are then warm, as on
any Lambda instance after its first request. Those caches are the key set
(``TESSERA_KEY_CACHE_SECONDS``) and the client directory (60 s): a refresh on an
instance that has not seen its client for a minute reads it once more
(``test_a_cold_client_cache_costs_one_batch_read``).
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import pytest

from bench.cases import CASES, World, case, load_demo_seed
from bench.dynamo_meter import DynamoMeter
from bench.lambda_http import LambdaDriver
from tests.faults import CountingKeyStore

# Round trips of one warm request, by DynamoDB operation.
EXPECTED: dict[str, dict[str, int]] = {
    "discovery": {},
    "jwks": {},
    # user, both failure counters (and the client when not cached): one batch read; then
    # one transaction: the session, its entry on the (still active, unchanged) user, and
    # (after failures) the user's counter, which must not be locked
    "password_grant": {"BatchGetItem": 1, "TransactWriteItems": 1},
    # the rotation is one conditional UpdateItem, and nothing is read
    "refresh": {"UpdateItem": 1},
    # the same without openid (no ID token): the ID token costs no round trip
    "refresh_no_openid": {"UpdateItem": 1},
    # the request and its user-code reservation, in one transaction
    "device_authorization": {"TransactWriteItems": 1},
    # SPEC §9 says "1 read"; the code records the poll time in one conditional
    # write instead, which RFC 8628 §3.5 slow_down needs, and reads nothing
    "device_poll_pending": {"UpdateItem": 1},
    # the poll (its condition fails: not pending, ALL_OLD says approved), the user,
    # then the code spent, the session created and recorded on the user in one transaction
    "device_poll_approved": {"UpdateItem": 1, "GetItem": 1, "TransactWriteItems": 1},
    # a service client's own token (RFC 6749 §4.4): the client is cached like any
    # other, the JWT needs no state, so nothing is read or written once warm
    "client_credentials": {},
    # a JWT is verified offline; its session and user are one batch read
    "introspect_jwt": {"BatchGetItem": 1},
    # the session, then its user (a disabled user's refresh token is inactive)
    "introspect_refresh": {"GetItem": 2},
    "me_jwt": {"BatchGetItem": 1},
    "token_info_jwt": {"BatchGetItem": 1},
    "userinfo_jwt": {"BatchGetItem": 1},
    "revoke_refresh": {"DeleteItem": 1},
    # the session's end and its security-log entry (SPEC §11) are one transaction:
    # still one write, so that the end never commits without its entry
    "logout": {"BatchGetItem": 1, "TransactWriteItems": 1},
    # listing is the one request path that queries (the by_user index, one page)
    "sessions_list": {"BatchGetItem": 1, "Query": 1},
    # the caller's session and user; the delete, conditional on the owner, and its
    # security-log entry in one transaction
    "session_end": {"BatchGetItem": 1, "TransactWriteItems": 1},
    "device_page": {},
    # web session and its user, the code with its guess counters, the request, the decision
    "device_page_approve": {"GetItem": 3, "BatchGetItem": 1, "UpdateItem": 1},
    # the caller's session and user; the token, its owner's counter and the count, in one transaction
    "pat_generate": {"BatchGetItem": 1, "TransactWriteItems": 1},
    # a PAT and its owner: one batch read (last_used_at is written at most every 10 minutes)
    "me_pat": {"BatchGetItem": 1},
    "introspect_pat": {"BatchGetItem": 1},
    # SPEC §9: a role key is its role and owner, one batch read; last_used_at is
    # written at most every 10 minutes (not due on a warm path), and
    # client_credentials with a role key reads nothing else: no clients-table lookup
    "me_role_key": {"BatchGetItem": 1},
    "client_credentials_role_key": {"BatchGetItem": 1},
    "introspect_role_key": {"BatchGetItem": 1},
    # a role token is verified offline; its role and owner are one batch read
    "me_role_token": {"BatchGetItem": 1},
    # SPEC §9: the role and its owner in one batch read, the replay guard on the job
    # token's jti one conditional put (the issuer's keys are cached per instance)
    "token_exchange": {"BatchGetItem": 1, "PutItem": 1},
    # SPEC §9: the code spent by one conditional write (client, expiry, redirect URI and
    # PKCE in its condition; it returns the code's bindings and user snapshot), then one
    # transaction: the session, its entry on the (unchanged) user, the consent check
    "authorization_code": {"UpdateItem": 1, "TransactWriteItems": 1},
    # the presented token is verified offline; its session, its user and the person's
    # consent to the app (and the app, when not cached) are one batch read; no write
    "delegation": {"BatchGetItem": 1},
}

QUERY_ALLOWED = {"sessions_list"}


@pytest.fixture
def world(ctr: Any) -> World:
    from app import app

    return World(LambdaDriver(app), ctr, load_demo_seed(ctr))


@pytest.fixture
def meter(ctr: Any) -> Any:
    m = DynamoMeter(ctr.dynamodb())
    yield m
    m.close()


def warm_round_trips(world: World, meter: DynamoMeter, name: str) -> Counter[str]:
    """Calls of one request of the case, after one request of it warmed the caches."""
    c = case(name)
    c.serve(world)
    request = c.request(world)
    meter.take()
    c.check(world, world.send(request))
    return meter.take().calls


def test_every_endpoint_case_has_a_budget() -> None:
    assert sorted(EXPECTED) == sorted(c.name for c in CASES)


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_each_endpoint_makes_exactly_its_budgeted_round_trips(world: World, meter: DynamoMeter,
                                                              name: str) -> None:
    assert dict(warm_round_trips(world, meter, name)) == EXPECTED[name]


def test_no_scan_anywhere_and_no_query_outside_listing(world: World, meter: DynamoMeter) -> None:
    for c in CASES:
        calls = warm_round_trips(world, meter, c.name)
        assert "Scan" not in calls, c.name
        if c.name not in QUERY_ALLOWED:
            assert "Query" not in calls, c.name


def test_the_first_request_of_an_instance_reads_no_more_than_its_caches(world: World,
                                                                         meter: DynamoMeter) -> None:
    # discovery never touches DynamoDB, not even on a cold instance
    case("discovery").serve(world)
    assert meter.take().round_trips == 0


def test_a_new_instance_reads_the_public_keys_with_the_session_in_one_batch(
        world: World, meter: DynamoMeter, ctr: Any) -> None:
    """SPEC §9 holds on a cold instance too: /v1/me with a JWT is one read, the
    published public keys read in the same BatchGetItem as the session and user."""
    from chalicelib import container as container_module
    from chalicelib.container import Container

    me = case("me_jwt").request(world)
    container_module.use(Container(ctr.settings, ctr.clock))   # a new instance
    meter.take()
    case("me_jwt").check(world, world.send(me))
    assert dict(meter.take().calls) == {"BatchGetItem": 1}
    case("jwks").serve(world)                                   # the keys are cached now
    assert meter.take().round_trips == 0


def test_on_a_new_instance_a_forged_token_read_with_its_session_is_still_refused(
        world: World, ctr: Any) -> None:
    """The batch read before verification uses nothing it read until the token verifies."""
    import base64
    import json as json_module

    from chalicelib import container as container_module
    from chalicelib.container import Container

    token = world.access_token
    head, body, signature = token.split(".")
    claims = json_module.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["scope"] = claims.get("scope", "") + " roles:manage"
    forged_body = base64.urlsafe_b64encode(json_module.dumps(claims).encode()).rstrip(b"=").decode()
    container_module.use(Container(ctr.settings, ctr.clock))   # a new instance
    answer = world.send(world.get("/v1/me", f"{head}.{forged_body}.{signature}"))
    assert answer.status == 401


def test_a_verifying_instance_reads_the_published_public_keys_once(
        world: World, meter: DynamoMeter, ctr: Any) -> None:
    """An instance that has not signed reads the public keys from their one item
    (not Secrets Manager), once: the JWKS and every verification after it use the
    cached keys."""
    from chalicelib import container as container_module
    from chalicelib.container import Container

    me = case("me_jwt").request(world)        # signed here: this instance published the keys
    container_module.use(Container(ctr.settings, ctr.clock))   # another, new instance
    meter.take()
    case("jwks").serve(world)
    assert dict(meter.take().calls) == {"GetItem": 1}
    case("jwks").serve(world)
    assert meter.take().round_trips == 0
    case("me_jwt").check(world, world.send(me))
    assert dict(meter.take().calls) == {"BatchGetItem": 1}


def test_a_cold_client_cache_costs_one_batch_read(world: World, meter: DynamoMeter, ctr: Any,
                                                  clock: Any) -> None:
    c = case("refresh")
    c.serve(world)
    clock.advance(61)      # the client directory keeps a client for 60 s
    request = c.request(world)
    meter.take()
    c.check(world, world.send(request))
    assert dict(meter.take().calls) == {"BatchGetItem": 1, "UpdateItem": 1}
    request = c.request(world)
    c.check(world, world.send(request))
    assert dict(meter.take().calls) == {"UpdateItem": 1}


def test_a_role_key_writes_its_last_use_only_when_ten_minutes_have_passed(
        world: World, meter: DynamoMeter, clock: Any) -> None:
    c = case("client_credentials_role_key")
    c.serve(world)          # the key's first use: last_used_at is written
    for advance, calls in ((599, {"BatchGetItem": 1}), (2, {"BatchGetItem": 1, "UpdateItem": 1}),
                           (1, {"BatchGetItem": 1})):
        clock.advance(advance)
        request = c.request(world)
        meter.take()
        c.check(world, world.send(request))
        assert dict(meter.take().calls) == calls, advance


def test_a_delegation_reads_the_client_in_the_same_batch_when_not_cached(
        world: World, meter: DynamoMeter, clock: Any) -> None:
    c = case("delegation")
    c.serve(world)
    clock.advance(61)      # the client directory keeps a client for 60 s
    request = c.request(world)
    meter.take()
    c.check(world, world.send(request))
    assert dict(meter.take().calls) == {"BatchGetItem": 1}


def test_verifying_a_jwt_needs_no_round_trip(world: World, meter: DynamoMeter, ctr: Any) -> None:
    import jwt

    from bench.lambda_http import Request

    token = world.access_token
    jwks = world.expect(Request("GET", "/.well-known/jwks.json")).json()
    meter.take()
    # a resource server: offline, with the published JWKS and pyjwt
    header = jwt.get_unverified_header(token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=[key["alg"]],
                        audience=ctr.settings.issuer, issuer=ctr.settings.issuer,
                        options={"verify_exp": False, "verify_iat": False})   # the fake clock is not now
    # and the service's own verification (keys cached per instance)
    ours = ctr.principals.verify_access_token(token, ctr.settings.issuer)
    assert claims["sub"] == ours["sub"]
    assert meter.take().round_trips == 0


# -- no key work on the request path after the first request ------------------------------


class CallWatcher:
    """Counts calls of named functions (Python or built-in) with a profile hook."""

    def __init__(self, *names: str) -> None:
        self.names = set(names)
        self.seen: Counter[str] = Counter()

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_name in self.names:
            self.seen[frame.f_code.co_qualname] += 1
        elif event == "c_call" and getattr(arg, "__name__", "") in self.names:
            self.seen[arg.__name__] += 1

    def __enter__(self) -> CallWatcher:
        sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)


def test_no_key_parsing_jwks_building_or_key_fetch_after_the_first_request(
        ctr: Any, meter: DynamoMeter) -> None:
    from app import app
    from chalicelib.storage.dynamo import aws_client

    # the key store is injected through the composition root, before anything uses it
    store = CountingKeyStore(ctr.keystore)
    ctr.keystore = store
    world = World(LambdaDriver(app), ctr, load_demo_seed(ctr))
    secrets_calls: Counter[str] = Counter()
    aws_client("secretsmanager").meta.events.register(
        "before-parameter-build.secrets-manager",
        lambda model, **_: secrets_calls.update([model.name]))
    watched = ("load_pem_private_key", "generate_key", "_create_initial", "__init__")
    with CallWatcher(*watched) as first:     # first requests: keys created, fetched, parsed
        for c in CASES:
            c.serve(world)
    assert store.loads >= 1 and secrets_calls["GetSecretValue"] >= 1
    assert first.seen["load_pem_private_key"] >= 1 and first.seen["_Loaded.__init__"] >= 1
    loads, secrets_calls_before = store.loads, sum(secrets_calls.values())
    with CallWatcher(*watched) as watcher:
        for c in CASES:
            c.serve(world)
    assert store.loads == loads
    assert sum(secrets_calls.values()) == secrets_calls_before
    assert watcher.seen["load_pem_private_key"] == 0
    assert watcher.seen["generate_key"] == 0
    assert watcher.seen["KeyRing._create_initial"] == 0
    assert watcher.seen["_Loaded.__init__"] == 0       # the JWKS document is built there
