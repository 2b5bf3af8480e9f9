"""The value pyramid and enrolment cohorts on small data sets whose answers are worked out by hand."""

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty import services
from loyalty.models import Account
from members.models import Member
from portal import analytics
from tests.analytics.conftest import months_ago

pytestmark = pytest.mark.django_db


def _scope(program, **kwargs):
    end = analytics.ledger_analytics.month_start(timezone.now())
    return analytics.Scope(program=program, start=end.replace(year=end.year - 1), end=end, **kwargs)


@pytest.fixture
def twenty_spenders(program, enrol, buy):
    """Twenty members who spent EUR 100, 200, ... 1,900 and 6,000 last month (1 pt per EUR 1):
    those at 1,000 and over are Silver, the one at 6,000 Gold. Odd ones live in Flanders."""
    accounts = []
    for n in range(1, 21):
        account = enrol(program, region="Flanders" if n % 2 else "Wallonia")
        buy(account, Decimal(6000 if n == 20 else 100 * n), occurred_at=months_ago(1))
        accounts.append(account)
    return accounts


def test_deciles_rank_spend_with_its_share_average_and_tier_mix(program, twenty_spenders):
    assert services.account_values_refresh(program=program) == 20

    p = analytics.pyramid(_scope(program))

    assert [d.decile for d in p.deciles] == list(range(1, 11))
    top, sixth, bottom = p.deciles[0], p.deciles[5], p.deciles[9]
    # Decile 1: 6,000 and 1,900; decile 6: 1,000 and 900; decile 10: 200 and 100. In all, 25,000.
    assert p.spend == Decimal("25000")
    assert (top.members, top.spend, top.average, top.share) == (2, Decimal("7900"), Decimal("3950"), Decimal("0.316"))
    assert (bottom.spend, bottom.average) == (Decimal("300"), Decimal("150"))
    assert p.top_to_bottom == Decimal("26.3")  # 3,950 / 150
    assert p.tier_names == ["Bronze", "Silver", "Gold"]
    assert top.tiers == [("Bronze", 0), ("Silver", 1), ("Gold", 1)]
    assert sixth.tiers == [("Bronze", 1), ("Silver", 1), ("Gold", 0)]
    assert bottom.tiers == [("Bronze", 2), ("Silver", 0), ("Gold", 0)]
    assert sum(d.share for d in p.deciles) == 1


def test_a_region_shows_its_members_in_the_programs_deciles(program, twenty_spenders):
    services.account_values_refresh(program=program)

    p = analytics.pyramid(_scope(program, region="Flanders"))

    # Flanders: 100, 300, ... 1,900 (odd hundreds); decile 1 holds only 1,900 of them.
    assert p.deciles[0].members == 1 and p.deciles[0].spend == Decimal("1900")
    assert p.spend == Decimal(sum(range(100, 2000, 200)))


def test_the_pyramid_page_says_when_the_ranking_was_made_or_that_it_never_ran(client, manager_user, program, enrol):
    enrol(program)
    client.force_login(manager_user)
    url = reverse("staff:analytics_value")

    assert "have not been ranked yet" in client.get(url).content.decode()

    services.account_values_refresh(program=program, as_of=timezone.make_aware(datetime.datetime(2026, 11, 30, 3, 30)))
    page = client.get(url).content.decode()
    assert "have not been ranked yet" not in page
    assert "30 November 2026" in page or "Nov. 30, 2026" in page or "Nov 30, 2026" in page


def _joined(account, enrolled_at, last_activity_at=None):
    Account.objects.filter(pk=account.pk).update(enrolled_at=enrolled_at, last_activity_at=last_activity_at)


def test_cohorts_count_members_back_at_least_n_months_after_joining(program, enrol):
    joined = months_ago(8, day=5)
    for days in (None, 10, 40, 200):
        _joined(enrol(program), joined, joined + datetime.timedelta(days=days) if days else None)
    recent = timezone.now() - datetime.timedelta(days=2)
    _joined(enrol(program), recent, recent)

    rows = analytics.cohorts(_scope(program))

    assert [(c.month, c.members) for c in rows] == [
        (joined.date().replace(day=1), 4),
        (timezone.localdate(recent).replace(day=1), 1),
    ]
    eight_months = rows[0].retention
    assert eight_months[0] == (4, 2, Decimal("0.5"))  # after 30 days: the ones back at 40 and 200
    assert eight_months[1] == (4, 1, Decimal("0.25"))  # after 91 days
    assert eight_months[2] == (4, 1, Decimal("0.25"))  # after 182 days
    assert eight_months[3] == (0, 0, None)  # nobody has been a member for 365 days yet
    assert rows[1].retention == [(0, 0, None)] * 4


def test_cohorts_follow_the_store_filter(program, enrol, store):
    joined = months_ago(3)
    at_store = enrol(program)
    Account.objects.filter(pk=at_store.pk).update(enrolled_at_store=store)
    _joined(at_store, joined, joined + datetime.timedelta(days=60))
    _joined(enrol(program), joined, None)

    rows = analytics.cohorts(_scope(program, store=store))

    assert [(c.members, c.retention[0]) for c in rows] == [(1, (1, 1, Decimal("1")))]
    assert Member.objects.count() == 2


def test_a_member_who_moves_and_changes_tier_since_the_summary_changes_tier_in_the_region_counted(
    program, twenty_spenders, buy
):
    """The pyramid by region reads the member summary, which counts a member in the region of its refresh:
    a member who moves since and changes tier is moved to the new tier there, not taken off the new region."""
    services.account_values_refresh(program=program)
    analytics.ledger_analytics.summaries_refresh(program=program)
    before = {region: analytics.pyramid(_scope(program, region=region)) for region in ("Flanders", "Wallonia")}
    mover = twenty_spenders[0]  # EUR 100, Bronze, in Flanders; decile 10
    Member.objects.filter(pk=mover.member_id).update(region="Wallonia")
    buy(mover, "1000.00")  # Silver now

    flanders = analytics.pyramid(_scope(program, region="Flanders"))
    wallonia = analytics.pyramid(_scope(program, region="Wallonia"))

    assert flanders.summarised_at is not None
    assert flanders.deciles[-1].tiers == [("Bronze", 0), ("Silver", 1)]  # Flanders has no Gold
    assert before["Flanders"].deciles[-1].tiers == [("Bronze", 1), ("Silver", 0)]
    assert wallonia.deciles == before["Wallonia"].deciles  # until the next refresh
    assert all(n >= 0 for p in (flanders, wallonia) for d in p.deciles for _name, n in d.tiers)
