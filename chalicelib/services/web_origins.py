"""Which web origins some client registered (CORS for browser apps, SPEC §2)."""

from __future__ import annotations

from chalicelib.clock import Clock
from chalicelib.security.cors import origin_problem
from chalicelib.services.memo import Memo
from chalicelib.storage.identities import ClientsRepo


class WebOrigins:
    """Whether a browser app at an origin may read an answer, cached per instance
    for a minute like the clients themselves (``ClientDirectory``): an origin a
    new client registers is answered within that minute, and a browser's repeated
    calls cost no read (SPEC §9)."""

    def __init__(self, repo: ClientsRepo, clock: Clock, ttl: int = 60) -> None:
        self.repo = repo
        self._memo: Memo[bool] = Memo(clock, ttl)

    def registered(self, origin: str) -> bool:
        # Not an origin as a browser writes it ("null", a path, an uppercase
        # host): no client could have registered it, and it costs no read.
        if origin_problem(origin) is not None:
            return False
        return self._memo.answer(origin, self.repo.origin_registered)
