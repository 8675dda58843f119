"""CI job tokens by federation (SPEC §6, RFC 8693), end to end: the in-process app
exchanges job tokens of a real local OIDC issuer (``tests.oidc_issuer``), which
serves its discovery document and JWKS over HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from chalicelib.config import Settings
from chalicelib.storage.dynamo import aws_client
from chalicelib.storage.roles import owner_id_of
from tests.api.helpers import RS, RS_SECRET, basic, body, seed
from tests.api.test_token_endpoint_errors import assert_oauth_error
from tests.conftest import ISSUER, TEST_SCRYPT_LOG_N
from tests.faults import LostResponse
from tests.federation_support import (
    EXCHANGE,
    JWT_TYPE,
    POLICY,
    ROLE,
    exchange,
    make_role,
    trust,
)
from tests.oidc_issuer import DISCOVERY, JWKS, SUBJECT, OidcIssuer, SigningKey

NOT_ACCEPTED = "The subject token is not accepted for this role"
CONSOLE, CONSOLE_SECRET = "console", "console-secret-value"


@pytest.fixture
def issuer(ctr: Any) -> Iterator[OidcIssuer]:
    with OidcIssuer(ctr.clock.now) as running:
        yield running


@pytest.fixture
def stranger(ctr: Any) -> Iterator[OidcIssuer]:
    """Another issuer, which no role trusts."""
    with OidcIssuer(ctr.clock.now) as running:
        yield running


@pytest.fixture(autouse=True)
def _seeded(ctr: Any) -> None:
    seed(ctr)
    ctr.identities.create_client(CONSOLE, secret=CONSOLE_SECRET, grant_types=[EXCHANGE])


@pytest.fixture
def role(ctr: Any, issuer: OidcIssuer) -> Any:
    return make_role(ctr, trust(issuer.url, repository_owner="acme"))


def granted(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.body
    assert response.headers["Cache-Control"] == "no-store"
    parsed: dict[str, Any] = body(response)
    return parsed


def refused(response: Any) -> None:
    """invalid_grant with the one description every verification failure shares."""
    parsed = assert_oauth_error(response, 400, "invalid_grant")
    assert parsed["error_description"] == NOT_ACCEPTED


def verified(client: Any, token: str) -> dict[str, Any]:
    """The role token as a resource server checks it: offline, with the JWKS."""
    jwks = body(client.http.get("/.well-known/jwks.json"))
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims: dict[str, Any] = jwt.decode(
        token, jwt.PyJWK(key).key, algorithms=[key["alg"]], audience=ISSUER, issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False})   # the fake clock is not now
    return claims


# -- success -----------------------------------------------------------------------------

def test_a_trusted_job_token_gets_a_one_hour_role_token_that_records_the_job(
        client, ctr, issuer, role):
    answer = granted(exchange(client, issuer.mint()))
    assert answer["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600
    assert answer["scope"] == "data:get"
    assert "refresh_token" not in answer
    claims = verified(client, answer["access_token"])
    assert claims["sub"] == f"role:{ROLE}" and claims["role"] == ROLE
    assert claims["owner"] == owner_id_of(ROLE) == ctr.identities.find_user("alice").id
    assert claims["permissions"] == [POLICY]
    assert claims["act"] == {"sub": SUBJECT, "iss": issuer.url}
    assert claims["client_id"] == f"urn:tessera:role:{ROLE}"
    assert claims["exp"] - claims["iat"] == 3600 and claims["scope"] == "data:get"


def test_the_jwt_token_type_and_an_ec_signed_job_token_are_accepted(client, issuer, role):
    granted(exchange(client, issuer.mint(key=issuer.ec), subject_token_type=JWT_TYPE))


def test_an_audience_list_that_contains_the_policy_audience_is_accepted(client, issuer, role):
    granted(exchange(client, issuer.mint(aud=["https://github.com/acme", "tessera"])))


def test_a_trailing_star_subject_trusts_every_ref_of_the_repository(client, ctr, issuer):
    make_role(ctr, trust(issuer.url, "repo:acme/app:*"))
    granted(exchange(client, issuer.mint(sub="repo:acme/app:ref:refs/heads/feature")))
    granted(exchange(client, issuer.mint(sub="repo:acme/app:environment:prod")))
    refused(exchange(client, issuer.mint(sub="repo:acme/application:ref:refs/heads/main")))
    refused(exchange(client, issuer.mint(sub="repo:evil/app:ref:refs/heads/main")))


def test_one_matching_policy_among_several_is_enough(client, ctr, issuer):
    make_role(ctr, trust(issuer.url, "repo:acme/other:*", trust_id="a"),
              trust(issuer.url, "repo:acme/app:ref:refs/heads/main", trust_id="b"))
    granted(exchange(client, issuer.mint()))


def test_the_permissions_are_the_policies_within_the_owners_current_rights(client, ctr, issuer):
    make_role(ctr, trust(issuer.url), permissions=(POLICY, "data:put@urn:tessera:data:bob.x"))
    claims = verified(client, granted(exchange(client, issuer.mint()))["access_token"])
    assert claims["permissions"] == [POLICY]          # bob's namespace is not alice's to give
    ctr.identities.revoke_permission("alice", "*@urn:tessera:*:alice.*")
    answer = granted(exchange(client, issuer.mint()))
    assert verified(client, answer["access_token"])["permissions"] == []
    assert "scope" not in answer


def test_a_requested_scope_must_be_held_by_the_role_and_refusing_it_spends_nothing(
        client, issuer, role):
    token = issuer.mint()
    assert_oauth_error(exchange(client, token, scope="data:put"), 400, "invalid_scope")
    assert granted(exchange(client, token, scope="data:get"))["scope"] == "data:get"


# -- refusals: the job token ---------------------------------------------------------------

def test_a_job_token_of_another_subject_is_refused(client, issuer, role):
    refused(exchange(client, issuer.mint(sub="repo:acme/app:ref:refs/heads/evil")))


def test_a_job_token_for_another_audience_is_refused(client, issuer, role):
    refused(exchange(client, issuer.mint(aud="sts.amazonaws.com")))
    refused(exchange(client, issuer.mint(aud=["sts.amazonaws.com", "tessera-prod"])))


def test_a_listed_claim_must_be_equal(client, issuer, role):
    refused(exchange(client, issuer.mint(repository_owner="evil")))
    refused(exchange(client, issuer.mint(repository_owner=None)))


def test_a_job_token_expired_beyond_the_leeway_is_refused_and_within_it_accepted(
        client, ctr, issuer, role):
    now = ctr.clock.now()
    refused(exchange(client, issuer.mint(iat=now - 400, nbf=now - 400, exp=now - 61)))
    granted(exchange(client, issuer.mint(iat=now - 400, nbf=now - 400, exp=now - 30)))


def test_a_job_token_not_yet_valid_beyond_the_leeway_is_refused(client, ctr, issuer, role):
    now = ctr.clock.now()
    refused(exchange(client, issuer.mint(nbf=now + 120)))
    refused(exchange(client, issuer.mint(iat=now + 120)))
    granted(exchange(client, issuer.mint(nbf=now + 30, iat=now + 30)))


def test_a_job_token_signed_by_a_key_outside_the_jwks_is_refused(client, issuer, role):
    forger = SigningKey("forger", "RS256")
    refused(exchange(client, issuer.mint(key=forger, kid=issuer.rsa.kid)))
    refused(exchange(client, issuer.mint(key=forger)))


def test_a_tampered_job_token_is_refused(client, issuer, role):
    header, payload, signature = issuer.mint().split(".")
    other = issuer.mint(sub="repo:acme/app:ref:refs/heads/main").split(".")[1]
    refused(exchange(client, f"{header}.{other}.{signature}"))
    refused(exchange(client, f"{header}.{payload}.{signature[:-4]}AAAA"))


def test_a_job_token_with_alg_none_or_a_symmetric_alg_is_refused(client, issuer, role):
    claims = issuer.claims()
    refused(exchange(client, jwt.encode(claims, None, algorithm="none")))
    refused(exchange(client, jwt.encode(claims, "x" * 32, algorithm="HS256",
                                        headers={"kid": issuer.rsa.kid})))


def test_an_rsa_key_is_not_used_for_an_ec_algorithm(client, issuer, role):
    """The header's alg must fit the key the kid names (no algorithm confusion)."""
    refused(exchange(client, issuer.mint(key=issuer.ec, kid=issuer.rsa.kid)))


