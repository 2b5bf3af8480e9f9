"""The nightly summary (`loyalty.summarise_ledger`) with real concurrent transactions on PostgreSQL: it
takes no lock on the ledger, so an earn goes through halfway through it and while its transaction is
still open; and an entry whose transaction commits after the summary's mark was taken, with an id below
it (ids come from a sequence before commit), is read live in the mark's gap and counted once, then
taken in by the next refresh."""

import datetime
import threading
import time

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from loyalty import analytics as ledger_analytics
from loyalty.models import Account, LedgerEntry, LedgerMonthMark, MemberMonthMark
from rewards import analytics as reward_analytics
from rewards import services as reward_services
from tests.analytics.test_member_summary import _overview, _overview_live
from tests.factories import RewardFactory
from tests.threads import in_thread

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_an_earn_goes_through_while_the_nightly_summary_runs_in_its_transaction(program, enrol, buy):
    ann, bob = enrol(program), enrol(program)
    buy(ann, "100.00")

    def earn():
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # a lock held by the summary would fail it here
        return buy(bob, "20.00").points

    with transaction.atomic():  # as the job runner runs it: its transaction stays open until the job ends
        ledger_analytics.summaries_refresh(program=program)
        started = time.monotonic()
        thread, outcome = in_thread(earn)
        thread.join(timeout=30)

        assert outcome == {"result": 20}
        assert time.monotonic() - started < 5
    assert LedgerEntry.objects.filter(account=bob).count() == 1


def test_an_earn_goes_through_in_the_middle_of_the_nightly_summary(program, enrol, buy, monkeypatch):
    ann, bob = enrol(program), enrol(program)
    buy(ann, "100.00")
    halfway, earned = threading.Event(), threading.Event()
    reward_rows = reward_analytics.reward_rows

    def reward_rows_after_the_earn(*args, **kwargs):  # the marks are taken, half the summary written
        halfway.set()
        assert earned.wait(timeout=30)
        return reward_rows(*args, **kwargs)

    monkeypatch.setattr(reward_analytics, "reward_rows", reward_rows_after_the_earn)

    def nightly_job():
        with transaction.atomic():  # as the job runner runs it
            return ledger_analytics.summaries_refresh(program=program)

    thread, outcome = in_thread(nightly_job)
    assert halfway.wait(timeout=30)
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '5s'")
    try:
        assert buy(bob, "20.00").points == 20
    finally:
        earned.set()
        thread.join(timeout=60)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert "error" not in outcome and outcome["result"] > 0
    # Posted after the marks were taken, the earn is read live on top of the summary.
    ledger = ledger_analytics.ledger_read(program=program)
    assert ledger.tail_entries == 1 and ledger.total == _owed(program)


def _owed(program) -> int:
    return Account.objects.filter(program=program).aggregate(s=Sum("balance") + Sum("pending"))["s"]


def test_entries_committed_below_the_mark_after_the_refresh_are_counted_once(program, enrol, buy):
    ann, bob = enrol(program, region="Flanders"), enrol(program, region="Wallonia")
    buy(ann, "100.00")
    buy(bob, "100.00")
    mug = RewardFactory(program=program, name="Mug", points_cost=50)
    written, release = threading.Event(), threading.Event()

    def slow_earn_and_redemption():
        with transaction.atomic():
            earned = buy(ann, "30.00").entries
            redeemed = reward_services.redeem(account=ann, reward=mug, idempotency_key="ann", channel="desk")
            written.set()  # its entries have their ids; they commit once the summary has run
            release.wait(timeout=30)
        return [entry.pk for entry in earned] + [redeemed.redemption.entry_id]

    thread, outcome = in_thread(slow_earn_and_redemption)
    assert written.wait(timeout=30)
    later = buy(bob, "40.00").entries[-1].pk  # a higher id, committed first
    ledger_analytics.summaries_refresh(program=program)
    release.set()
    thread.join(timeout=30)
    slow_ids = outcome["result"]

    for mark in (LedgerMonthMark.objects.get(program=program), MemberMonthMark.objects.get(program=program)):
        assert mark.through_entry >= later > max(slow_ids)
        assert all(any(low <= pk <= high for low, high in mark.entry_gaps) for pk in slow_ids), mark.entry_gaps
    ledger = ledger_analytics.ledger_read(program=program)
    assert ledger.tail_entries == len(slow_ids)
    assert ledger_analytics.roll_forward(ledger)[-1].closing == ledger.total == _owed(program)
    for scope in ({}, {"region": "Flanders"}):
        figures = _overview(program, **scope)
        assert figures == _overview_live(program, **scope), scope
        assert figures["top_rewards"] == [("Mug", 1, 50)] and figures["first_redeemers"] == 1

    # The next refresh takes them in: nothing left in a gap, the same figures.
    ledger_analytics.summaries_refresh(program=program)
    ledger = ledger_analytics.ledger_read(program=program)
    assert ledger.tail_entries == 0 and ledger.total == _owed(program)
    gaps = LedgerMonthMark.objects.get(program=program).entry_gaps
    assert not any(low <= pk <= high for low, high in gaps for pk in slow_ids)
    assert _overview(program) == _overview_live(program)


def _ledger_ids(sql: str, *params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("SEQ", "pg_get_serial_sequence('loyalty_ledgerentry', 'id')"), params)


def _skip_ids(n: int) -> tuple[int, int]:
    """Take n ledger ids no entry gets (inserts that rolled back, or not committed yet): a gap."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT MIN(id), MAX(id) FROM (SELECT nextval(pg_get_serial_sequence('loyalty_ledgerentry', 'id')) AS id"
            " FROM generate_series(1, %s)) ids",
            [n],
        )
        return cursor.fetchone()


def test_a_mark_with_more_gaps_than_it_keeps_ends_below_the_first_it_leaves_out(program, enrol, buy, monkeypatch):
    ann = enrol(program, region="Flanders")
    buy(ann, "100.00")
    ledger_analytics.summaries_refresh(program=program)  # the ids below this mark are settled
    monkeypatch.setattr(ledger_analytics, "MAX_GAPS", 2)
    gaps = []
    for _ in range(4):
        gaps.append(_skip_ids(20))
        buy(ann, "10.00")

    # Two hours on, so the gaps of the first mark count as rolled back: the four new ones are all it sees.
    ledger_analytics.summaries_refresh(program=program, now=timezone.now() + datetime.timedelta(hours=2))

    for mark in (LedgerMonthMark.objects.get(program=program), MemberMonthMark.objects.get(program=program)):
        assert [tuple(gap) for gap in mark.entry_gaps] == gaps[:2]
        assert mark.through_entry == gaps[2][0] - 1
    # Entries whose ids were taken before the mark commit now, in the first gap (kept) and the third
    # (left out, so above the mark): both are read live, none is lost.
    for low, _high in (gaps[0], gaps[2]):
        _ledger_ids("SELECT setval(SEQ, %s)", low - 1)
        buy(ann, "5.00")
    _ledger_ids("SELECT setval(SEQ, (SELECT MAX(id) FROM loyalty_ledgerentry))")
    ledger = ledger_analytics.ledger_read(program=program)
    assert ledger.tail_entries == LedgerEntry.objects.filter(pk__gte=gaps[2][0]).count() + 1
    assert ledger_analytics.roll_forward(ledger)[-1].closing == ledger.total == _owed(program)
    assert _overview(program) == _overview_live(program)
