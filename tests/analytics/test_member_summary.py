"""The member summary (`MemberMonth`, `MemberDecile`, refreshed by the daily job): the overview and the
value pyramid give the same figures from it as counted live, on a small program checked by hand and on
generated history; a second refresh changes nothing; and what happens after a refresh (members who
join, tier changes, redemptions and their cancellations) is added to the summary to give, again, the
figures counted live, for the whole program, a region, a store and a period."""

import datetime
from decimal import Decimal

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from loyalty import analytics as ledger_analytics
from loyalty import services
from loyalty.models import Account, LedgerEntry, MemberDecile, MemberMonth, MemberMonthMark, TierChange
from members.models import Member
from portal import analytics
from rewards import services as reward_services
from rewards.models import Redemption
from tests.analytics.conftest import months_ago
from tests.conftest import tier
from tests.factories import MemberFactory, RewardFactory, StoreFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _scope(program, **kwargs):
    end = ledger_analytics.month_start(NOW)
    kwargs = {"start": end.replace(year=end.year - 1), "end": end, **kwargs}
    return analytics.Scope(program=program, now=NOW, **kwargs)


def _overview(program, **scope) -> dict:
    """The overview's figures, without the time of the summary they came from."""
    ledger = ledger_analytics.ledger_read(program=program)
    figures = dict(analytics.overview(_scope(program, **scope), ledger).__dict__)
    figures.pop("summarised_at")
    return figures


def _overview_live(program, **scope) -> dict:
    """The same figures with no member summary at all: every account and tier change read live."""
    with transaction.atomic():
        MemberMonthMark.objects.filter(program=program).delete()
        MemberMonth.objects.filter(program=program).delete()
        figures = _overview(program, **scope)
        transaction.set_rollback(True)
    return figures


def _pyramid(program, **scope):
    p = analytics.pyramid(_scope(program, **scope))
    return [d.__dict__ for d in p.deciles], p.tier_names, p.summarised_at


def _join(program, *, region="Brussels", channel=Member.Channel.COUNTER, store=None, clerk=None, at=None):
    member = MemberFactory(region=region, enrolment_channel=channel)
    return services.enrol(member=member, program=program, store=store, enrolled_by=clerk, at=at)


@pytest.fixture
def small_program(program, clerk_user, buy):
    """Four members checked by hand: Ann and Bob joined at the North store through Carl two months ago,
    Cleo online last month, Dan at the South store this month. Ann earns Silver and redeems twice, Bob
    redeems once, Cleo redeems and has it cancelled. Ann, Cleo and Dan live in Flanders."""
    north, south = StoreFactory(name="North"), StoreFactory(name="South")
    joined = months_ago(2)
    ann = _join(program, region="Flanders", store=north, clerk=clerk_user, at=joined)
    bob = _join(program, region="Wallonia", store=north, clerk=clerk_user, at=joined)
    cleo = _join(program, region="Flanders", channel=Member.Channel.ONLINE, at=months_ago(1))
    dan = _join(program, region="Flanders", store=south)
    buy(ann, "1200.00")
    buy(bob, "300.00")
    buy(cleo, "200.00")
    reward = RewardFactory(program=program, name="EUR 5 voucher", points_cost=100)
    for account, key in ((ann, "ann-1"), (ann, "ann-2"), (bob, "bob"), (cleo, "cleo")):
        account.refresh_from_db()
        result = reward_services.redeem(account=account, reward=reward, idempotency_key=key, channel="desk")
        if key == "cleo":
            reward_services.redemption_cancel(
                redemption=result.redemption, reason="Changed her mind", cancelled_by=None
            )
    return {"north": north, "south": south, "ann": ann, "bob": bob, "cleo": cleo, "dan": dan, "joined": joined}


def _days_to_first_redemption(*accounts) -> Decimal:
    """By hand: from each account's enrolment to its first redeem entry not refunded, averaged, in days."""
    waits = []
    for account in accounts:
        refunded = LedgerEntry.objects.filter(reverses__isnull=False).values("reverses")
        redeems = LedgerEntry.objects.filter(account=account, kind=LedgerEntry.Kind.REDEEM).exclude(pk__in=refunded)
        first = redeems.earliest("occurred_at")
        waits.append((first.occurred_at - Account.objects.get(pk=account.pk).enrolled_at).total_seconds())
    return (Decimal(sum(waits)) / len(waits) / 86400).quantize(Decimal("0.1"))


