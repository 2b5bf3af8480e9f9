"""The overview's tier mix (counted live) and top rewards (the member summary's `RewardMonth` plus what was
recorded since): for a region, a store and a period they give the figures read live, with the summary
fresh and after members join, redeem, have a redemption cancelled (a refund entry), change tier and move
region; and a filtered overview costs the same few queries whatever happened since the summary."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loyalty import analytics as ledger_analytics
from loyalty import services
from loyalty.models import MemberMonth, MemberMonthMark
from members.models import Member
from rewards import services as reward_services
from rewards.models import Redemption, RewardMonth
from tests.analytics.conftest import months_ago
from tests.analytics.test_member_summary import NOW, _overview, _overview_live
from tests.factories import MemberFactory, RewardFactory, StoreFactory

pytestmark = pytest.mark.django_db


def _tiers(figures) -> list[tuple[str, int]]:
    return [(name, n) for name, _colour, n in figures["tiers"]]


@pytest.fixture
def regions(program, buy):
    """Two rewards redeemed in two regions at two stores, over two months: Flanders has Ann (North store,
    Silver, redeemed the voucher twice and the mug once, a month ago) and Cleo (South, the voucher this
    month, cancelled); Wallonia has Bob (North, the mug this month) and Dan (South, nothing)."""
    north, south = StoreFactory(name="North"), StoreFactory(name="South")

    def join(region, store, at):
        return services.enrol(member=MemberFactory(region=region), program=program, store=store, at=at)

    ann, cleo = join("Flanders", north, months_ago(3)), join("Flanders", south, months_ago(2))
    bob, dan = join("Wallonia", north, months_ago(3)), join("Wallonia", south, months_ago(1))
    for account, amount in ((ann, "1500.00"), (cleo, "300.00"), (bob, "400.00"), (dan, "50.00")):
        buy(account, amount, occurred_at=months_ago(2))
    voucher = RewardFactory(program=program, name="EUR 5 voucher", points_cost=100)
    mug = RewardFactory(program=program, name="Mug", points_cost=150)

    def redeem(account, reward, key, at):
        account.refresh_from_db()
        redemption = reward_services.redeem(account=account, reward=reward, idempotency_key=key, channel="desk")
        Redemption.objects.filter(pk=redemption.redemption.pk).update(created_at=at)  # when it was redeemed
        return redemption.redemption

    redeem(ann, voucher, "ann-1", months_ago(1))
    redeem(ann, voucher, "ann-2", months_ago(1))
    redeem(ann, mug, "ann-3", months_ago(1))
    cancelled = redeem(cleo, voucher, "cleo", NOW)
    reward_services.redemption_cancel(redemption=cancelled, reason="Changed her mind", cancelled_by=None)
    redeem(bob, mug, "bob", NOW)
    return {
        "north": north,
        "south": south,
        "ann": ann,
        "bob": bob,
        "cleo": cleo,
        "dan": dan,
        "voucher": voucher,
        "mug": mug,
    }


def _scopes(regions):
    this_month = ledger_analytics.month_start(NOW)
    return [
        {},
        {"region": "Flanders"},
        {"region": "Wallonia"},
        {"store": regions["north"]},
        {"store": regions["south"]},
        {"region": "Flanders", "store": regions["north"]},
        {"start": this_month, "end": this_month},
        {"region": "Flanders", "start": ledger_analytics.month_start(months_ago(1)), "end": this_month},
    ]


def test_tiers_and_top_rewards_per_region_store_and_period_from_the_summary_are_the_live_figures(program, regions):
    ledger_analytics.summaries_refresh(program=program)

    flanders = _overview(program, region="Flanders")
    wallonia = _overview(program, region="Wallonia")

    assert flanders["top_rewards"] == [("EUR 5 voucher", 2, 200), ("Mug", 1, 150)]  # Cleo's was cancelled
    assert wallonia["top_rewards"] == [("Mug", 1, 150)]
    assert _tiers(flanders) == [("Bronze", 1), ("Silver", 1), ("Gold", 0), ("Platinum", 0)]
    assert _tiers(wallonia) == [("Bronze", 2), ("Silver", 0), ("Gold", 0), ("Platinum", 0)]
    this_month = ledger_analytics.month_start(NOW)
    assert _overview(program, start=this_month, end=this_month)["top_rewards"] == [("Mug", 1, 150)]
    # Read from the summary: its rows are there, and they are what the page shows.
    assert RewardMonth.objects.filter(program=program, region="Flanders").count() == 2
    for scope in _scopes(regions):
        assert _overview(program, **scope) == _overview_live(program, **scope), scope


def test_what_happens_after_the_summary_is_added_to_its_tiers_and_top_rewards_exactly(program, regions, buy):
    ledger_analytics.summaries_refresh(program=program)

    # After the refresh: Eve joins in Flanders at the North store and redeems the mug; Ann's first voucher
    # is cancelled (its refund entry comes after the summary's ledger mark); Bob earns Silver and redeems
    # the voucher, which is cancelled at once (both after the mark); Dan's tier is unchanged.
    eve = services.enrol(member=MemberFactory(region="Flanders"), program=program, store=regions["north"])
    buy(eve, "200.00")
    eve.refresh_from_db()
    reward_services.redeem(account=eve, reward=regions["mug"], idempotency_key="eve", channel="desk")
    reward_services.redemption_cancel(
        redemption=Redemption.objects.get(idempotency_key="ann-1"), reason="Returned", cancelled_by=None
    )
    buy(regions["bob"], "1000.00")
    regions["bob"].refresh_from_db()
    bob_voucher = reward_services.redeem(
        account=regions["bob"], reward=regions["voucher"], idempotency_key="bob-2", channel="desk"
    )
    reward_services.redemption_cancel(redemption=bob_voucher.redemption, reason="Wrong one", cancelled_by=None)
    assert MemberMonthMark.objects.get(program=program).through_account < eve.pk

    flanders = _overview(program, region="Flanders")
    wallonia = _overview(program, region="Wallonia")

    assert flanders["top_rewards"] == [("Mug", 2, 300), ("EUR 5 voucher", 1, 100)]
    assert wallonia["top_rewards"] == [("Mug", 1, 150)]
    assert _tiers(flanders) == [("Bronze", 2), ("Silver", 1), ("Gold", 0), ("Platinum", 0)]
    assert _tiers(wallonia) == [("Bronze", 1), ("Silver", 1), ("Gold", 0), ("Platinum", 0)]
    for scope in _scopes(regions):
        assert _overview(program, **scope) == _overview_live(program, **scope), scope

    # The next refresh takes it all in, and gives the same figures again.
    ledger_analytics.summaries_refresh(program=program)
    assert _overview(program, region="Flanders") == flanders
    assert _overview(program, region="Wallonia") == wallonia


def test_a_redemption_cancelled_since_leaves_the_top_rewards_once_its_last_is_gone(program, regions):
    ledger_analytics.summaries_refresh(program=program)

    reward_services.redemption_cancel(
        redemption=Redemption.objects.get(idempotency_key="bob"), reason="Returned", cancelled_by=None
    )

    assert _overview(program, region="Wallonia")["top_rewards"] == []
    assert _overview(program, region="Wallonia") == _overview_live(program, region="Wallonia")


def test_the_summary_counts_no_redemption_twice_when_refreshed_twice(program, regions):
    ledger_analytics.summaries_refresh(program=program)
    once = list(RewardMonth.objects.order_by("month", "reward", "region", "store").values_list())

    ledger_analytics.summaries_refresh(program=program)

    assert [row[1:] for row in RewardMonth.objects.order_by("month", "reward", "region", "store").values_list()] == [
        row[1:] for row in once
    ]


def _queries(client, url, params) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params).status_code == 200
    return len(queries)


def test_a_filtered_overview_costs_the_same_queries_with_activity_since_the_summary(
    client, manager_user, program, regions, buy
):
    client.force_login(manager_user)
    url = reverse("staff:analytics")
    params = {"program": program.pk, "region": "Flanders", "store": regions["north"].pk}
    ledger_analytics.summaries_refresh(program=program)
    fresh = _queries(client, url, params)

    eve = services.enrol(member=MemberFactory(region="Flanders"), program=program, store=regions["north"])
    buy(eve, "2000.00")
    eve.refresh_from_db()
    redemption = reward_services.redeem(account=eve, reward=regions["mug"], idempotency_key="eve", channel="desk")
    reward_services.redemption_cancel(redemption=redemption.redemption, reason="Returned", cancelled_by=None)
    reward_services.redemption_cancel(
        redemption=Redemption.objects.get(idempotency_key="ann-2"), reason="Returned", cancelled_by=None
    )

    assert _queries(client, url, params) == fresh
    # The whole program's page costs at most 24 (test_overview_and_access); the store filter adds the
    # form's look-ups of the store and its program, nothing more.
    assert fresh <= _queries(client, url, {"program": program.pk}) + 2


def test_without_a_summary_the_tiers_and_top_rewards_are_read_live(program, regions):
    assert not MemberMonth.objects.exists()

    flanders = _overview(program, region="Flanders")

    assert flanders["top_rewards"] == [("EUR 5 voucher", 2, 200), ("Mug", 1, 150)]
    assert _tiers(flanders) == [("Bronze", 1), ("Silver", 1), ("Gold", 0), ("Platinum", 0)]


def _move(account, region):
    Member.objects.filter(pk=account.member_id).update(region=region)


def _figures(figures) -> dict:
    """What a member who moved since the summary changes at once: the count, the tiers, and (for what was
    redeemed or cancelled since) the top rewards and first redemptions."""
    names = ("members", "top_rewards", "first_redeemers", "first_redemption_days")
    return {"tiers": _tiers(figures), **{name: figures[name] for name in names}}


def test_a_member_who_moves_region_and_changes_tier_since_the_summary_counts_in_the_live_tier_mix(
    program, regions, buy
):
    ledger_analytics.summaries_refresh(program=program)

    # The reviewer's case: after the refresh, Dan moves from Wallonia to Flanders and reaches Silver, and
    # Bob's mug (Wallonia) is cancelled.
    _move(regions["dan"], "Flanders")
    buy(regions["dan"], "1500.00")
    reward_services.redemption_cancel(
        redemption=Redemption.objects.get(idempotency_key="bob"), reason="Returned", cancelled_by=None
    )

    flanders = _overview(program, region="Flanders")
    wallonia = _overview(program, region="Wallonia")

    assert _tiers(flanders) == [("Bronze", 1), ("Silver", 2), ("Gold", 0), ("Platinum", 0)]
    assert _tiers(wallonia) == [("Bronze", 1), ("Silver", 0), ("Gold", 0), ("Platinum", 0)]
    assert wallonia["top_rewards"] == []
    for scope in ({"region": "Flanders"}, {"region": "Wallonia"}, {"store": regions["south"]}, {}):
        assert _figures(_overview(program, **scope)) == _figures(_overview_live(program, **scope)), scope


def test_a_redemption_cancelled_since_is_taken_off_the_region_the_summary_counted_it_in(program, regions):
    ledger_analytics.summaries_refresh(program=program)

    # Bob (Wallonia at the refresh, his mug and first redemption counted there) moves to Flanders, then
    # his mug is cancelled: both leave Wallonia, and Ann's mug and first redemption still count in Flanders.
    _move(regions["bob"], "Flanders")
    reward_services.redemption_cancel(
        redemption=Redemption.objects.get(idempotency_key="bob"), reason="Returned", cancelled_by=None
    )

    wallonia, flanders = _overview(program, region="Wallonia"), _overview(program, region="Flanders")
    assert (wallonia["top_rewards"], wallonia["first_redeemers"]) == ([], 0)
    assert flanders["top_rewards"] == [("EUR 5 voucher", 2, 200), ("Mug", 1, 150)]
    assert flanders["first_redeemers"] == 1
    for region in ("Flanders", "Wallonia"):
        assert _figures(_overview(program, region=region)) == _figures(_overview_live(program, region=region))


def test_a_moved_members_redemptions_from_before_the_summary_stay_in_the_old_region_until_the_next_refresh(
    program, regions
):
    ledger_analytics.summaries_refresh(program=program)

    _move(regions["ann"], "Wallonia")  # her vouchers and mug stand

    assert _overview(program, region="Flanders")["top_rewards"] == [("EUR 5 voucher", 2, 200), ("Mug", 1, 150)]
    assert _tiers(_overview(program, region="Wallonia")) == [("Bronze", 2), ("Silver", 1), ("Gold", 0), ("Platinum", 0)]
    ledger_analytics.summaries_refresh(program=program)
    for region in ("Flanders", "Wallonia"):
        assert _overview(program, region=region)["top_rewards"] == _overview_live(program, region=region)["top_rewards"]


def test_a_reward_is_never_shown_below_zero_when_the_cancellations_outnumber_the_summary(program, regions):
    ledger_analytics.summaries_refresh(program=program)
    RewardMonth.objects.filter(program=program, region="Wallonia").delete()  # a summary short of Bob's mug

    reward_services.redemption_cancel(
        redemption=Redemption.objects.get(idempotency_key="bob"), reason="Returned", cancelled_by=None
    )

    assert _overview(program, region="Wallonia")["top_rewards"] == []  # mug: 0 - 1, not shown
    assert _overview(program)["top_rewards"] == [("EUR 5 voucher", 2, 200)]  # mug: Ann's 1 - Bob's 1
