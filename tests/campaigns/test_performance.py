"""What a campaign returned: treatment against control, measured by SQL over generated purchases."""

import datetime
import random
import statistics
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import selectors, services
from campaigns.models import Campaign, CampaignMember
from loyalty.models import Purchase
from tests.factories import MemberFactory

START = datetime.date(2026, 11, 2)
END = datetime.date(2026, 11, 15)


def _at(day, hour=12):
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour)))


@pytest.fixture
def measured(program):
    """measured(lift=0.10, members=400) -> the campaign, and each group's spend per member as generated."""
    from loyalty import services as engine

    def _make(*, lift: float, members: int = 200, seed: int = 7):
        accounts = [engine.enrol(member=MemberFactory(), program=program) for _ in range(members)]
        campaign = Campaign.objects.create(
            program=program,
            name="Autumn push",
            starts_on=START,
            ends_on=END,
            mechanic=Campaign.Mechanic.ANNOUNCEMENT,
            holdout_percent=Decimal("50"),
            status=Campaign.Status.ENDED,
        )
        services._record_members(campaign, program.accounts.all(), _at(START, 0))
        # Every other member held out, so the groups (like the spend) are the same at every run
        # whatever ids the database hands out.
        held_out = [account.pk for account in accounts[1::2]]
        CampaignMember.objects.filter(campaign=campaign).update(held_out=False)
        CampaignMember.objects.filter(campaign=campaign, account_id__in=held_out).update(held_out=True)
        groups = dict(CampaignMember.objects.filter(campaign=campaign).values_list("account_id", "held_out"))
        rng = random.Random(seed)
        spent = {False: [], True: []}
        purchases = []
        for account in accounts:
            held = groups[account.pk]
            visits = rng.randint(0, 3) if rng.random() < 0.9 else 0
            total = Decimal("0")
            for visit in range(visits):
                amount = Decimal(str(round(rng.uniform(20, 60) * (1 if held else 1 + lift), 2)))
                total += amount
                day = START + datetime.timedelta(days=rng.randint(0, (END - START).days))
                purchases.append(
                    Purchase(
                        program=program,
                        account=account,
                        receipt_number=f"R{account.pk}-{visit}",
                        amount=amount,
                        currency="EUR",
                        occurred_at=_at(day),
                        idempotency_key=f"k{account.pk}-{visit}",
                        fingerprint="generated",
                    )
                )
            spent[held].append(float(total))
        # Purchases outside the window never count.
        purchases.append(
            Purchase(
                program=program,
                account=accounts[0],
                receipt_number=f"before-{seed}",
                amount=Decimal("5000"),
                currency="EUR",
                occurred_at=_at(START - datetime.timedelta(days=1)),
                idempotency_key=f"before-{seed}",
                fingerprint="generated",
            )
        )
        Purchase.objects.bulk_create(purchases)
        return campaign, spent

    return _make


def test_group_figures_match_a_hand_count_of_the_generated_purchases(measured):
    campaign, spent = measured(lift=0.10)

    performance = selectors.campaign_performance(campaign=campaign)

    for group, held in ((performance.treatment, False), (performance.control, True)):
        assert group.members == len(spent[held])
        assert group.participants == sum(1 for total in spent[held] if total > 0)
        assert group.spend_per_member == pytest.approx(statistics.mean(spent[held]))
        assert group.variance == pytest.approx(statistics.variance(spent[held]))
    assert performance.incremental_spend == pytest.approx(performance.lift_per_member * performance.treatment.members)


def test_a_ten_percent_lift_in_spend_is_inside_the_reported_interval(measured):
    campaign, spent = measured(lift=0.10, members=300)

    performance = selectors.campaign_performance(campaign=campaign)

    # The true lift, as generated: treated members' purchases are 10% larger.
    true_lift = 0.10 * statistics.mean(spent[True])
    low, high = performance.lift_interval
    assert low <= true_lift <= high
    assert performance.lift_per_member > 0 and performance.lift_percent > 0


def test_with_no_difference_between_the_groups_the_interval_includes_zero(measured):
    campaign, _spent = measured(lift=0.0, members=300)

    low, high = selectors.campaign_performance(campaign=campaign).lift_interval

    assert low < 0 < high


def test_the_daily_series_covers_every_day_of_the_window_and_adds_up_to_the_totals(measured):
    campaign, _spent = measured(lift=0.10)

    performance = selectors.campaign_performance(campaign=campaign)

    assert [day for day, _t, _c in performance.daily] == [
        START + datetime.timedelta(days=n) for n in range((END - START).days + 1)
    ]
    assert sum(t for _d, t, _c in performance.daily) == pytest.approx(performance.treatment.spend_per_member)
    assert sum(c for _d, _t, c in performance.daily) == pytest.approx(performance.control.spend_per_member)


def test_performance_reads_a_fixed_number_of_queries_whatever_the_members(measured, django_assert_max_num_queries):
    campaign, _spent = measured(lift=0.10, members=30)
    with django_assert_max_num_queries(6) as small:
        selectors.campaign_performance(campaign=campaign)
    campaign2, _spent = measured(lift=0.10, members=60, seed=3)
    with django_assert_max_num_queries(6) as large:
        selectors.campaign_performance(campaign=campaign2)
    assert len(small.captured_queries) == len(large.captured_queries)
