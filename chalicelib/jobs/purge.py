"""The idle-session purge (SPEC §3), run on a schedule.

Sessions whose idle deadline has passed are found through the ``by_idle`` index
(per shard, ``idle_deadline <= now``), so the reads grow with the sessions to
remove, never with the live ones: no Scan. Each delete is conditional on the
session still being idle, so a session used during the purge survives and two
concurrent runs are harmless. The run stops before its time limit; the next
run picks up whatever is left, because removed sessions leave the index.

Capacity: every refresh moves a session's idle deadline, the index's sort key,
so DynamoDB writes the index twice per refresh, on one shard's partition value.
A partition value takes at most 1000 writes a second (and a growing sort key
leaves adaptive capacity nothing to split), so the index bounds the stage at
500 refreshes a second per shard: 4000 a second with the default 8 shards.
``config.purge_shards_for`` sizes the shard count for the stage's peak refresh
rate at 80 % of that ceiling. Raise the count freely (new sessions spread over
more shards and every run reads them all); lowering it would leave sessions of
the dropped shards to TTL alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.audit import log
from chalicelib.clock import Clock
from chalicelib.storage.sessions import SessionsRepo

PAGE = 100
SAFETY_MS = 5_000


@dataclass
class PurgeReport:
    examined: int = 0
    removed: int = 0
    survived: int = 0
    pages: int = 0
    complete: bool = True

    def as_dict(self) -> dict[str, object]:
        return {"event": "purge", "examined": self.examined, "removed": self.removed,
                "survived": self.survived, "pages": self.pages, "complete": self.complete}


def purge_idle_sessions(repo: SessionsRepo, clock: Clock,
                        remaining_ms: Callable[[], float] = lambda: 10**9) -> PurgeReport:
    report = PurgeReport()
    now = clock.now()
    for shard in range(repo.shards):
        start = None
        while True:
            if remaining_ms() < SAFETY_MS:
                report.complete = False
                log.info(json.dumps(report.as_dict()))
                return report
            items, start = repo.idle_page(shard, now, start, PAGE)
            report.pages += 1
            for item in items:
                report.examined += 1
                if repo.delete_if_idle(item["id"], now):
                    report.removed += 1
                else:
                    report.survived += 1
            if not start:
                break
    log.info(json.dumps(report.as_dict()))
    return report
