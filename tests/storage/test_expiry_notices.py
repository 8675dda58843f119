"""Expiry notices for PATs (SPEC §11, issue 25 item 5): 14, 7 and 1 days before and on
the expiry, once each, the tightest when several are crossed at once; a missed run
delays, never skips; the job reads only the tokens it notifies (no Scan)."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.api_models import PatCreate, PatEdit
from chalicelib.jobs.expiry_notices import (
    AuditNotifier,
    due_threshold,
    next_notice_at,
    send_expiry_notices,
)
from chalicelib.models import User, user_id_for
from chalicelib.storage.pats import DAY, NOTICE_SHARDS, first_notice_at, notice_shard
from tessera_admin.token_backfill import backfill_notices
from tests.concurrency import atomic_container, run_together
from tests.storage.test_admin import run as admin
from tests.storage.test_purge import CallCounter


class Recorder:
    """A notifier that keeps what it was asked to send (and can be made to fail)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int]] = []
        self.failing = False

    def expiry_notice(self, owner, pat, threshold_days):
        if self.failing:
            raise ConnectionError("mail service down")
        self.sent.append((owner.username, pat.description, threshold_days))


def make_user(ctr, name, *, email=True, active=True):
    user = User(id=user_id_for(name), username=name, email=f"{name}@example.com" if email else "",
                active=active)
    ctr.users.create(user)
    return user


def day_date(ctr, days):
    """The date ``days`` after today (the clock's); a PAT stops at 00:00 UTC that day."""
    today = dt.datetime.fromtimestamp(ctr.clock.now(), dt.UTC).date()
    return (today + dt.timedelta(days=days)).isoformat()


def generate(ctr, user, description, expires_in_days):
    return ctr.pats.generate(user, PatCreate(description=description, scopes=["api:read"],
                                             expires_at=day_date(ctr, expires_in_days))).pat


def run(ctr, notifier, **kwargs):
    return send_expiry_notices(ctr.pats_repo, ctr.users, notifier, ctr.clock, **kwargs)


def test_thresholds_are_the_tightest_crossed():
    expiry = 100 * DAY
    assert due_threshold(expiry, expiry - 15 * DAY) is None
    assert due_threshold(expiry, expiry - 14 * DAY) == 14
    assert due_threshold(expiry, expiry - 5 * DAY) == 7
    assert due_threshold(expiry, expiry - DAY) == 1
    assert due_threshold(expiry, expiry) == 0
    assert due_threshold(expiry, expiry + 40 * DAY) == 0
    assert next_notice_at(expiry, 14) == expiry - 7 * DAY
    assert next_notice_at(expiry, 7) == expiry - DAY
    assert next_notice_at(expiry, 1) == expiry
    assert next_notice_at(expiry, 0) is None


def test_thirty_days_of_daily_runs_send_exactly_the_notices_due(ctr, clock):
    """The clock starts at 08:00 UTC; a PAT expiring N days ahead stops at 00:00 that
    day, so the run of day k sees N - k - 1/3 days left. No run on days 3, 9 and 10."""
    alice = make_user(ctr, "alice")
    notifier = Recorder()
    missed = {3, 9, 10}
    pats = {}
    seen: list[tuple[int, str, int]] = []
    for day in range(30):
        if day == 0:
            for name, days in [("steady", 20), ("inside", 5), ("missed", 10), ("edited", 16),
                               ("removed", 12), ("regenerated", 8), ("revoked", 6),
                               ("far", 60)]:
                pats[name] = generate(ctr, alice, name, days)
        if day == 2:
            ctr.pats.remove(alice, pats["removed"].id)
            ctr.pats.regenerate(alice, pats["regenerated"].id)
        if day == 1:
            revoked = pats["revoked"]
            assert ctr.pats_repo.revoke(alice.id, revoked.id, revoked.token_hash, clock.now())
        if day == 3:   # a description alone changes no expiry: nothing is sent again
            ctr.pats.edit(alice, pats["edited"].id, PatEdit(description="edited"))
        if day == 7:   # a new expiry, 40 days after day 0: the thresholds start again
            ctr.pats.edit(alice, pats["edited"].id, PatEdit(expires_at=day_date(ctr, 33)))
        if day not in missed:
            before = len(notifier.sent)
            run(ctr, notifier)
            seen += [(day, name, days) for _, name, days in notifier.sent[before:]]
        clock.advance(DAY)

    assert sorted(seen) == sorted([
        (6, "steady", 14), (13, "steady", 7), (19, "steady", 1), (20, "steady", 0),
        (0, "inside", 7), (4, "inside", 1), (5, "inside", 0),           # created inside 14 days
        (0, "missed", 14), (4, "missed", 7), (11, "missed", 0),         # 7 late; 1 and 0 at once
        (2, "edited", 14), (26, "edited", 14),                           # restarted by the edit
        (0, "removed", 14),
        (0, "regenerated", 14), (1, "regenerated", 7), (7, "regenerated", 1),
        (8, "regenerated", 0),                                           # same expiry: continues
        (0, "revoked", 7),
    ])
    # After the notice on expiry a token leaves the index; the far one is not in reach yet.
    assert ctr.pats_repo.get(alice.id, pats["steady"].id).notice_at is None
    assert ctr.pats_repo.get(alice.id, pats["revoked"].id).notice_at is None


