"""Which web origins some client registered (CORS for browser apps, SPEC §2)."""

from __future__ import annotations

import threading

from chalicelib.clock import Clock
from chalicelib.security.cors import origin_problem
from chalicelib.storage.identities import ClientsRepo

MAX_CACHED = 1000


class WebOrigins:
    """Whether a browser app at an origin may read an answer, cached per instance
    for a minute like the clients themselves (``ClientDirectory``): an origin a
    new client registers is answered within that minute, and a browser's repeated
    calls cost no read (SPEC §9)."""

    def __init__(self, repo: ClientsRepo, clock: Clock, ttl: int = 60) -> None:
        self.repo = repo
        self.clock = clock
        self.ttl = ttl
        self._cache: dict[str, tuple[bool, int]] = {}
        self._lock = threading.Lock()

    def registered(self, origin: str) -> bool:
        # Not an origin as a browser writes it ("null", a path, an uppercase
        # host): no client could have registered it, and it costs no read.
        if origin_problem(origin) is not None:
            return False
        now = self.clock.now()
        hit = self._cache.get(origin)
        if hit is not None and now < hit[1] + self.ttl:
            return hit[0]
        found = self.repo.origin_registered(origin)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[origin] = (found, now)
        return found
