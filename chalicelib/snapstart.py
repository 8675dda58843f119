"""Lambda SnapStart runtime hooks (SPEC §7, issue 15).

With SnapStart on, Lambda runs the init phase once per published version,
snapshots the memory, and starts later instances from the snapshot. So:

* ``before_snapshot`` imports what the first request would import and parses
  the AWS service models its clients are built from, and warms nothing else: it
  keeps no client, looks up no credentials, fetches no secret and opens no
  connection (those would be frozen into the snapshot and shared by every
  instance restored from it).
* ``after_restore`` drops what must not be shared between restored instances:
  cached AWS clients, the botocore session and the credentials it holds (its
  parsed service models stay), the composition root (and
  with it every cached key set and service), and re-seeds the ``random`` module
  (backoff jitter), which would otherwise repeat the same sequence in every
  instance. ``secrets`` reads the OS's generator and needs nothing.

The hooks come from ``snapshot_restore_py``, which only the Lambda Python runtime
provides; elsewhere ``register()`` does nothing and the hooks are called directly
by the tests.
"""

from __future__ import annotations

import gc
import importlib
import random
from collections.abc import Callable
from typing import Any

from chalicelib import startup

# Not imported before a snapshot: ``openapi`` serves only GET /openapi.json (and
# ``python -m chalicelib.openapi`` at build time), a rare request that loads it when
# it comes. (The admin command and the seed loader are not in the package at all:
# tessera_admin.)
_NOT_ON_LAMBDA = frozenset({"chalicelib.openapi"})
# Third-party modules the first token or page request imports.
_DEPENDENCIES = ("jwt", "cryptography.hazmat.primitives.asymmetric.ec",
                 "cryptography.hazmat.primitives.serialization", "pydantic")


def runtime_modules() -> list[str]:
    import pkgutil  # only before a snapshot: not on every cold start

    import chalicelib

    names = [m.name for m in pkgutil.walk_packages(chalicelib.__path__, "chalicelib.")]
    return sorted(n for n in names if n not in _NOT_ON_LAMBDA and n != __name__)


def before_snapshot() -> list[str]:
    """Import the app's modules and its dependencies, and parse the AWS service
    models its clients need (no client kept, no credentials); returns what was imported."""
    from chalicelib.storage.dynamo import preload_models

    done = []
    for name in (*runtime_modules(), *_DEPENDENCIES):
        importlib.import_module(name)
        done.append(name)
    preload_models()
    # What the imports left as garbage goes now; the rest is frozen into the
    # snapshot (chalicelib/startup.py), so no restored instance walks it again.
    gc.collect()
    startup.resume()
    return done


def after_restore() -> None:
    """Forget clients, credentials and cached state; re-seed ``random``."""
    from chalicelib import container
    from chalicelib.storage.dynamo import reset_clients

    reset_clients()   # clients and credentials go; the parsed service models stay
    container.reset()
    random.seed()


def _runtime_hooks() -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    try:
        from snapshot_restore_py import (  # Lambda runtime only
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:
        return None
    return register_before_snapshot, register_after_restore


def register() -> bool:
    """Register the hooks when the runtime offers them; True if it did."""
    hooks = _runtime_hooks()
    if hooks is None:
        return False
    register_before, register_after = hooks
    register_before(before_snapshot)
    register_after(after_restore)
    return True
