"""Tiers: upgrades at once, downgrades only at evaluation (after grace, one tier or to the earned
tier), progress the member can read, and reads whose query count does not grow with history."""

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty import services
from loyalty.models import Program, TierChange
from loyalty.selectors import account_statement, points_expiring_within, tier_progress

pytestmark = pytest.mark.django_db


def _local(*args) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime(*args))


def _set(program, **fields):
    Program.objects.filter(pk=program.pk).update(**fields)
    program.refresh_from_db()
    return program


def _tier_name(account) -> str:
    account.refresh_from_db()
    return account.tier.name


def test_crossing_a_threshold_upgrades_at_once_and_is_recorded(program, enrol, buy):
    account = enrol(program)

    result = buy(account, "1000.00")

    assert result.upgraded_to.name == "Silver"
    assert _tier_name(account) == "Silver"
    change = account.tier_changes.order_by("-changed_at").first()
    assert (change.from_tier.name, change.to_tier.name, change.reason) == ("Bronze", "Silver", "upgrade")


def test_a_big_purchase_can_jump_several_tiers(program, enrol, buy):
    account = enrol(program)

    buy(account, "6000.00")

    assert _tier_name(account) == "Gold"


REVIEW = _local(2026, 3, 10, 12, 0)


def _gold_in_2025(program, enrol, buy, points="5000.00"):
    """A member who reached Gold on 2025-03-10 at noon in a rolling-window program: reviewed 12 months later."""
    with time_machine.travel(_local(2025, 3, 10, 12, 0), tick=False):
        account = enrol(program)
        buy(account, points)
    account.refresh_from_db()
    assert account.tier.name == "Gold"
    assert account.tier_review_at == REVIEW
    return account


def test_a_member_who_did_not_requalify_goes_down_one_tier_at_the_review(program, enrol, buy):
    account = _gold_in_2025(program, enrol, buy)

    assert services.evaluate_tiers(program=program, as_of=REVIEW - datetime.timedelta(seconds=1)).rows == 0
    result = services.evaluate_tiers(program=program, as_of=REVIEW)

    assert (result.rows, result.points) == (1, 1)
    assert _tier_name(account) == "Silver"
    assert account.tier_changes.filter(reason=TierChange.Reason.DOWNGRADE).count() == 1


def test_straight_to_the_earned_tier_when_the_program_says_so(program, enrol, buy):
    _set(program, downgrade_mode=Program.DowngradeMode.TO_EARNED)
    account = _gold_in_2025(program, enrol, buy)

    services.evaluate_tiers(program=program, as_of=REVIEW)

    account.refresh_from_db()
    assert account.tier.name == "Bronze"
    assert account.tier_review_at is None  # nothing left to keep


def test_grace_months_delay_the_downgrade(program, enrol, buy):
    _set(program, downgrade_grace_months=3)
    account = _gold_in_2025(program, enrol, buy)

    services.evaluate_tiers(program=program, as_of=_local(2026, 6, 10, 11, 59))
    assert _tier_name(account) == "Gold"
    services.evaluate_tiers(program=program, as_of=_local(2026, 6, 10, 12, 0))

    assert _tier_name(account) == "Silver"


def test_a_member_who_requalified_keeps_the_tier_for_another_window(program, enrol, buy):
    account = _gold_in_2025(program, enrol, buy)
    with time_machine.travel(_local(2025, 12, 1, 12, 0)):
        buy(account, "5000.00")

    services.evaluate_tiers(program=program, as_of=REVIEW)

    account.refresh_from_db()
    assert account.tier.name == "Gold"
    assert account.tier_review_at == _local(2027, 3, 10, 12, 0)


def test_running_the_evaluation_twice_changes_nothing_the_second_time(program, enrol, buy):
    account = _gold_in_2025(program, enrol, buy)
    services.evaluate_tiers(program=program, as_of=REVIEW)
    account.refresh_from_db()
    snapshot = (account.tier_id, account.tier_since, account.tier_review_at)

    second = services.evaluate_tiers(program=program, as_of=REVIEW)

    account.refresh_from_db()
    assert second.rows == 0
    assert (account.tier_id, account.tier_since, account.tier_review_at) == snapshot
    assert account.tier_changes.filter(reason="downgrade").count() == 1


