"""SnapStart hooks: the snapshot holds imports only; a restored instance shares no
clients, credentials, cached state or random sequence with its siblings."""

from __future__ import annotations

import random
import sys
import types
from typing import Any

import pytest

from chalicelib import container as container_module
from chalicelib import snapstart
from chalicelib.container import Container
from chalicelib.storage import dynamo


def test_before_snapshot_imports_the_app_without_clients_or_secrets(
        monkeypatch: pytest.MonkeyPatch) -> None:
    dynamo.reset_clients()
    container_module.reset()
    imported = snapstart.before_snapshot()
    assert "chalicelib.services.tokens" in imported and "chalicelib.storage.sessions" in imported
    assert "chalicelib.openapi" not in imported
    assert {"jwt", "pydantic"} <= set(imported)
    assert all(name in sys.modules for name in imported)
    # Nothing that talks to AWS was built: no client, no container, no key set, no
    # credentials; only the service models a client is made from are parsed.
    assert dynamo._clients == {}
    assert container_module._current is None
    session = dynamo._session
    assert session is not None and session._credentials is None
    cached = session.get_component("data_loader")._cache
    assert any("dynamodb" in str(key) for key in cached)


def test_after_restore_drops_clients_credentials_and_the_container(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    dynamo.aws_client("dynamodb")              # builds a client (no network needed)
    session = dynamo._session
    assert session is not None and session.get_credentials() is not None
    container_module.use(Container())
    snapstart.after_restore()
    assert dynamo._clients == {}
    assert container_module._current is None
    # The session and its credentials are gone; the next one (its credentials
    # looked up again) parses no service model again.
    assert dynamo._session is None
    dynamo.aws_client("dynamodb")
    assert dynamo._session is not session
    assert dynamo._session.get_component("data_loader") is session.get_component("data_loader")


def test_after_restore_reseeds_random() -> None:
    random.seed(7)
    frozen = [random.random() for _ in range(4)]
    random.seed(7)                      # the state every restored instance would share
    snapstart.after_restore()
    assert [random.random() for _ in range(4)] != frozen


def test_register_is_a_no_op_without_the_lambda_runtime() -> None:
    assert "snapshot_restore_py" not in sys.modules
    assert snapstart.register() is False


def test_register_hands_both_hooks_to_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: dict[str, Any] = {}
    fake = types.ModuleType("snapshot_restore_py")
    fake.register_before_snapshot = lambda fn: registered.setdefault("before", fn)  # type: ignore[attr-defined]
    fake.register_after_restore = lambda fn: registered.setdefault("after", fn)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)
    assert snapstart.register() is True
    assert registered == {"before": snapstart.before_snapshot, "after": snapstart.after_restore}
