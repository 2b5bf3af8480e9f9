"""Spend and points in a period, as the nightly ranking sums them: the edges of the period, returns,
members with nothing in the period, what happened since the ranking, and that a count, the list and the
launch's INSERT … SELECT agree whatever shape the query takes."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from campaigns import segments
from loyalty import services as engine_services
from loyalty.models import Account
from loyalty.selectors import ranking_made_at

DAY = datetime.timedelta(days=1)
SECOND = datetime.timedelta(seconds=1)


@pytest.fixture
def as_of():
    return timezone.now() - DAY


@pytest.fixture
def shoppers(program, buy, enrol, as_of):
    """Accounts keyed by first name, over the 30 days before `as_of` (period = (as_of - 30 days, as_of]):

    | name     | purchases (EUR, when)                                   | spend in the period |
    | at_end   | 100 at as_of                                            | 100                 |
    | at_start | 100 at as_of - 30 days (the period starts just after)   | 0                   |
    | inside   | 100 one second after as_of - 30 days                    | 100                 |
    | later    | 100 a day after as_of                                   | 0                   |
    | earlier  | 500 at 60 days                                          | 0                   |
    | refunded | 200 at 10 days, returned in full                        | 0                   |
    | partly   | 300 at 10 days, 250 returned                            | 50                  |
    | twice    | 30 at 5 days and 30 at 2 days                           | 60                  |
    | never    | nothing                                                 | 0                   |
    """
    start = as_of - 30 * DAY
    accounts = {
        name: enrol(program, first_name=name)
        for name in ("at_end", "at_start", "inside", "later", "earlier", "refunded", "partly", "twice", "never")
    }
    buy(accounts["at_end"], Decimal("100"), occurred_at=as_of)
    buy(accounts["at_start"], Decimal("100"), occurred_at=start)
    buy(accounts["inside"], Decimal("100"), occurred_at=start + SECOND)
    buy(accounts["later"], Decimal("100"), occurred_at=as_of + DAY)
    buy(accounts["earlier"], Decimal("500"), occurred_at=as_of - 60 * DAY)
    refunded = buy(accounts["refunded"], Decimal("200"), occurred_at=as_of - 10 * DAY).purchase
    engine_services.reverse_purchase(purchase=refunded, amount=Decimal("200"), idempotency_key="refunded-return")
    partly = buy(accounts["partly"], Decimal("300"), occurred_at=as_of - 10 * DAY).purchase
    engine_services.reverse_purchase(purchase=partly, amount=Decimal("250"), idempotency_key="partly-return")
    buy(accounts["twice"], Decimal("30"), occurred_at=as_of - 5 * DAY)
    buy(accounts["twice"], Decimal("30"), occurred_at=as_of - 2 * DAY)
    engine_services.account_values_refresh(program=program, as_of=as_of)  # what the nightly job does
    return accounts


def selected(program, as_of, **criteria) -> list[str]:
    engine_services.account_values_refresh(program=program, as_of=as_of)
    segment = segments.segment_draft(program=program, period_days=30, **criteria)
    accounts = segments.segment_accounts(program=program, segment=segment, as_of=as_of)
    return sorted(accounts.values_list("member__first_name", flat=True))


ZERO_SPEND = ["at_start", "earlier", "later", "never", "refunded"]


def test_the_period_starts_just_after_its_first_instant_and_ends_with_as_of(program, shoppers, as_of):
    assert selected(program, as_of, spend_min=Decimal("100")) == ["at_end", "inside"]


def test_a_range_that_admits_no_spend_keeps_members_without_purchases_in_the_period(program, shoppers, as_of):
    assert selected(program, as_of, spend_max=Decimal("50")) == sorted([*ZERO_SPEND, "partly"])
    assert selected(program, as_of, spend_min=Decimal("0"), spend_max=Decimal("0")) == ZERO_SPEND


def test_a_minimum_of_zero_without_a_maximum_keeps_everyone(program, shoppers, as_of):
    assert selected(program, as_of, spend_min=Decimal("0")) == sorted(shoppers)
    assert selected(program, as_of, points_min=0) == sorted(shoppers)


def test_a_positive_minimum_leaves_out_members_without_spend(program, shoppers, as_of):
    assert selected(program, as_of, spend_min=Decimal("0.01"), spend_max=Decimal("60")) == ["partly", "twice"]


def test_both_bounds_of_a_range_are_exact_to_the_cent(program, shoppers, as_of):
    assert selected(program, as_of, spend_min=Decimal("50.01"), spend_max=Decimal("60")) == ["twice"]
    assert selected(program, as_of, spend_min=Decimal("49.99"), spend_max=Decimal("50")) == ["partly"]
    assert selected(program, as_of, spend_min=Decimal("50"), spend_max=Decimal("59.99")) == ["partly"]
    assert selected(program, as_of, points_min=51, points_max=60) == ["twice"]


def test_spend_is_net_of_returns_and_sums_every_purchase_in_the_period(program, shoppers, as_of):
    assert selected(program, as_of, spend_min=Decimal("50"), spend_max=Decimal("50")) == ["partly"]
    assert selected(program, as_of, spend_min=Decimal("60"), spend_max=Decimal("60")) == ["twice"]
    assert "refunded" not in selected(program, as_of, spend_min=Decimal("0.01"))


def test_only_earned_points_count_and_within_the_period(program, shoppers, as_of):
    # 1 pt per EUR 1 when each purchase was made; a return takes points back with a reversal, not an
    # earn entry, and an adjustment is not an earn.
    engine_services.adjust(account=shoppers["never"], points=500, reason="Goodwill", created_by=None)

    assert selected(program, as_of, points_min=100) == ["at_end", "inside", "partly", "refunded"]
    assert selected(program, as_of, points_max=0) == ["at_start", "earlier", "later", "never"]
    assert selected(program, as_of, points_min=60, points_max=60) == ["twice"]


def test_spend_and_points_criteria_combine(program, shoppers, as_of):
    assert selected(program, as_of, spend_max=Decimal("50"), points_min=200) == ["partly", "refunded"]


CRITERIA = [
    {"spend_min": Decimal("100")},
    {"spend_max": Decimal("50")},
    {"spend_min": Decimal("0.01"), "spend_max": Decimal("60")},
    {"points_max": 50},
    {"points_min": 1, "points_max": 100},
    {"spend_max": Decimal("80"), "points_max": 60},
]


@pytest.mark.parametrize("criteria", CRITERIA)
def test_the_count_is_the_number_of_accounts_listed_each_once(program, shoppers, as_of, criteria):
    segment = segments.segment_draft(program=program, period_days=30, **criteria)
    listed = list(segments.segment_accounts(program=program, segment=segment, as_of=as_of).values_list("pk", flat=True))

    assert segments.segment_count(program=program, segment=segment, as_of=as_of) == len(listed) == len(set(listed))


@pytest.mark.parametrize("criteria", CRITERIA)
def test_the_accounts_nest_in_a_larger_query(program, shoppers, as_of, criteria):
    """Campaign launch filters and wraps the accounts (`pk__in`, `exclude`): the criteria must keep naming
    the outer account when the query becomes a subquery."""
    segment = segments.segment_draft(program=program, period_days=30, **criteria)
    chosen = segments.segment_accounts(program=program, segment=segment, as_of=as_of)
    expected = set(chosen.values_list("pk", flat=True))

    nested = Account.objects.filter(pk__in=chosen.values("pk"))
    rest = Account.objects.filter(program=program).exclude(pk__in=chosen.values("pk"))

    assert set(nested.values_list("pk", flat=True)) == expected
    assert set(rest.values_list("pk", flat=True)) == set(program.accounts.values_list("pk", flat=True)) - expected


def test_a_segment_on_spend_and_points_is_counted_in_one_query_and_inserted_in_one_statement(
    program, shoppers, as_of, django_assert_num_queries
):
    segment = segments.segment_save(
        program=program,
        name="Lapsing small spenders",
        created_by=None,
        period_days=30,
        spend_max=Decimal("50"),
        points_min=1,
    )

    with django_assert_num_queries(1):
        count = segments.segment_count(program=program, segment=segment, as_of=as_of)

    accounts = segments.segment_accounts(program=program, segment=segment, as_of=as_of)
    sql, params = accounts.order_by().values_list("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE picked (account_id bigint)")
        cursor.execute(f"INSERT INTO picked (account_id) {sql}", params)
        cursor.execute("SELECT account_id FROM picked")
        inserted = {row[0] for row in cursor.fetchall()}
        cursor.execute("DROP TABLE picked")
    assert count == 2
    assert inserted == {shoppers["partly"].pk, shoppers["refunded"].pk}


# --- as of the nightly ranking ----------------------------------------------------------------------


def ranked(program, as_of, **criteria) -> list[str]:
    """What the criteria select without ranking again first (unlike `selected`)."""
    segment = segments.segment_draft(program=program, period_days=30, **criteria)
    accounts = segments.segment_accounts(program=program, segment=segment, as_of=as_of)
    return sorted(accounts.values_list("member__first_name", flat=True))


def test_spend_and_points_are_read_as_the_last_ranking_summed_them(program, shoppers, as_of, buy):
    buy(shoppers["never"], Decimal("100"), occurred_at=as_of - DAY)  # posted after the ranking

    assert ranked(program, as_of, spend_min=Decimal("100")) == ["at_end", "inside"]
    assert "never" in ranked(program, as_of, points_max=0)

    engine_services.account_values_refresh(program=program, as_of=as_of)

    assert ranked(program, as_of, spend_min=Decimal("100")) == ["at_end", "inside", "never"]
    assert "never" not in ranked(program, as_of, points_max=0)


def test_a_member_who_joined_after_the_ranking_has_spent_and_earned_nothing_yet(program, shoppers, as_of, enrol):
    enrol(program, first_name="newcomer")

    assert "newcomer" in ranked(program, as_of, spend_max=Decimal("50"), points_max=10)
    assert "newcomer" not in ranked(program, as_of, spend_min=Decimal("0.01"))
    assert "newcomer" not in ranked(program, as_of, points_min=1)


def test_each_period_has_its_own_sums(program, shoppers, as_of):
    """`earlier` spent 500 sixty days before the ranking: outside 30 days, inside 90, 180 and 365."""
    for days, expected in ((30, False), (90, True), (180, True), (365, True)):
        segment = segments.segment_draft(program=program, period_days=days, spend_min=Decimal("500"))
        found = segments.segment_accounts(program=program, segment=segment, as_of=as_of)
        assert found.filter(pk=shoppers["earlier"].pk).exists() is expected, days


def test_the_periods_offered_are_those_the_ranking_sums():
    from campaigns.models import Segment
    from loyalty.models import AccountValue

    offered = [days for days, _label in Segment._meta.get_field("period_days").choices]
    assert offered == list(AccountValue.PERIODS)
    for days in AccountValue.PERIODS:  # one column of each kind per period
        AccountValue._meta.get_field(f"spend_{days}d")
        AccountValue._meta.get_field(f"points_{days}d")


def test_the_editor_says_how_fresh_the_sums_are(program, enrol):
    enrol(program, first_name="solo")
    assert "have not been computed" in segments.values_freshness(program=program)
    assert ranking_made_at(program=program) is None

    moment = timezone.now().replace(microsecond=0)
    engine_services.account_values_refresh(program=program, as_of=moment)

    assert ranking_made_at(program=program) == moment
    assert "as computed on" in segments.values_freshness(program=program)


def test_saved_periods_move_to_the_shortest_kept_period_that_covers_them(program):
    import importlib

    from django.apps import apps

    from campaigns.models import Segment

    migration = importlib.import_module("campaigns.migrations.0004_segment_periods")
    saved = {}
    for days in (1, 30, 45, 90, 91, 200, 365, 3000):
        saved[days] = segments.segment_save(program=program, name=f"{days} days", created_by=None).pk
        Segment.objects.filter(pk=saved[days]).update(period_days=days)  # as the field allowed before

    migration.snap_to_a_kept_period(apps, None)

    periods = dict(Segment.objects.values_list("pk", "period_days"))
    assert {days: periods[pk] for days, pk in saved.items()} == {
        1: 30,
        30: 30,
        45: 90,
        90: 90,
        91: 180,
        200: 365,
        365: 365,
        3000: 365,
    }


def test_the_migration_forgets_a_ranking_made_before_the_period_sums(program, shoppers):
    import importlib

    from django.apps import apps

    from loyalty.models import AccountValue

    migration = importlib.import_module("loyalty.migrations.0016_account_value_periods")
    assert AccountValue.objects.filter(program=program).exists()

    migration.forget_the_ranking(apps, None)

    assert not AccountValue.objects.exists()
    assert "have not been computed" in segments.values_freshness(program=program)