def test_calendar_year_tiers_are_kept_through_the_next_year(program, enrol, buy):
    _set(program, qualification_window=Program.Window.CALENDAR_YEAR)
    with time_machine.travel(_local(2025, 6, 1, 12, 0)):
        account = enrol(program)
        buy(account, "5000.00")
    account.refresh_from_db()
    assert timezone.localtime(account.tier_review_at) == _local(2027, 1, 1)

    services.evaluate_tiers(program=program, as_of=_local(2026, 12, 31, 23, 59, 59))
    assert _tier_name(account) == "Gold"
    services.evaluate_tiers(program=program, as_of=_local(2027, 1, 1))
    assert _tier_name(account) == "Silver"


def test_a_purchase_at_the_last_second_of_the_calendar_year_counts_for_that_year(program, enrol, buy):
    _set(program, qualification_window=Program.Window.CALENDAR_YEAR)
    with time_machine.travel(_local(2025, 12, 31, 23, 59, 59)):
        account = enrol(program)
        buy(account, "999.00")
        buy(account, "1.00", occurred_at=_local(2025, 12, 31, 23, 59, 59))
    assert _tier_name(account) == "Silver"

    with time_machine.travel(_local(2026, 1, 1, 0, 0, 1)):
        progress = tier_progress(account=account)
    assert progress.qualifying == 0  # a new year, a new window


def test_tiers_on_qualifying_spend(program, enrol, buy):
    _set(program, qualifying_basis=Program.QualifyingBasis.SPEND)
    program.earn_rules.update(rate=Decimal("0.1"))  # few points, but spend is what counts
    account = enrol(program)

    buy(account, "1000.00")

    assert _tier_name(account) == "Silver"
    assert tier_progress(account=account).qualifying == Decimal("1000.00")


def test_tier_progress_tells_the_member_what_is_missing_and_by_when(program, enrol, buy):
    account = enrol(program)
    buy(account, "1400.00")  # Silver; 3,600 short of Gold
    account.refresh_from_db()

    progress = tier_progress(account=account)

    assert (progress.tier.name, progress.next_tier.name) == ("Silver", "Gold")
    assert progress.qualifying == 1400
    assert progress.missing == 3600
    assert progress.percent == 10  # 400 of the 4,000 between Silver and Gold
    assert progress.window_closes_at == account.tier_review_at
    # The purchase that reached Silver does not count toward keeping it: with nothing more, Bronze at the review.
    assert progress.kept_tier.name == "Bronze"


def test_the_top_tier_has_nothing_missing(program, enrol):
    account = enrol(program)
    services.adjust(account=account, points=20000, reason="Top", created_by=None, qualifying=True)
    account.refresh_from_db()

    progress = tier_progress(account=account)

    assert progress.tier.name == "Platinum" and progress.next_tier is None
    assert (progress.missing, progress.percent) == (0, 100)


def test_what_the_member_keeps_if_nothing_changes(program, enrol, buy):
    account = _gold_in_2025(program, enrol, buy)

    with time_machine.travel(_local(2026, 2, 1)):
        progress = tier_progress(account=account)

    assert progress.tier.name == "Gold"
    assert progress.kept_tier.name == "Silver"  # one tier down at the review on 2026-03-10


def test_points_expiring_soon_are_grouped_by_date(program, enrol, buy):
    _set(program, expiry_policy="months_after_earn", expiry_months=12)
    account = enrol(program)
    now = timezone.now()
    buy(account, "10.00", occurred_at=now - datetime.timedelta(days=340))
    buy(account, "15.00", occurred_at=now - datetime.timedelta(days=340))
    buy(account, "7.00", occurred_at=now - datetime.timedelta(days=300))
    buy(account, "99.00", occurred_at=now - datetime.timedelta(days=10))

    expiring = points_expiring_within(account=account, days=30)

    assert [row["points"] for row in expiring] == [25]
    assert [row["points"] for row in points_expiring_within(account=account, days=90)] == [25, 7]


@pytest.mark.parametrize("history", [3, 60])
def test_statement_and_tier_progress_query_counts_do_not_grow_with_history(program, enrol, buy, history):
    account = enrol(program)
    for _ in range(history):
        buy(account, "10.00")
    account = type(account).objects.select_related("program", "tier").get(pk=account.pk)

    with CaptureQueriesContext(connection) as statement_queries:
        list(account_statement(account=account)[:20])
    with CaptureQueriesContext(connection) as progress_queries:
        tier_progress(account=account)
    with CaptureQueriesContext(connection) as expiring_queries:
        points_expiring_within(account=account, days=90)

    assert len(statement_queries) == 1
    assert len(progress_queries) == 2
    assert len(expiring_queries) == 1