def test_the_summary_gives_the_hand_checked_figures_of_a_small_program(program, small_program):
    ledger_analytics.member_months_refresh(program=program)

    o = _overview(program)

    this_month, last_month, two_ago = (ledger_analytics.month_start(months_ago(n)) for n in (0, 1, 2))
    assert (o["members"], o["enrolled_this_month"], o["active"]) == (4, 1, 4)
    assert dict(o["by_channel"]) == {
        "At the counter": 3,
        "Online": 1,
        "Imported": 0,
        "By invitation": 0,
        "Point of sale": 0,
    }
    assert o["by_store"] == [("North", 2), ("South", 1), ("No store (online, imported)", 1)]
    assert o["by_clerk"] == [("Carl", 2), ("No clerk (online, imported)", 2)]
    enrolments = dict(o["enrolments"])
    assert (enrolments[two_ago], enrolments[last_month], enrolments[this_month]) == (2, 1, 1)
    assert sum(enrolments.values()) == 4
    assert [(m, up, down) for m, up, down in o["movements"] if up or down] == [(this_month, 1, 0)]
    assert [(name, n) for name, _c, n in o["tiers"]] == [("Bronze", 3), ("Silver", 1), ("Gold", 0), ("Platinum", 0)]
    # Cleo's redemption was cancelled: Ann and Bob are the members who redeemed.
    assert o["first_redeemers"] == 2
    assert o["first_redemption_days"] == _days_to_first_redemption(small_program["ann"], small_program["bob"])
    assert o["first_redemption_days"] > 50  # they joined two months ago
    assert o == _overview_live(program)


def test_a_region_or_a_store_reads_only_its_members_from_the_summary(program, small_program):
    ledger_analytics.member_months_refresh(program=program)

    flanders = _overview(program, region="Flanders")
    north = _overview(program, store=small_program["north"])

    assert flanders["members"] == 3
    assert dict(flanders["by_channel"])["At the counter"] == 2 and dict(flanders["by_channel"])["Online"] == 1
    assert flanders["by_clerk"] == [("No clerk (online, imported)", 2), ("Carl", 1)]
    assert flanders["first_redeemers"] == 1  # Ann; Bob lives in Wallonia
    assert north["by_store"] == [("North", 2)] and north["first_redeemers"] == 2
    assert flanders == _overview_live(program, region="Flanders")
    assert north == _overview_live(program, store=small_program["north"])


def test_the_summary_gives_the_live_figures_on_generated_history(expiring_program, history, clerk_user):
    history(accounts=6)
    stores = [StoreFactory(name=f"Store {n}") for n in range(3)]
    for n in range(12):
        _join(
            expiring_program,
            region=("Flanders", "Wallonia", "Brussels")[n % 3],
            channel=(Member.Channel.COUNTER, Member.Channel.ONLINE, Member.Channel.API)[n % 3],
            store=stores[n % 3] if n % 4 else None,
            clerk=clerk_user if n % 2 else None,
            at=months_ago(n),
        )
    services.evaluate_tiers(program=expiring_program)

    assert ledger_analytics.member_months_refresh(program=expiring_program) > 0

    for scope in ({}, {"region": "Wallonia"}, {"store": stores[1]}):
        summarised = _overview(expiring_program, **scope)
        assert summarised == _overview_live(expiring_program, **scope), scope
    whole = _overview(expiring_program)
    assert whole["members"] == 18 and sum(n for _label, n in whole["by_channel"]) == 18
    assert whole["first_redeemers"] == 3  # history's odd accounts keep their spend; even ones were refunded


def test_refreshing_twice_changes_nothing(expiring_program, history):
    history(accounts=4)
    services.account_values_refresh(program=expiring_program)

    def summary():
        months = MemberMonth.objects.filter(program=expiring_program).order_by(
            "kind", "month", "region", "store", "clerk", "channel"
        )
        deciles = MemberDecile.objects.filter(program=expiring_program).order_by("decile", "tier", "region", "store")
        mark = MemberMonthMark.objects.get(program=expiring_program)
        return (
            list(months.values_list("kind", "month", "region", "store", "clerk", "channel", "members", "waited")),
            list(deciles.values_list("decile", "tier", "region", "store", "members", "spend", "computed_at")),
            (mark.through_account, mark.account_gaps, mark.through_tier_change, mark.tier_change_gaps, mark.ranked_at),
        )

    first = ledger_analytics.member_months_refresh(program=expiring_program)
    once = summary()
    second = ledger_analytics.member_months_refresh(program=expiring_program)

    assert second == first and summary() == once
    assert once[0] and once[1]