def test_a_job_token_without_jti_is_refused_as_jti_required(client, issuer, role):
    parsed = assert_oauth_error(exchange(client, issuer.mint(jti=None)), 400, "invalid_grant")
    assert parsed["error_description"].startswith("jti required")


def test_garbage_subject_tokens_are_refused_without_a_fetch(client, issuer, role):
    for junk in ("not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", "x" * 4000):
        refused(exchange(client, junk))
    assert issuer.requests == []


def test_a_job_token_used_twice_is_refused_the_second_time(client, issuer, role):
    token = issuer.mint()
    granted(exchange(client, token))
    refused(exchange(client, token))


def test_a_new_token_reusing_a_jti_is_refused(client, issuer, role):
    granted(exchange(client, issuer.mint(jti="run-1")))
    refused(exchange(client, issuer.mint(jti="run-1", ref="refs/heads/other")))
    granted(exchange(client, issuer.mint(jti="run-2")))


def test_an_exchange_whose_answer_was_lost_is_not_a_replay(client, ctr, issuer, role):
    """The SDK resends the replay guard's write after a lost answer: our own write."""
    def guard(body: dict) -> bool:
        return str(body.get("TableName", "")).endswith("replay")

    with LostResponse(aws_client("dynamodb"), "PutItem", when=guard) as fault:
        granted(exchange(client, issuer.mint()))
    assert len([body for body in fault.bodies if guard(body)]) == 2


