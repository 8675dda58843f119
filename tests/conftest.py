"""Shared fixtures: moto-backed AWS, one fake clock, a container, a Chalice test client.

No test patches module internals: the container is built with a fake clock and
handed to the app through ``container.use`` (dependency injection).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.pop("AWS_ENDPOINT_URL", None)

from chalicelib import container as container_module
from chalicelib.clock import FakeClock
from chalicelib.config import Settings
from chalicelib.container import Container
from chalicelib.storage.dynamo import reset_clients

ISSUER = "https://tessera.test"
# scrypt at 2^10 (1 MiB, ~2 ms) instead of the production 2^15 (~80 ms per hash
# here): every Settings a test builds passes it. The hash format carries its own
# factor, so nothing else changes; from_env refuses it for a deployed stage.
TEST_SCRYPT_LOG_N = 10


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> Settings:
    # federation_allow_http: the tests' local OIDC issuers serve plain HTTP on 127.0.0.1.
    return Settings(issuer=ISSUER, table_prefix="test-", keys_secret_name="test/signing-keys",
                    federation_allow_http=True, scrypt_log_n=TEST_SCRYPT_LOG_N)


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        reset_clients()
        yield
    reset_clients()


@pytest.fixture
def ctr(aws: None, settings: Settings, clock: FakeClock) -> Iterator[Container]:
    from chalicelib.storage.schema import create_tables

    c = Container(settings, clock)
    create_tables(c.dynamodb(), settings.table_prefix, ttl=False)
    container_module.use(c)
    yield c
    container_module.reset()


@pytest.fixture
def client(ctr: Container) -> Iterator[object]:
    from chalice.test import Client

    from app import app

    with Client(app) as test_client:
        yield test_client


@pytest.fixture
def audit_events(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    """The audit events (chalicelib.audit) printed on stdout since the last call."""

    def read() -> list[dict[str, Any]]:
        events = []
        for line in capsys.readouterr().out.splitlines():
            if line.startswith("{") and '"logger":"tessera.audit"' in line:
                events.append(json.loads(line))
        return events

    return read
