"""The replay guard of CI federation (SPEC §6): one conditional put per job token."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from chalicelib.storage.dynamo import aws_client
from chalicelib.storage.replay import replay_key
from tests.faults import LostResponse

ISSUER = "https://token.actions.githubusercontent.com"
NOW = 1_800_000_000


def test_a_job_token_is_used_once(ctr):
    repo = ctr.replay_repo
    assert repo.first_use(ISSUER, "jti-1", keep_until=NOW + 360, now=NOW)
    assert not repo.first_use(ISSUER, "jti-1", keep_until=NOW + 360, now=NOW + 1)
    assert repo.first_use(ISSUER, "jti-2", keep_until=NOW + 360, now=NOW + 1)


def test_a_jti_is_unique_per_issuer_only(ctr):
    repo = ctr.replay_repo
    assert repo.first_use(ISSUER, "1", keep_until=NOW + 360, now=NOW)
    assert repo.first_use("https://gitlab.com", "1", keep_until=NOW + 360, now=NOW)
    # no two (issuer, jti) pairs share a key, whatever their characters
    assert replay_key("https://a", "b:c") != replay_key("https://a:b", "c")
    assert replay_key("x", "1y") != replay_key("x1", "y")


def test_the_item_expires_with_the_job_token(ctr):
    repo = ctr.replay_repo
    assert repo.first_use(ISSUER, "jti", keep_until=NOW + 360, now=NOW)
    item = repo.table.get({"pk": replay_key(ISSUER, "jti")})
    assert item is not None and item["ttl"] == NOW + 360
    # TTL deletes lazily: an item past its ttl no longer counts
    assert not repo.first_use(ISSUER, "jti", keep_until=NOW + 720, now=NOW + 360)
    assert repo.first_use(ISSUER, "jti", keep_until=NOW + 720, now=NOW + 361)


def test_a_write_whose_answer_was_lost_is_recognised_as_our_own(ctr):
    repo = ctr.replay_repo
    with LostResponse(aws_client("dynamodb"), "PutItem") as fault:
        assert repo.first_use(ISSUER, "jti", keep_until=NOW + 360, now=NOW)
    assert fault.seen == 2                       # the SDK sent it again, the item existed
    assert not repo.first_use(ISSUER, "jti", keep_until=NOW + 360, now=NOW)


def test_of_concurrent_uses_of_one_job_token_exactly_one_wins(ctr):
    repo = ctr.replay_repo
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: repo.first_use(ISSUER, "jti", keep_until=NOW + 360,
                                                         now=NOW), range(16)))
    assert results.count(True) == 1
