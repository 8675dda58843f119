"""CI federation cannot reach inside (issue item 2): a trust policy, an issuer or a
``jwks_uri`` that names a loopback, private or link-local address, in whatever
spelling, makes no connection. A real listener on 127.0.0.1 counts connections."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.config import Settings
from tests.api.helpers import body, seed, tokens
from tests.api.test_roles_api import TRUST, assert_problem, call, created
from tests.api.test_token_endpoint_errors import assert_oauth_error
from tests.conftest import ISSUER, TEST_SCRYPT_LOG_N
from tests.federation_support import Listener, exchange, make_role, trust
from tests.oidc_issuer import DISCOVERY, JWKS, OidcIssuer, SigningKey

# Numbers a URL parser reads as 127.0.0.1 (WHATWG "ends in a number"), and
# 169.254.169.254 (the instance metadata address) as one decimal number.
NUMERIC_LOOPBACK = ("127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.0.0.1",
                    "127.0.1", "017700000001", "127.000.000.001")
METADATA = "2852039166"


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener()
    yield running
    running.close()


@pytest.fixture
def alice(client: Any, ctr: Any) -> str:
    seed(ctr)
    return str(tokens(client)["access_token"])


@pytest.fixture
def role_made(client: Any, alice: str) -> None:
    created(call(client, "post", "/v1/roles", alice, {"name": "alice.ci"}))


def job_token(ctr: Any, issuer: str, key: SigningKey | None = None) -> str:
    now = ctr.clock.now()
    return (key or SigningKey("k1", "RS256")).sign(
        {"iss": issuer, "sub": "repo:acme/app:ref:refs/heads/main", "aud": "tessera",
         "jti": f"j-{issuer}", "iat": now, "exp": now + 300})


def refused_without_connection(client: Any, ctr: Any, issuer: str, listener: Listener) -> None:
    parsed = assert_oauth_error(exchange(client, job_token(ctr, issuer)), 400, "invalid_grant")
    assert parsed["error_description"] == "The subject token is not accepted for this role"
    assert listener.connections == []


# -- at trust-policy time: 422 ---------------------------------------------------------------

@pytest.mark.parametrize("host", [*NUMERIC_LOOPBACK, METADATA])
def test_a_trust_policy_naming_a_numeric_spelling_of_an_address_is_422(
        client, alice, role_made, listener, host):
    issuer = f"https://{host}:{listener.port}"
    b = assert_problem(call(client, "post", "/v1/roles/alice.ci/trust", alice,
                            {**TRUST, "issuer": issuer}), 422, "non-canonical spelling")
    assert b["errors"][0]["pointer"] == "#/issuer"
    assert listener.connections == []


@pytest.mark.parametrize("issuer", ["https://169.254.169.254", "https://10.0.0.1",
                                    "https://[fd00::1]", "https://[::ffff:a9fe:a9fe]",
                                    "https://0.0.0.0", "https://100.64.0.1",
                                    "https://[::ffff:127.0.0.1]", "https://[0:0::1]"])
def test_a_trust_policy_naming_a_non_public_address_is_422(client, alice, role_made, issuer):
    assert_problem(call(client, "post", "/v1/roles/alice.ci/trust", alice,
                        {**TRUST, "issuer": issuer}), 422, "issuer")


class TestWithoutTheLocalAllowance:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(issuer=ISSUER, table_prefix="test-", keys_secret_name="test/signing-keys",
                        federation_allow_http=False, scrypt_log_n=TEST_SCRYPT_LOG_N)

    @pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "a.localhost",
                                      "[::ffff:7f00:1]", "127.0.0.2"])
    def test_a_trust_policy_naming_loopback_is_422(self, client, alice, role_made, host):
        assert_problem(call(client, "post", "/v1/roles/alice.ci/trust", alice,
                            {**TRUST, "issuer": f"https://{host}:8443"}), 422, "issuer")

    @pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "[::ffff:7f00:1]",
                                      *NUMERIC_LOOPBACK])
    def test_an_exchange_never_connects_to_loopback(self, client, ctr, listener, host):
        seed(ctr)
        issuer = f"https://{host}:{listener.port}"
        make_role(ctr, trust(issuer))      # stored as an older version might have
        refused_without_connection(client, ctr, issuer, listener)


# -- at exchange time: no connection -----------------------------------------------------------

@pytest.mark.parametrize("host", NUMERIC_LOOPBACK)
def test_a_stored_trust_policy_with_a_numeric_host_never_connects(client, ctr, listener, host):
    """Even with the local allowance on (these tests' settings), a numeric spelling is
    refused before any connection."""
    seed(ctr)
    issuer = f"https://{host}:{listener.port}"
    make_role(ctr, trust(issuer))
    refused_without_connection(client, ctr, issuer, listener)


class _Pointing(OidcIssuer):
    """A local issuer whose discovery document points its jwks_uri elsewhere."""

    jwks_uri = ""

    def documents(self) -> dict[str, dict[str, Any]]:
        documents = super().documents()
        documents[DISCOVERY] = {**documents[DISCOVERY], "jwks_uri": self.jwks_uri}
        return documents


@pytest.mark.parametrize("spelling", [f"https://{h}:{{port}}/jwks" for h in NUMERIC_LOOPBACK]
                         + [f"http://{h}:{{port}}/jwks" for h in NUMERIC_LOOPBACK[:3]])
def test_a_jwks_uri_with_a_numeric_host_is_never_fetched(client, ctr, listener, spelling):
    seed(ctr)
    with _Pointing(ctr.clock.now) as issuer:
        issuer.jwks_uri = spelling.format(port=listener.port)
        make_role(ctr, trust(issuer.url))
        parsed = assert_oauth_error(exchange(client, issuer.mint()), 400, "invalid_grant")
        assert parsed["error_description"] == "The subject token is not accepted for this role"
        assert issuer.requests == [DISCOVERY]
    assert listener.connections == []


def test_the_local_issuer_on_127_0_0_1_still_works_under_the_allowance(client, ctr):
    seed(ctr)
    with OidcIssuer(ctr.clock.now) as issuer:
        make_role(ctr, trust(issuer.url))
        answer = exchange(client, issuer.mint())
        assert answer.status_code == 200, answer.body
        assert body(answer)["token_type"] == "Bearer"
        assert issuer.requests == [DISCOVERY, JWKS]