# -- refusals: the issuer ------------------------------------------------------------------

def test_an_issuer_no_policy_names_is_never_fetched(client, issuer, stranger, role):
    refused(exchange(client, stranger.mint()))
    assert stranger.requests == [] and issuer.requests == []


def test_a_token_claiming_a_trusted_issuer_but_signed_by_another_is_refused(
        client, issuer, stranger, role):
    forged = stranger.rsa.sign(issuer.claims())
    refused(exchange(client, forged))
    assert stranger.requests == []


def test_an_issuer_that_is_down_is_asked_once_per_negative_cache_period(
        client, ctr, clock, issuer, role):
    issuer.down = True
    for _ in range(5):
        refused(exchange(client, issuer.mint()))
    assert issuer.requests == [DISCOVERY]
    clock.advance(ctr.settings.federation_negative_cache_seconds)
    issuer.down = False
    granted(exchange(client, issuer.mint()))
    assert issuer.requests == [DISCOVERY, DISCOVERY, JWKS]


def test_keys_are_cached_between_exchanges(client, issuer, role):
    for _ in range(3):
        granted(exchange(client, issuer.mint()))
    assert issuer.requests == [DISCOVERY, JWKS]


def test_a_key_rotated_in_at_the_issuer_is_fetched_once(client, clock, issuer, role):
    granted(exchange(client, issuer.mint()))
    assert len(issuer.requests) == 2
    # beyond the negative-cache period since the last fetch, an unknown kid refetches once
    clock.advance(31)
    issuer.rotate()
    granted(exchange(client, issuer.mint()))
    granted(exchange(client, issuer.mint()))
    assert issuer.requests == [DISCOVERY, JWKS, DISCOVERY, JWKS]
    # an unknown kid within the negative-cache period of a refetch does not make another
    clock.advance(29)
    refused(exchange(client, issuer.mint(kid="no-such-kid")))
    assert len(issuer.requests) == 4


def test_keys_are_fetched_again_when_the_cache_expires(client, ctr, clock, issuer, role):
    granted(exchange(client, issuer.mint()))
    clock.advance(ctr.settings.federation_jwks_cache_seconds)
    granted(exchange(client, issuer.mint()))
    assert issuer.requests == [DISCOVERY, JWKS, DISCOVERY, JWKS]


