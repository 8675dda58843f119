"""One module per grant type, all of the same shape, found through ``registry()``.

Each grant module exports ``GRANT_TYPE`` and ``handle(ctx, client, params)``
returning the token response; the token endpoint dispatches here, and an
unknown grant type is ``unsupported_grant_type`` (RFC 6749 §5.2).
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from types import ModuleType

_MODULES: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def registry() -> dict[str, ModuleType]:
    """grant_type -> module, imported on first use."""
    found: dict[str, ModuleType] = {}
    for name in _MODULES:
        module = importlib.import_module(f"chalicelib.grants.{name}")
        found[module.GRANT_TYPE] = module
    return found