def test_what_happens_after_the_refresh_is_added_to_the_summary_exactly(program, small_program, buy):
    ledger_analytics.summaries_refresh(program=program)
    before = _overview(program)
    assert before["first_redeemers"] == 2  # Ann and Bob

    # After the refresh: Eve joins at the South store, Bob earns Silver, Dan comes back (activity) and
    # makes his first redemption; Ann's first redemption and Bob's only one are cancelled.
    eve = _join(program, region="Flanders", store=small_program["south"])
    buy(small_program["bob"], "1000.00")
    dan = small_program["dan"]
    Account.objects.filter(pk=dan.pk).update(last_activity_at=NOW - datetime.timedelta(days=200))
    assert _overview(program)["active"] == before["active"] - 1 + 1  # Eve in, Dan out
    buy(dan, "150.00")
    dan.refresh_from_db()
    reward = RewardFactory(program=program, points_cost=100)
    reward_services.redeem(account=dan, reward=reward, idempotency_key="dan", channel="desk")
    for key in ("ann-1", "bob"):
        redemption = Redemption.objects.get(idempotency_key=key)
        reward_services.redemption_cancel(redemption=redemption, reason="Returned", cancelled_by=None)

    after = _overview(program)

    assert after["members"] == 5 and after["active"] == 5
    assert dict(after["by_store"])["South"] == 2 and dict(after["enrolments"])[months_ago(0).date().replace(day=1)] == 2
    assert [(m, up) for m, up, _d in after["movements"] if up] == [(ledger_analytics.month_start(NOW), 2)]
    assert [(name, n) for name, _c, n in after["tiers"]][:2] == [("Bronze", 3), ("Silver", 2)]
    # Ann (her second redemption is now her first) and Dan; Bob has none left.
    assert after["first_redeemers"] == 2
    assert after["first_redemption_days"] == _days_to_first_redemption(small_program["ann"], dan)
    assert after["first_redemption_days"] != before["first_redemption_days"]
    assert after == _overview_live(program)
    for scope in ({"region": "Flanders"}, {"store": small_program["north"]}, {"store": small_program["south"]}):
        assert _overview(program, **scope) == _overview_live(program, **scope), scope
    assert eve.pk > MemberMonthMark.objects.get(program=program).through_account

    # The next refresh takes it all in, and gives the same figures again.
    ledger_analytics.summaries_refresh(program=program)
    assert _overview(program) == after


def test_a_member_who_moves_counts_in_the_old_region_until_the_next_refresh(program, small_program):
    """The one figure as of the summary, as the page says: the region a member lived in at the refresh."""
    ledger_analytics.summaries_refresh(program=program)
    Member.objects.filter(pk=small_program["bob"].member_id).update(region="Flanders")  # from Wallonia

    assert _overview(program, region="Flanders")["members"] == 4  # counted live
    assert dict(_overview(program, region="Flanders")["by_channel"])["At the counter"] == 2  # as of the summary
    assert dict(_overview_live(program, region="Flanders")["by_channel"])["At the counter"] == 3

    ledger_analytics.summaries_refresh(program=program)
    assert _overview(program, region="Flanders") == _overview_live(program, region="Flanders")


def test_a_period_reads_only_its_months_from_the_summary_and_from_what_came_since(expiring_program, history):
    history(accounts=4)
    services.evaluate_tiers(program=expiring_program)
    ledger_analytics.summaries_refresh(program=expiring_program)
    history(accounts=2, offset=4)  # enrolled and moved after the refresh
    this_month = ledger_analytics.month_start(NOW)
    periods = [
        {"start": this_month, "end": this_month},
        {"start": this_month.replace(year=this_month.year - 1), "end": this_month.replace(year=this_month.year - 1)},
        {"start": ledger_analytics.month_start(months_ago(9)), "end": ledger_analytics.month_start(months_ago(2))},
    ]

    for period in periods:
        assert _overview(expiring_program, **period) == _overview_live(expiring_program, **period), period
    assert dict(_overview(expiring_program, **periods[0])["enrolments"]) == {this_month: 6}