class TestPlainHttpIssuersWhenTheSettingIsOff:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(issuer=ISSUER, table_prefix="test-", keys_secret_name="test/signing-keys",
                        federation_allow_http=False, scrypt_log_n=TEST_SCRYPT_LOG_N)

    def test_an_http_issuer_is_refused_without_a_request(self, client, issuer, role):
        refused(exchange(client, issuer.mint()))
        assert issuer.requests == []


# -- refusals: the request -------------------------------------------------------------------

@pytest.mark.parametrize("missing", ["subject_token", "subject_token_type", "audience"])
def test_a_missing_parameter_is_invalid_request(client, issuer, role, missing):
    params: dict[str, str | None] = {missing: None}
    token = params.pop("subject_token", issuer.mint())
    parsed = assert_oauth_error(exchange(client, token, **params), 400, "invalid_request")
    assert missing in parsed["error_description"]


# (…:access_token is delegation: tests/api/test_delegation.py)
@pytest.mark.parametrize("token_type", ["urn:ietf:params:oauth:token-type:saml2", "id_token"])
def test_an_unsupported_subject_token_type_is_invalid_request(client, issuer, role, token_type):
    parsed = assert_oauth_error(exchange(client, issuer.mint(), subject_token_type=token_type),
                                400, "invalid_request")
    assert parsed["error_description"] == "unsupported subject_token_type"


def test_an_actor_token_or_another_requested_type_is_invalid_request(client, issuer, role):
    token = issuer.mint()
    assert_oauth_error(exchange(client, token, actor_token=token,
                                actor_token_type="urn:ietf:params:oauth:token-type:jwt"),
                       400, "invalid_request")
    assert_oauth_error(exchange(client, token,
                                requested_token_type="urn:ietf:params:oauth:token-type:id_token"),
                       400, "invalid_request")
    granted(exchange(client, token,
                     requested_token_type="urn:ietf:params:oauth:token-type:access_token"))


@pytest.mark.parametrize("audience", ["tessera", "urn:tessera:role:", "urn:tessera:role:ci",
                                      "urn:tessera:role:Alice.CI", "urn:tessera:user:alice.ci"])
def test_a_malformed_audience_is_invalid_target(client, issuer, role, audience):
    response = exchange(client, issuer.mint(), audience=audience)
    assert_oauth_error(response, 400, "invalid_target")
    assert issuer.requests == []


def test_an_unknown_role_is_invalid_target(client, issuer, role):
    assert_oauth_error(exchange(client, issuer.mint(), role="alice.deploy"), 400, "invalid_target")
    assert_oauth_error(exchange(client, issuer.mint(), role="carol.ci"), 400, "invalid_target")


def test_a_resource_parameter_is_invalid_target(client, issuer, role):
    assert_oauth_error(exchange(client, issuer.mint(), resource="https://api.example.com"),
                       400, "invalid_target")


def test_a_disabled_owner_gets_no_role_token(client, ctr, issuer, role):
    ctr.identities.set_user_active("alice", False)
    refused(exchange(client, issuer.mint()))


# -- clients ---------------------------------------------------------------------------------

def test_a_client_that_authenticates_names_itself_in_the_role_token(client, issuer, role):
    answer = granted(exchange(client, issuer.mint(), headers=basic(CONSOLE, CONSOLE_SECRET)))
    assert verified(client, answer["access_token"])["client_id"] == CONSOLE


def test_a_client_that_fails_authentication_is_invalid_client(client, issuer, role):
    response = exchange(client, issuer.mint(), headers=basic(CONSOLE, "wrong-secret"))
    assert_oauth_error(response, 401, "invalid_client")
    assert_oauth_error(exchange(client, issuer.mint(), client_id="no-such-client"), 401,
                       "invalid_client")
    assert issuer.requests == []


def test_a_client_not_allowed_the_grant_is_unauthorized_client(client, issuer, role):
    response = exchange(client, issuer.mint(), headers=basic(RS, RS_SECRET))
    assert_oauth_error(response, 400, "unauthorized_client")


