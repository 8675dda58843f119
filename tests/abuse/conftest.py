"""``abuse_server``: a real local runner (``devserver.py``) of the module's own,
started the way ``tests/e2e`` starts one, so that the lockouts a test provokes
reach no other test; ``throttle_items`` reads its counters from its moto.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.abuse.support import moto_dynamodb, throttle_table
from tests.e2e.support import LiveServer, running_server


@pytest.fixture(scope="module")
def abuse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("abuse")) as server:
        yield server


@pytest.fixture
def throttle_items(abuse_server: LiveServer) -> Callable[[], dict[str, dict[str, Any]]]:
    """Every item of the server's throttle table, by key, decoded."""
    from chalicelib.storage.dynamo import decode_item

    client, table = moto_dynamodb(abuse_server), throttle_table(abuse_server)

    def read() -> dict[str, dict[str, Any]]:
        scanned = client.scan(TableName=table, ConsistentRead=True)["Items"]
        return {i["pk"]: i for i in (decode_item(raw) or {} for raw in scanned)}

    return read