def test_a_tier_change_committed_below_the_mark_after_the_refresh_is_still_counted_once(program, enrol):
    """Ids come from a sequence before commit: a change can commit with an id below the summary's mark.
    The mark keeps the gap it saw, the pages read it live, and the next refresh takes it in once."""
    account = enrol(program)
    silver, gold = tier(program, "Silver"), tier(program, "Gold")
    high = TierChange.objects.latest("pk").pk + 1_000

    def upgrade(pk, to):
        TierChange.objects.create(
            pk=pk, account=account, from_tier=account.tier, to_tier=to, reason="upgrade", changed_at=NOW
        )

    upgrade(high, silver)
    upgrade(high + 2, gold)  # high + 1 is still being written by a slower transaction
    ledger_analytics.member_months_refresh(program=program)
    mark = MemberMonthMark.objects.get(program=program)
    assert mark.through_tier_change == high + 2 and [high + 1, high + 1] in mark.tier_change_gaps

    upgrade(high + 1, gold)  # it commits now

    def upgrades():
        return sum(up for _month, up, _down in _overview(program)["movements"])

    assert upgrades() == 3 == sum(up for _m, up, _d in _overview_live(program)["movements"])
    ledger_analytics.member_months_refresh(program=program)
    assert upgrades() == 3
    assert [high + 1, high + 1] not in MemberMonthMark.objects.get(program=program).tier_change_gaps
    # A gap still empty an hour after a refresh saw it was a rolled-back insert: no longer read.
    ledger_analytics.member_months_refresh(program=program, now=timezone.now() + datetime.timedelta(hours=2))
    assert MemberMonthMark.objects.get(program=program).tier_change_gaps == [] and upgrades() == 3


def test_the_pyramid_reads_the_summary_and_moves_members_whose_tier_changed_since(program, enrol, buy):
    accounts = [enrol(program, region="Flanders" if n % 2 else "Wallonia") for n in range(10)]
    for n, account in enumerate(accounts):
        buy(account, Decimal(100 * (n + 1)), occurred_at=months_ago(1))
    services.account_values_refresh(program=program)
    live = _pyramid(program)

    ledger_analytics.summaries_refresh(program=program)
    mark = MemberMonthMark.objects.get(program=program)

    assert _pyramid(program) == (*live[:2], mark.refreshed_at)
    assert _pyramid(program, region="Flanders")[:2] == _pyramid_live(program, region="Flanders")[:2]

    buy(accounts[0], "1000.00")  # the bottom decile's member earns Silver after the refresh, ...
    buy(accounts[9], "6000.00")  # ... the top decile's goes to Gold (through Silver: two changes)
    deciles, names, _at = _pyramid(program)
    assert (deciles[-1]["tiers"], deciles[0]["tiers"]) == (
        [("Bronze", 0), ("Silver", 1), ("Gold", 0)],
        [("Bronze", 0), ("Silver", 0), ("Gold", 1)],
    )
    assert (deciles, names) == _pyramid_live(program)[:2]
    assert _pyramid(program, region="Wallonia")[:2] == _pyramid_live(program, region="Wallonia")[:2]
    ledger_analytics.summaries_refresh(program=program)
    assert (deciles, names) == _pyramid(program)[:2]

    # A new ranking since the summary: the pyramid is read live.
    buy(accounts[1], "1000.00")
    services.account_values_refresh(program=program, as_of=timezone.now() + datetime.timedelta(seconds=1))
    deciles, _names, summarised_at = _pyramid(program)
    assert summarised_at is None
    assert (deciles[0]["spend"], deciles[0]["tiers"]) == (Decimal("7000"), [("Bronze", 0), ("Silver", 0), ("Gold", 1)])


def _pyramid_live(program, **scope):
    with transaction.atomic():
        MemberMonthMark.objects.filter(program=program).delete()
        figures = _pyramid(program, **scope)
        transaction.set_rollback(True)
    return figures


def test_the_overview_says_what_is_as_of_the_member_summary(client, manager_user, program, small_program):
    client.force_login(manager_user)
    url = reverse("staff:analytics")

    assert "The member summary has not been built yet" in client.get(url).content.decode()

    ledger_analytics.summaries_refresh(program=program)
    page = client.get(url).content.decode()
    assert "The member summary has not been built yet" not in page
    assert "come from the daily member summary of" in page


def test_the_daily_job_builds_the_member_summary_with_the_ledgers(program, small_program, run_job):
    run = run_job("loyalty.summarise_ledger")

    assert run.status == "succeeded"
    mark = MemberMonthMark.objects.get(program=program)
    assert mark.through_account == Account.objects.latest("pk").pk
    assert MemberMonth.objects.filter(program=program, kind=MemberMonth.Kind.ENROLLED).exists()
    assert ledger_analytics.ledger_read(program=program).tail_entries == 0
