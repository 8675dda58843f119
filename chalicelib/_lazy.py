"""Modules registered to load on first use (``importlib.util.LazyLoader``)."""

from __future__ import annotations

import importlib
import importlib.util
import sys


def defer_module(name: str) -> bool:
    """Register ``name`` so that it loads when one of its attributes is first used.

    It is put in ``sys.modules`` and set on its parent package, as an import would,
    so ``from a import b`` (PyJWT's form) gets it still deferred. ``import a.b``
    loads it at once: the import machinery reads the module's ``__spec__``, and any
    attribute read loads a deferred module. Does nothing (False) if the module is
    already loaded or cannot be found.
    """
    if name in sys.modules:
        return False
    parent_name, _, child = name.rpartition(".")
    parent = importlib.import_module(parent_name) if parent_name else None
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return False
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    if parent is not None:
        # ``from parent import child`` looks for the attribute first; without it,
        # the import machinery would touch the module (and so load it) at once.
        setattr(parent, child, module)
    return True
