"""The cyclic garbage collector during a cold start (SPEC §9).

A cold start imports botocore, PyJWT and cryptography and parses AWS service
models: hundreds of thousands of objects that live as long as the process.
CPython's cyclic collector runs while they pile up, and during a cold start it
walks them all at least once in a full (generation 2) collection: about a
tenth of the cold-start floor on the benchmark's machine, to free next to
nothing. So, on Lambda, ``app.py`` pauses the collector before its first import,
and the end of the first invocation (a middleware, whatever the event) freezes
what exists then (``gc.freeze``: a permanent generation that collections skip)
and turns the collector back on. From then on it runs as usual, over what
later requests allocate. Elsewhere (tests, the local runner) nothing changes.

The Lambda runtime sets ``AWS_LAMBDA_FUNCTION_NAME``; the benchmark's cold
starts set it too, as they lay the function out as deployed.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import Any

_paused = False


def pause() -> bool:
    """Pause the collector for the cold start, on Lambda only; True if paused."""
    global _paused
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and gc.isenabled():
        gc.disable()
        _paused = True
    return _paused


def resume() -> None:
    """Freeze what the cold start made and run the collector again (once)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware for every event type: the first invocation's end resumes."""
    try:
        return get_response(event)
    finally:
        if _paused:
            resume()
