"""The purge index's write ceiling sizes its shard count (issue 10 item 7)."""

from __future__ import annotations

import pytest

from chalicelib.config import Settings, purge_shards_for


@pytest.mark.parametrize(("rate", "shards"), [(1, 1), (400, 1), (401, 2), (3000, 8), (3201, 9),
                                              (10_000, 25)])
def test_each_shard_takes_at_most_400_refreshes_a_second(rate, shards):
    # 1000 index writes/s per partition value, 2 per refresh, kept at 80 %.
    assert purge_shards_for(rate) == shards


def test_the_shard_count_grows_with_the_stages_peak_refresh_rate():
    assert Settings.from_env({}).purge_shards == 8
    assert Settings.from_env({"TESSERA_PEAK_REFRESHES_PER_SECOND": "10000"}).purge_shards == 25


def test_a_configured_shard_count_below_what_the_peak_needs_is_raised():
    env = {"TESSERA_PURGE_SHARDS": "8", "TESSERA_PEAK_REFRESHES_PER_SECOND": "6000"}
    assert Settings.from_env(env).purge_shards == 15
    assert Settings.from_env({"TESSERA_PURGE_SHARDS": "32"}).purge_shards == 32