def test_reads_grow_with_the_tokens_due_not_with_all_tokens(ctr, clock):
    alice = make_user(ctr, "alice")
    for i in range(60):
        generate(ctr, alice, f"later{i}", 100 + i)
    for i in range(3):
        generate(ctr, alice, f"soon{i}", 5)
    counter = CallCounter(ctr.dynamodb())
    report = run(ctr, Recorder())
    assert report.sent == 3 and report.examined == 3
    assert "Scan" not in counter.calls
    assert counter.items_read == 3                     # only the due ones came from the index
    assert counter.calls["Query"] == NOTICE_SHARDS     # one page per shard
    assert counter.calls["UpdateItem"] == 3            # one claim per notice
    assert counter.calls["GetItem"] == 1               # the owner, once for all her tokens
    counter.calls.clear()
    counter.items_read = 0
    assert run(ctr, Recorder()).examined == 0          # sent: out of reach until the next one
    assert counter.items_read == 0


def test_two_runs_at_once_send_each_notice_once(ctr, clock):
    alice = make_user(ctr, "alice")
    for i in range(6):
        generate(ctr, alice, f"soon{i}", 5 + i % 3)
    atomic = atomic_container(ctr)
    notifier = Recorder()
    results = run_together(2, lambda: send_expiry_notices(atomic.pats_repo, atomic.users,
                                                          notifier, clock))
    assert all(kind == "ok" for kind, _ in results)
    assert sorted(d for _, d, _ in notifier.sent) == sorted(f"soon{i}" for i in range(6))
    assert sum(r.sent for _, r in results) == 6


def test_a_notice_that_could_not_be_sent_is_sent_by_the_next_run(ctr, clock):
    alice = make_user(ctr, "alice")
    pat = generate(ctr, alice, "ci", 5)
    notifier = Recorder()
    notifier.failing = True
    assert run(ctr, notifier).failed == 1
    stored = ctr.pats_repo.get(alice.id, pat.id)
    assert stored.notified_days is None and stored.notice_at == first_notice_at(pat.expires_at)
    notifier.failing = False
    assert run(ctr, notifier).sent == 1
    assert notifier.sent == [("alice", "ci", 7)]


def test_owners_without_an_address_or_disabled_are_skipped_and_counted(ctr, clock):
    generate(ctr, make_user(ctr, "bob", email=False), "b", 5)
    generate(ctr, make_user(ctr, "carol", active=False), "c", 5)
    notifier = Recorder()
    report = run(ctr, notifier)
    assert (report.skipped_no_email, report.skipped_disabled, report.sent) == (1, 1, 0)
    assert notifier.sent == []
    assert run(ctr, notifier).examined == 0       # recorded as done: not read every day


def test_the_job_stops_before_its_time_limit_and_the_next_run_goes_on(ctr, clock):
    alice = make_user(ctr, "alice")
    for i in range(4):
        generate(ctr, alice, f"soon{i}", 5)
    budget = iter([60_000, 60_000, 1_000] + [60_000] * 100)
    notifier = Recorder()
    first = run(ctr, notifier, remaining_ms=lambda: next(budget))
    assert first.complete is False and first.sent < 4
    second = run(ctr, notifier)
    assert second.complete and first.sent + second.sent == 4 and len(notifier.sent) == 4