def test_other_grants_still_need_a_client(client):
    from tests.api.helpers import form

    assert_oauth_error(form(client, "/oauth/token", grant_type="client_credentials"), 401,
                       "invalid_client")


def test_discovery_lists_the_token_exchange_grant(client):
    doc = body(client.http.get("/.well-known/openid-configuration"))
    assert EXCHANGE in doc["grant_types_supported"]
    assert "none" in doc["token_endpoint_auth_methods_supported"]


# -- audit -----------------------------------------------------------------------------------

def test_success_and_refusal_are_audited_without_the_token(client, issuer, role, audit_events,
                                                           capsys):
    audit_events()
    token = issuer.mint()
    answer = granted(exchange(client, token))
    refused(exchange(client, token))
    out = capsys.readouterr().out
    assert token not in out and token.split(".")[2] not in out
    assert answer["access_token"] not in out
    events = [e for e in _events(out) if e["event"] == "federation_exchange"]
    assert [e["outcome"] for e in events] == ["issued", "refused"]
    assert events[0]["subject"] == SUBJECT and events[0]["issuer"] == issuer.url
    assert events[0]["role"] == ROLE and events[0]["trust_id"] == "t1"
    assert events[1]["reason"] == "replayed jti"


def test_each_refusal_names_its_reason_in_the_audit_log(client, ctr, issuer, role, capsys):
    capsys.readouterr()
    now = ctr.clock.now()
    for token in (issuer.mint(sub="repo:acme/app:ref:refs/heads/evil"),
                  issuer.mint(aud="other"),
                  issuer.mint(exp=now - 100, iat=now - 400, nbf=now - 400),
                  issuer.mint(key=SigningKey("forger", "RS256"), kid=issuer.rsa.kid)):
        refused(exchange(client, token))
    reasons = [e["reason"] for e in _events(capsys.readouterr().out)
               if e["event"] == "federation_exchange"]
    assert reasons[0].startswith("no trust policy matches")
    assert reasons[1] == "audience not trusted"
    assert reasons[2] == "expired"
    assert reasons[3].startswith("signature or claims")


def _events(out: str) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in out.splitlines()
            if line.startswith("{") and '"logger":"tessera.audit"' in line]


# -- the job token's lifetime (issue item 5) -------------------------------------------------

def refused_for_lifetime(response: Any, seconds: int = 3600) -> None:
    parsed = assert_oauth_error(response, 400, "invalid_grant")
    assert parsed["error_description"] == (
        f"The subject token lives too long: exp - iat must be at most {seconds} seconds")


def test_a_job_token_living_longer_than_an_hour_is_refused(client, ctr, issuer, role):
    now = ctr.clock.now()
    refused_for_lifetime(exchange(client, issuer.mint(lifetime=10 * 366 * 86400)))
    refused_for_lifetime(exchange(client, issuer.mint(lifetime=3601)))
    # issued long ago, still valid: exp - iat counts, not what is left
    refused_for_lifetime(exchange(client, issuer.mint(iat=now - 7200, nbf=now - 7200,
                                                      exp=now + 60)))
    granted(exchange(client, issuer.mint(lifetime=3600)))


def test_the_longest_job_token_is_a_setting(client, ctr, issuer, role):
    import dataclasses

    ctr.settings = dataclasses.replace(ctr.settings, federation_max_token_seconds=600)
    ctr.__dict__.pop("federation", None)
    refused_for_lifetime(exchange(client, issuer.mint(lifetime=601)), 600)
    granted(exchange(client, issuer.mint(lifetime=600)))
    assert Settings.from_env({}).federation_max_token_seconds == 3600
    assert Settings.from_env({"TESSERA_FEDERATION_MAX_TOKEN_SECONDS": "900"}) \
        .federation_max_token_seconds == 900


def test_a_job_token_without_iat_or_issued_in_the_future_is_refused(client, ctr, issuer, role):
    now = ctr.clock.now()
    refused(exchange(client, issuer.mint(iat=None)))
    refused(exchange(client, issuer.mint(iat=now + 61, nbf=now)))
    refused(exchange(client, issuer.mint(iat="now")))
    assert issuer.requests == [DISCOVERY, JWKS]
