"""The CI token exchange parses the job's token once (issue 27): PyJWT splits it and decodes
its header, claims and signature one time; the signature and the claims are then checked on
those parts, and a refusal's log line reuses them."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from chalicelib.clock import FakeClock
from chalicelib.services.federation import (
    IssuerKeys,
    JobTokenVerifier,
    Refused,
    job_token_jwt,
)
from chalicelib.storage.roles import TrustPolicy
from tests.oidc_issuer import SigningKey
from tests.unit.fakes import settings
from tests.unit.test_federation_unit import ISSUER, RSA, FakeFetch

AUDIENCE = "urn:tessera:role:u1:deploy"
POLICY = TrustPolicy(id="t1", issuer=ISSUER, audience=AUDIENCE, subject="repo:acme/app:*")


class CountingJWS(jwt.PyJWS):
    """PyJWS that counts how often a token is split and base64url-decoded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loads = 0

    def _load(self, token: str | bytes) -> tuple[bytes, bytes, dict[str, Any], bytes]:
        self.loads += 1
        return super()._load(token)


class CountingJWT(jwt.PyJWT):
    """The verifier's PyJWT, counting parses and payload JSON decodes."""

    def __init__(self) -> None:
        super().__init__(options=job_token_jwt().options)   # type: ignore[arg-type]
        self._jws = CountingJWS(options=self._get_sig_options())
        self.payloads = 0

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        self.payloads += 1
        return super()._decode_payload(decoded)

    @property
    def parses(self) -> tuple[int, int]:
        assert isinstance(self._jws, CountingJWS)
        return self._jws.loads, self.payloads


def _verifier() -> tuple[JobTokenVerifier, CountingJWT, FakeClock]:
    clock = FakeClock()
    counting = CountingJWT()
    keys = IssuerKeys(FakeFetch(), clock, settings())
    return JobTokenVerifier(keys, clock, 3600, jwt_api=counting), counting, clock


def _claims(now: int, **overrides: Any) -> dict[str, Any]:
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "repo:acme/app:ref:refs/heads/main",
            "iat": now, "exp": now + 300, "jti": "j1", **overrides}


def test_an_accepted_job_token_is_parsed_once():
    verifier, counting, clock = _verifier()
    token = RSA.sign(_claims(clock.now()))

    job = verifier.verify(token, [POLICY])

    assert job.subject == "repo:acme/app:ref:refs/heads/main" and job.jti == "j1"
    assert counting.parses == (1, 1)


@pytest.mark.parametrize("why, claims, key", [
    ("audience", {"aud": "urn:tessera:role:u1:other"}, RSA),
    ("signature", {}, SigningKey("k1", "RS256")),       # the same kid, another key
    ("subject", {"sub": "repo:evil/app:ref:refs/heads/main"}, RSA),
])
def test_a_refused_job_token_is_parsed_once_and_its_claims_come_with_the_refusal(why, claims, key):
    verifier, counting, clock = _verifier()
    token = key.sign(_claims(clock.now(), **claims))

    with pytest.raises(Refused) as refused:
        verifier.verify(token, [POLICY])

    assert counting.parses == (1, 1), why
    # the refusal's audit line takes iss and sub from here, not from a second parse
    assert refused.value.claimed is not None and refused.value.claimed["iss"] == ISSUER