def test_tokens_written_before_the_index_are_backfilled_once(ctr, clock, capsys):
    alice = make_user(ctr, "alice")
    pat = generate(ctr, alice, "old", 5)
    expired = generate(ctr, alice, "expired", 1)
    for p in (pat, expired):   # as written before the index existed
        ctr.pats_repo.table.update(ctr.pats_repo.key(alice.id, p.id),
                                   "REMOVE notice_shard, notice_at", returns="NONE")
    assert run(ctr, Recorder()).examined == 0
    clock.advance(DAY)
    status, out, _ = admin(capsys, "tokens", "backfill-notices")
    assert status == 0 and out.startswith("1 personal access tokens")   # not the expired one
    assert backfill_notices(ctr.pats_repo, clock.now()) == 0
    stored = ctr.pats_repo.get(alice.id, pat.id)
    assert stored.notice_at == first_notice_at(pat.expires_at)
    assert ctr.pats_repo.table.get(ctr.pats_repo.key(alice.id, pat.id))["notice_shard"] == \
        notice_shard(pat.id)
    notifier = Recorder()
    run(ctr, notifier)
    assert notifier.sent == [("alice", "old", 7)]


def test_the_audit_notifier_logs_one_event_per_notice(ctr, clock, audit_events):
    alice = make_user(ctr, "alice")
    pat = generate(ctr, alice, "ci", 5)
    audit_events()
    run(ctr, AuditNotifier())
    notices = [e for e in audit_events() if e["event"] == "expiry_notice"]
    assert [(n["user_id"], n["pat_id"], n["threshold_days"]) for n in notices] == \
        [(alice.id, pat.id, 7)]


class _NearlyOutOfTime:
    def get_remaining_time_in_millis(self):
        return 1


@pytest.mark.parametrize("context, complete", [(None, True), (_NearlyOutOfTime(), False)])
def test_the_daily_handler_runs_the_job_within_its_invocation(ctr, context, complete):
    from app import send_expiry_notices as handler

    event = {"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": "2026-11-27T12:00:00Z", "region": "us-east-1",
             "resources": [], "detail": {}}
    out = handler(event, context)
    assert out["event"] == "expiry_notices" and out["complete"] is complete


def test_a_pat_edited_to_never_expire_leaves_the_index(ctr, clock):
    alice = make_user(ctr, "alice")
    pat = generate(ctr, alice, "ci", 5)
    edited = ctr.pats_repo.update_settings(pat, description="ci", scopes=pat.scopes, api_set=None,
                                           expires_on=None, expires_at=None)
    assert edited.notice_at is None and edited.expires_at is None
    assert run(ctr, Recorder()).examined == 0


def test_each_notice_is_a_mail_to_the_owner_through_ses(ctr, clock, settings):
    """The daily job's notifier (app.py): a mail per notice, and one that SES does not
    take is raised, so the job puts the notice back for the next run."""
    import dataclasses
    import email
    import email.policy

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    from chalicelib.jobs.expiry_notices import MailNotifier
    from chalicelib.storage.dynamo import aws_client

    alice = make_user(ctr, "alice")
    generate(ctr, alice, "nightly deploy", 5)
    notifier = MailNotifier(ctr.letters, "https://tessera.test")
    assert run(ctr, notifier).as_dict()["failed"] == 1            # no sender set: not sent
    ctr.settings = dataclasses.replace(settings, mail_from="Tessera <no-reply@tessera.test>")
    del ctr.__dict__["mailer"], ctr.__dict__["letters"]
    aws_client("sesv2").create_email_identity(EmailIdentity="no-reply@tessera.test")
    assert run(ctr, MailNotifier(ctr.letters, "https://tessera.test")).as_dict()["sent"] == 1
    (message,) = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    parsed = email.message_from_string(message.raw_data, policy=email.policy.default)
    assert parsed["To"] == "alice@example.com"
    assert parsed["Subject"] == "Your Tessera token “nightly deploy” expires in 7 days"
    assert "https://tessera.test/account/tokens" in parsed.get_body(("plain",)).get_content()
