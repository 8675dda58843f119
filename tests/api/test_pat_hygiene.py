"""No PAT secret in any stored attribute or log line, and one read per validation."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.security.opaque import PAT
from chalicelib.storage.dynamo import decode_item
from tests.api.helpers import RS, RS_SECRET, basic, bearer, form, seed, tokens
from tests.api.test_pats import call, new_pat


@pytest.fixture
def alice(client: Any, ctr: Any) -> str:
    seed(ctr)
    return tokens(client)["access_token"]


def pieces(token: str, size: int = 16) -> set[str]:
    """Every 16-character piece of the token that holds any of its secret part.

    The locator (owner id + PAT id) is public by design: it is the id listed by
    the API. Every window that reaches into the random part and checksum counts.
    """
    secret_start = len(PAT.prefix) + PAT.locator_len
    return {token[i:i + size] for i in range(secret_start - size + 1, len(token) - size + 1)}


def every_item(ctr: Any) -> list[str]:
    db = ctr.dynamodb()
    out = []
    for name in db.list_tables()["TableNames"]:
        for page in db.get_paginator("scan").paginate(TableName=name):
            out.extend(repr(decode_item(i)) for i in page["Items"])
    return out


def test_no_secret_in_any_table_or_log_line(client, ctr, alice, capsys):
    secrets = []
    first = new_pat(client, alice)
    secrets.append(first["token"])
    regenerated = call(client, "post", f"/v1/tokens/{first['id']}/regenerate", alice)
    secrets.append(regenerated.json_body["token"])
    copied = call(client, "post", f"/v1/tokens/{first['id']}/copy", alice)
    secrets.append(copied.json_body["token"])
    for token in secrets:
        call(client, "get", "/v1/me", token)
        client.http.get(f"/v1/me?session={token}")
        form(client, "/oauth/introspect", headers=basic(RS, RS_SECRET), token=token)
    form(client, "/oauth/revoke", headers=basic(RS, RS_SECRET), token=secrets[-1])
    call(client, "get", "/v1/me", secrets[-1])          # a refused one is not logged either
    stored = "\n".join(every_item(ctr))
    logged = capsys.readouterr().out
    assert '"event":"pat_created"' in logged   # the log was really written
    assert "tsp_" not in stored
    for token in secrets:
        for piece in pieces(token):
            assert piece not in stored, "a piece of a PAT is stored"
            assert piece not in logged, "a piece of a PAT is logged"


def test_validating_a_pat_is_one_round_trip(client, ctr, alice):
    pat = new_pat(client, alice)["token"]
    call(client, "get", "/v1/me", pat)      # first use records last_used_at
    calls: list[str] = []
    db = ctr.dynamodb()

    def count(event_name: str, **kwargs: Any) -> None:
        calls.append(event_name.rsplit(".", 1)[-1])

    db.meta.events.register("before-call.dynamodb", count)
    try:
        r = client.http.get("/v1/me", headers=bearer(pat))
        assert r.status_code == 200
        assert calls == ["BatchGetItem"]
        calls.clear()
        # a malformed or mistyped PAT costs no read at all
        r = client.http.get("/v1/me", headers=bearer(pat[:-1] + ("0" if pat[-1] != "0" else "1")))
        assert r.status_code == 401 and calls == []
    finally:
        db.meta.events.unregister("before-call.dynamodb", count)
