"""The overview's figures, who may see the analytics (and that nobody changes anything through them),
and that every page costs the same number of queries however much history there is."""

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from loyalty import analytics as ledger_analytics
from loyalty import services
from loyalty.core.models import JobRun
from loyalty.models import Account, TierChange
from members.models import Member
from portal import analytics
from rewards import services as reward_services
from tests.analytics.conftest import months_ago
from tests.factories import RewardFactory

pytestmark = pytest.mark.django_db

PAGES = ["staff:analytics", "staff:analytics_liability", "staff:analytics_value", "staff:analytics_cohorts"]
CSVS = [
    "staff:analytics_csv",
    "staff:analytics_liability_csv",
    "staff:analytics_value_csv",
    "staff:analytics_cohorts_csv",
]


def _scope(program):
    end = ledger_analytics.month_start(timezone.now())
    return analytics.Scope(program=program, start=end.replace(year=end.year - 1), end=end)


def test_the_overview_counts_members_activity_tiers_and_rewards(program, enrol, buy, store, clerk_user):
    online = enrol(program, enrolment_channel=Member.Channel.ONLINE)
    counter = [enrol(program) for _ in range(3)]
    Account.objects.filter(pk__in=[a.pk for a in counter]).update(enrolled_at_store=store, enrolled_by=clerk_user)
    Account.objects.filter(pk=online.pk).update(enrolled_at=months_ago(5), last_activity_at=months_ago(5))
    buy(counter[0], "1200.00", occurred_at=timezone.now() - datetime.timedelta(days=3))  # Silver
    buy(counter[1], "300.00", occurred_at=months_ago(1))
    Account.objects.filter(pk=counter[2].pk).update(last_activity_at=timezone.now() - datetime.timedelta(days=120))
    reward = RewardFactory(program=program, name="=HYPERLINK(1)", points_cost=100)
    counter[0].refresh_from_db()
    reward_services.redeem(account=counter[0], reward=reward, idempotency_key="r1", channel="desk")
    reward_services.redeem(account=counter[0], reward=reward, idempotency_key="r2", channel="desk")
    Account.objects.filter(pk=counter[0].pk).update(enrolled_at=timezone.now() - datetime.timedelta(days=10))

    ledger = ledger_analytics.ledger_read(program=program)
    o = analytics.overview(_scope(program), ledger)

    assert (o.members, o.active) == (
        4,
        2,
    )  # joining counts as activity: the one back 120 days ago and the online one are not active
    ten_days_ago_this_month = timezone.now() - datetime.timedelta(days=10) >= analytics._aware(o.points[-1].month)
    assert o.enrolled_this_month == 2 + ten_days_ago_this_month
    assert dict(o.by_channel)["Online"] == 1 and dict(o.by_channel)["At the counter"] == 3
    assert o.by_store == [(store.name, 3), ("No store (online, imported)", 1)]
    assert o.by_clerk[0] == ("Carl", 3)
    assert [(name, n) for name, _c, n in o.tiers] == [("Bronze", 3), ("Silver", 1), ("Gold", 0), ("Platinum", 0)]
    assert sum(up for _m, up, _d in o.movements) == TierChange.objects.filter(reason="upgrade").count() == 1
    assert (o.issued, o.redeemed) == (1500, 200)
    assert o.redemption_rate == Decimal(200) / Decimal(1500)
    assert o.top_rewards == [("=HYPERLINK(1)", 2, 200)]
    assert o.first_redeemers == 1 and o.first_redemption_days == Decimal("10.0")


def test_the_overview_csv_escapes_formulas(client, analyst_user, program, enrol, buy):
    account = enrol(program)
    buy(account, "500.00", occurred_at=timezone.now() - datetime.timedelta(days=1))
    reward_services.redeem(
        account=account, reward=RewardFactory(program=program, name="@SUM(A1)"), idempotency_key="r", channel="desk"
    )
    client.force_login(analyst_user)

    rows = list(csv.reader(io.StringIO(client.get(reverse("staff:analytics_csv")).content.decode())))

    assert ["'@SUM(A1)", "1", "100"] in rows
    assert ["Members enrolled", "1"] in rows


@pytest.mark.parametrize("name", PAGES + CSVS)
def test_analysts_and_managers_read_every_page_and_export(client, analyst_user, manager_user, program, name):
    for user in (analyst_user, manager_user):
        client.force_login(user)
        assert client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize("name", PAGES + CSVS)
def test_clerks_members_and_strangers_are_refused(client, clerk_user, member_user, program, name):
    url = reverse(name)
    assert client.get(url).status_code == 302  # to the sign-in
    for user in (clerk_user, member_user):
        client.force_login(user)
        assert client.get(url).status_code == 403


@pytest.mark.parametrize("name", PAGES + CSVS)
def test_the_analytics_pages_accept_no_writes(client, analyst_user, program, name):
    client.force_login(analyst_user)
    assert client.post(reverse(name)).status_code == 405


def test_an_analyst_cannot_run_the_ledger_summary_or_the_ranking(client, analyst_user, manager_user, program):
    client.force_login(analyst_user)
    for job in ("loyalty.summarise_ledger", "loyalty.refresh_account_values"):
        assert client.post(reverse("staff:job_start", args=[job])).status_code == 403
    assert not JobRun.objects.exists()
    assert "Run the ranking" not in client.get(reverse("staff:analytics_value")).content.decode()

    client.force_login(manager_user)
    assert "Run the ranking" in client.get(reverse("staff:analytics_value")).content.decode()


def test_a_bad_period_says_what_to_fix(client, analyst_user, program):
    client.force_login(analyst_user)
    page = client.get(reverse("staff:analytics"), {"program": program.pk, "start": "2026-06", "end": "2026-01"})
    assert "Choose a month on or after the first month." in page.content.decode()


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("name", PAGES + CSVS)
def test_every_page_costs_the_same_queries_whatever_the_history(
    client, manager_user, expiring_program, history, name, django_assert_max_num_queries
):
    client.force_login(manager_user)
    history(accounts=1)
    services.account_values_refresh(program=expiring_program)
    url = reverse(name)
    without_summaries = _queries(client, url)

    history(accounts=6, offset=1)
    services.account_values_refresh(program=expiring_program)
    assert _queries(client, url) == without_summaries
    ledger_analytics.summaries_refresh(program=expiring_program)
    with_summaries = _queries(client, url)
    history(accounts=3, offset=7)  # recorded since the summaries: read live on top of them

    assert _queries(client, url) == with_summaries
    with django_assert_max_num_queries(24):
        client.get(url)
