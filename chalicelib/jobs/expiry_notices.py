"""Expiry notices for PATs (SPEC §11), run daily on a schedule.

The owner of a PAT with an expiry hears about it 14, 7 and 1 days before and on
the expiry, once per threshold. When several thresholds are crossed at once (a
token created 5 days before its expiry, or runs that were missed) only the
tightest is sent; a missed run delays a notice, never skips it, because a notice
is due from its threshold until the next one is sent.

Reads: PATs with a notice due are found through the sparse ``by_notice`` index
(per shard, ``notice_at <= now``), so a run reads the tokens it notifies, never
the others: no Scan. After each notice the PAT's ``notice_at`` moves to the next
threshold, and after the one on expiry the PAT leaves the index.

Once only: each notice is first recorded on the PAT by one conditional write
(``PatsRepo.claim_notice``), then sent. Of two concurrent runs only one wins the
write, so the notice goes out once; if sending fails the record is put back
(``release_notice``, conditional too) and the next run tries again. A new expiry
(an edit) restarts the thresholds: the record names the expiry it was for. A
removed PAT leaves the index; a revoked one is taken out of it.

The run stops before its time limit; the next run picks up what is left.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chalicelib.audit import event, log
from chalicelib.clock import Clock
from chalicelib.models import User
from chalicelib.services.letters import Letters
from chalicelib.storage.identities import UsersRepo
from chalicelib.storage.pats import DAY, FIRST_NOTICE_DAYS, NOTICE_SHARDS, Pat, PatsRepo

# Days before the expiry at which a notice is due, widest first; 0 = on expiry.
THRESHOLDS = (14, 7, 1, 0)
assert THRESHOLDS[0] == FIRST_NOTICE_DAYS
PAGE = 100
SAFETY_MS = 5_000


class Notifier(Protocol):
    """Where expiry notices go (the mail service implements it)."""

    def expiry_notice(self, owner: User, pat: Pat, threshold_days: int) -> None:
        """Tell ``owner`` that ``pat`` expires within ``threshold_days`` days
        (0: it has expired, at ``pat.expires_at``). Raises if it was not sent."""


class AuditNotifier:
    """Until mail is wired: each notice is an ``expiry_notice`` audit event."""

    def expiry_notice(self, owner: User, pat: Pat, threshold_days: int) -> None:
        event("expiry_notice", user_id=owner.id, pat_id=pat.id, expires_on=pat.expires_on,
              expires_at=pat.expires_at, threshold_days=threshold_days)


class MailNotifier:
    """Each notice a mail to the owner (``Letters.expiry_notice``, which raises when
    SES does not take it: the mark is then put back), and its audit event."""

    def __init__(self, letters: Letters, issuer: str) -> None:
        self.letters = letters
        self.issuer = issuer.rstrip("/")

    def expiry_notice(self, owner: User, pat: Pat, threshold_days: int) -> None:
        self.letters.expiry_notice(owner, pat.description, pat.expires_on or "",
                                   threshold_days, f"{self.issuer}/account/tokens")
        AuditNotifier().expiry_notice(owner, pat, threshold_days)


def due_threshold(expires_at: int, now: int) -> int | None:
    """The tightest threshold crossed by ``now``; None before the first."""
    left = expires_at - now
    crossed = [days for days in THRESHOLDS if left <= days * DAY]
    return min(crossed) if crossed else None


def next_notice_at(expires_at: int, sent_days: int) -> int | None:
    """When the threshold after ``sent_days`` falls due; None after the last."""
    tighter = [days for days in THRESHOLDS if days < sent_days]
    return expires_at - max(tighter) * DAY if tighter else None


@dataclass
class NoticeReport:
    examined: int = 0
    sent: int = 0
    already_sent: int = 0        # another run sent it, or it was sent before an edit
    skipped_no_email: int = 0    # the owner has no address: recorded as done, not sent
    skipped_disabled: int = 0    # the owner is disabled or gone: recorded as done, not sent
    gone: int = 0                # removed, revoked or given a new expiry since the index read
    failed: int = 0              # the notifier failed: put back for the next run
    pages: int = 0
    complete: bool = True

    def as_dict(self) -> dict[str, object]:
        return {"event": "expiry_notices", "examined": self.examined, "sent": self.sent,
                "already_sent": self.already_sent, "skipped_no_email": self.skipped_no_email,
                "skipped_disabled": self.skipped_disabled, "gone": self.gone,
                "failed": self.failed, "pages": self.pages, "complete": self.complete}


class _Run:
    def __init__(self, pats: PatsRepo, users: UsersRepo, notifier: Notifier, now: int,
                 report: NoticeReport) -> None:
        self.repo, self.users, self.notifier, self.now = pats, users, notifier, now
        self.report = report
        self.owners: dict[str, User | None] = {}

    def owner(self, user_id: str) -> User | None:
        if user_id not in self.owners:
            self.owners[user_id] = self.users.get(user_id)
        return self.owners[user_id]

    def one(self, owner_id: str, pat_id: str, seen_at: int, expires_at: int) -> None:
        report = self.report
        report.examined += 1
        days = due_threshold(expires_at, self.now)
        if days is None:
            report.gone += 1     # the index lags an edit that moved the expiry later
            return
        next_at = next_notice_at(expires_at, days)
        claim = self.repo.claim_notice(owner_id, pat_id, expires_at, days, next_at)
        if not claim.won:
            self.lost(claim.pat, owner_id, pat_id, seen_at, expires_at)
            return
        was = claim.pat
        assert was is not None
        owner = self.owner(owner_id)
        if owner is None or not owner.active:
            report.skipped_disabled += 1
            return
        if not owner.email:
            report.skipped_no_email += 1
            return
        try:
            self.notifier.expiry_notice(owner, was, days)
        except Exception as exc:  # any failure of the mail service: retried by the next run
            self.repo.release_notice(was, days, next_at)
            report.failed += 1
            log.info(json.dumps({"event": "expiry_notice_failed", "user_id": owner_id,
                                 "pat_id": pat_id, "threshold_days": days,
                                 "error": type(exc).__name__}))
            return
        report.sent += 1

    def lost(self, pat: Pat | None, owner_id: str, pat_id: str, seen_at: int,
             expires_at: int) -> None:
        """Why the claim lost, from the PAT as it is (ALL_OLD), and the index tidied."""
        if pat is None or pat.expires_at != expires_at:
            self.report.gone += 1          # removed, or an edit set a new expiry and due time
        elif pat.revoked_at is not None:
            self.report.gone += 1
            self.repo.reschedule_notice(owner_id, pat_id, seen_at, expires_at, None)
        else:
            # Already sent for this expiry. If the index still shows what this run
            # read (an edit that kept the expiry reset it), move it on.
            self.report.already_sent += 1
            if pat.notice_at == seen_at and pat.notified_days is not None:
                self.repo.reschedule_notice(owner_id, pat_id, seen_at, expires_at,
                                            next_notice_at(expires_at, pat.notified_days))


def send_expiry_notices(pats: PatsRepo, users: UsersRepo, notifier: Notifier, clock: Clock,
                        remaining_ms: Callable[[], float] = lambda: 10**9,
                        shards: int = NOTICE_SHARDS) -> NoticeReport:
    report = NoticeReport()
    run = _Run(pats, users, notifier, clock.now(), report)
    for shard in range(shards):
        start = None
        while True:
            if remaining_ms() < SAFETY_MS:
                report.complete = False
                log.info(json.dumps(report.as_dict()))
                return report
            due, start = pats.notice_page(shard, run.now, start, PAGE)
            report.pages += 1
            for owner_id, pat_id, seen_at, expires_at in due:
                if remaining_ms() < SAFETY_MS:
                    # Unclaimed notices stay due in the index for the next run.
                    report.complete = False
                    log.info(json.dumps(report.as_dict()))
                    return report
                run.one(owner_id, pat_id, seen_at, expires_at)
            if not start:
                break
    log.info(json.dumps(report.as_dict()))
    return report
