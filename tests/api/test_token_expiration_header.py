"""SPEC §11: an answer to a request a PAT authenticated says when the PAT expires
(``Tessera-Token-Expiration``, RFC 3339 UTC), as GitHub does; nothing else does."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import RS, RS_SECRET, basic, body, form, seed, tokens
from tests.api.test_pats import NEXT_MONTH, call, new_pat

HEADER = "Tessera-Token-Expiration"


@pytest.fixture
def alice(client: Any, ctr: Any) -> str:
    seed(ctr)
    return tokens(client)["access_token"]


def test_an_answer_to_a_pat_carries_its_expiry(client, alice):
    pat = new_pat(client, alice, expires_at=NEXT_MONTH)["token"]
    r = call(client, "get", "/v1/me", pat)
    assert r.status_code == 200
    assert r.headers[HEADER] == "2027-02-15T00:00:00Z"


def test_an_error_answer_to_a_pat_carries_its_expiry_too(client, alice):
    pat = new_pat(client, alice, expires_at=NEXT_MONTH, scopes=["api:read"])["token"]
    r = call(client, "get", "/v1/tokens", pat)      # needs tokens:read
    assert r.status_code == 403
    assert r.headers[HEADER] == "2027-02-15T00:00:00Z"


def test_the_pat_in_the_session_query_parameter_gets_the_header(client, alice):
    pat = new_pat(client, alice, expires_at=NEXT_MONTH)["token"]
    r = client.http.get(f"/v1/me?session={pat}")
    assert r.status_code == 200 and r.headers[HEADER] == "2027-02-15T00:00:00Z"


def test_an_access_token_answer_has_no_such_header(client, alice):
    r = call(client, "get", "/v1/me", alice)
    assert r.status_code == 200 and HEADER not in r.headers


def test_a_pat_without_expiry_gets_no_header(client, ctr, alice):
    ctr.settings = type(ctr.settings)(**{**ctr.settings.__dict__, "pat_allow_no_expiry": True,
                                         "pat_max_lifetime_days": 0})
    ctr.__dict__.pop("pats", None)
    pat = new_pat(client, alice, expires_at=None)["token"]
    r = call(client, "get", "/v1/me", pat)
    assert r.status_code == 200 and HEADER not in r.headers


def test_a_refused_pat_and_introspection_get_no_header(client, ctr, alice):
    pat = new_pat(client, alice, expires_at=NEXT_MONTH)["token"]
    r = form(client, "/oauth/introspect", headers=basic(RS, RS_SECRET), token=pat)
    assert body(r)["active"] is True and HEADER not in r.headers
    ctr.clock.advance(40 * 86400)     # past its expiry
    r = call(client, "get", "/v1/me", pat)
    assert r.status_code == 401 and HEADER not in r.headers


def test_the_header_does_not_leak_into_the_next_request(client, alice):
    pat = new_pat(client, alice, expires_at=NEXT_MONTH)["token"]
    assert HEADER in call(client, "get", "/v1/me", pat).headers
    assert HEADER not in call(client, "get", "/v1/me", alice).headers
