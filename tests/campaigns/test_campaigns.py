"""Campaign mechanics through the real engine: who earns what, when, within which budget, and the
control group that never does."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, CampaignMember
from loyalty import engine
from loyalty.core.exceptions import ApplicationError
from loyalty.models import EarnBudget, LedgerEntry
from rewards.models import Voucher
from tests.factories import MemberFactory

TODAY = datetime.date(2026, 12, 1)


def _at(day: datetime.date, hour=12, minute=0, second=0, micro=0) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour, minute, second, micro)))


@pytest.fixture
def campaign_for(program):
    """campaign_for(**fields) -> a draft campaign saved through the service (launch it yourself)."""

    def _make(**fields):
        fields.setdefault("name", "Double December")
        fields.setdefault("starts_on", TODAY)
        fields.setdefault("ends_on", TODAY + datetime.timedelta(days=6))
        fields.setdefault("mechanic", Campaign.Mechanic.BONUS_POINTS)
        fields.setdefault("holdout_percent", Decimal("0"))
        fields.setdefault("budget_points", 1_000_000)
        if (
            fields["mechanic"] in (Campaign.Mechanic.BONUS_POINTS, Campaign.Mechanic.WELCOME)
            and "bonus_points" not in fields
        ):
            fields.setdefault("bonus_multiple", Decimal("1"))
        return services.campaign_save(program=program, **fields)

    return _make


def _launch(campaign, day=TODAY):
    return services.campaign_launch(campaign=campaign, now=_at(day, 9))


def _campaign_points(account, campaign) -> int:
    return sum(
        LedgerEntry.objects.filter(account=account, rule__in=campaign.rules.all()).values_list("points", flat=True)
    )


@pytest.fixture(autouse=True)
def _today():
    import time_machine

    # The clock stands after every campaign here, so each test dates its purchases in the window;
    # launches and job runs say when they happen.
    with time_machine.travel(_at(TODAY + datetime.timedelta(days=30), 10), tick=True):
        yield


def _enrolled_on(account, moment):
    type(account).objects.filter(pk=account.pk).update(enrolled_at=moment)
    account.refresh_from_db()
    return account


def test_a_bonus_multiple_doubles_what_the_member_earns_and_the_explanation_names_the_campaign(
    program, enrol, buy, campaign_for
):
    account = enrol(program)
    campaign = _launch(campaign_for())

    result = buy(account, "120.00", occurred_at=_at(TODAY, 11))

    assert [entry.points for entry in result.entries] == [120, 120]
    bonus = result.entries[1]
    assert bonus.rule.name == "Double December"
    assert "Double December" in bonus.reason and "120 pts" in bonus.reason
    assert bonus.qualifying_points == 0  # a campaign bonus does not buy tier status
    assert campaign.status == Campaign.Status.RUNNING
    assert CampaignMember.objects.filter(campaign=campaign, account=account, held_out=False).exists()


def test_the_window_runs_from_the_first_day_at_midnight_to_the_last_day_at_midnight(program, enrol, buy, campaign_for):
    account = enrol(program)
    campaign = _launch(campaign_for(starts_on=TODAY, ends_on=TODAY + datetime.timedelta(days=2)))
    last_day = TODAY + datetime.timedelta(days=2)

    before = buy(account, "10.00", occurred_at=_at(TODAY - datetime.timedelta(days=1), 23, 59, 59, 999999))
    first = buy(account, "10.00", occurred_at=_at(TODAY, 0))
    last = buy(account, "10.00", occurred_at=_at(last_day, 23, 59, 59, 999999))
    after = buy(account, "10.00", occurred_at=_at(last_day + datetime.timedelta(days=1), 0))

    assert [len(r.entries) for r in (before, first, last, after)] == [1, 2, 2, 1]
    assert _campaign_points(account, campaign) == 20


def test_control_members_never_earn_the_bonus_and_the_engine_agrees_with_the_groups_recorded_at_launch(
    program, enrol, buy, campaign_for
):
    accounts = [enrol(program) for _ in range(40)]
    campaign = _launch(campaign_for(holdout_percent=Decimal("50")))

    groups = dict(CampaignMember.objects.filter(campaign=campaign).values_list("account_id", "held_out"))
    assert set(groups) == {account.pk for account in accounts}
    assert 0 < sum(groups.values()) < 40  # some in each group
    for account in accounts:
        assert groups[account.pk] == engine.held_out(campaign.holdout_seed, campaign.holdout_percent, account.pk)
        buy(account, "50.00", occurred_at=_at(TODAY, 11))
        assert _campaign_points(account, campaign) == (0 if groups[account.pk] else 50)


def test_members_outside_the_segment_do_not_earn_the_bonus(program, enrol, buy, campaign_for):
    from campaigns.models import Segment

    inside = enrol(program, region="Flanders")
    outside = enrol(program, region="Wallonia")
    segment = Segment.objects.create(program=program, name="Flanders", regions=["Flanders"])
    campaign = _launch(campaign_for(segment=segment))

    buy(inside, "30.00", occurred_at=_at(TODAY, 11))
    buy(outside, "30.00", occurred_at=_at(TODAY, 11))

    assert (_campaign_points(inside, campaign), _campaign_points(outside, campaign)) == (30, 0)


def test_a_budget_stops_the_awards_at_its_ceiling_and_says_so(program, enrol, buy, campaign_for):
    accounts = [enrol(program) for _ in range(3)]
    campaign = _launch(campaign_for(bonus_points=100, budget_points=250))

    results = [buy(account, "10.00", occurred_at=_at(TODAY, 11)) for account in accounts]

    bonuses = [[e for e in r.entries if e.rule_id in {rule.pk for rule in campaign.rules.all()}] for r in results]
    assert [sum(e.points for e in b) for b in bonuses] == [100, 100, 50]
    assert "left of the budget" in bonuses[2][0].reason
    assert EarnBudget.objects.get(pk=campaign.budget_id).awarded == 250
    fourth = buy(enrol(program), "10.00", occurred_at=_at(TODAY, 11))
    assert len(fourth.entries) == 1  # only the base rule


def test_a_money_budget_is_converted_at_the_program_point_value(program, campaign_for):
    program.point_value = Decimal("0.01")
    program.save()
    campaign = campaign_for(budget_points=None, budget_money=Decimal("25.00"))
    assert services.budget_points(campaign) == 2500


def test_the_launch_checklist_refuses_a_campaign_without_a_budget_or_members(program, enrol, campaign_for):
    empty = campaign_for(budget_points=None)
    with pytest.raises(ApplicationError) as error:
        _launch(empty)
    assert error.value.code == "checklist"
    assert "Segment size" in error.value.message and "Budget" in error.value.message
    assert Campaign.objects.get(pk=empty.pk).status == Campaign.Status.DRAFT
    assert not empty.rules.exists()


def test_a_segment_on_spend_launches_only_with_a_recent_ranking(program, enrol, buy, campaign_for):
    from campaigns import segments
    from loyalty import services as engine_services

    spender = enrol(program)
    buy(spender, "120.00", occurred_at=timezone.now() - datetime.timedelta(days=1))
    segment = segments.segment_save(
        program=program, name="Spenders", created_by=None, period_days=30, spend_min=Decimal("100")
    )
    campaign = campaign_for(segment=segment)

    def ranking():
        return next(check for check in services.launch_checklist(campaign=campaign) if check.label == "Ranking")

    assert not ranking().ok and "has not run for this program yet" in ranking().detail
    engine_services.account_values_refresh(program=program, as_of=timezone.now() - datetime.timedelta(days=3))
    assert not ranking().ok and "more than two days ago" in ranking().detail
    with pytest.raises(ApplicationError, match="more than two days ago"):
        _launch(campaign)

    engine_services.account_values_refresh(program=program)

    assert ranking().ok
    _launch(campaign)
    assert list(CampaignMember.objects.filter(campaign=campaign).values_list("account", flat=True)) == [spender.pk]


def test_a_segment_without_spend_points_or_deciles_needs_no_ranking(program, enrol, campaign_for):
    from campaigns import segments

    enrol(program)
    segment = segments.segment_save(program=program, name="Everyone, really", created_by=None, spend_min=Decimal("0"))
    labels = [check.label for check in services.launch_checklist(campaign=campaign_for(segment=segment))]
    assert "Ranking" not in labels


def test_a_campaign_launched_before_its_start_is_scheduled_and_the_job_starts_it_on_the_day(
    program, enrol, buy, campaign_for
):
    account = enrol(program)
    start = TODAY + datetime.timedelta(days=3)
    campaign = _launch(campaign_for(starts_on=start, ends_on=start + datetime.timedelta(days=3)))
    assert campaign.status == Campaign.Status.SCHEDULED
    assert services.campaigns_tick(as_of=_at(TODAY + datetime.timedelta(days=1))) == 0

    services.campaigns_tick(as_of=_at(start, 0, 5))

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert CampaignMember.objects.filter(campaign=campaign).count() == 1
    assert len(buy(account, "10.00", occurred_at=_at(start, 12)).entries) == 2


def test_pausing_stops_the_bonus_and_resuming_brings_it_back(program, enrol, buy, campaign_for):
    account = enrol(program)
    campaign = _launch(campaign_for())

    services.campaign_pause(campaign=campaign)
    paused = buy(account, "10.00", occurred_at=_at(TODAY, 11))
    services.campaign_resume(campaign=campaign)
    resumed = buy(account, "10.00", occurred_at=_at(TODAY, 11, 30))

    assert (len(paused.entries), len(resumed.entries)) == (1, 2)


def test_a_started_campaign_cannot_be_edited(program, enrol, campaign_for):
    enrol(program)
    campaign = _launch(campaign_for())
    with pytest.raises(ApplicationError, match="cannot be changed"):
        services.campaign_save(program=program, campaign=campaign, name="Other")


def test_the_job_ends_a_campaign_after_its_last_day(program, enrol, campaign_for):
    enrol(program)
    campaign = _launch(campaign_for(ends_on=TODAY + datetime.timedelta(days=1)))

    services.campaigns_tick(as_of=_at(TODAY + datetime.timedelta(days=2), 0, 5))

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.ENDED
    assert not campaign.rules.filter(is_active=True).exists()


def test_extra_points_on_categories_count_only_the_lines_in_those_categories(program, enrol, buy, campaign_for):
    account = enrol(program)
    campaign = _launch(
        campaign_for(
            mechanic=Campaign.Mechanic.CATEGORY_BONUS,
            bonus_multiple=None,
            product_categories=["PAINT"],
            category_rate=Decimal("1"),
        )
    )

    buy(
        account,
        "100.00",
        occurred_at=_at(TODAY, 11),
        lines=[{"category": "PAINT", "amount": "30.00"}, {"category": "TOOLS", "amount": "70.00"}],
    )

    assert _campaign_points(account, campaign) == 30


def test_a_welcome_series_rewards_the_first_purchase_within_its_days_only(program, enrol, buy, campaign_for):
    campaign = _launch(campaign_for(mechanic=Campaign.Mechanic.WELCOME, bonus_points=200, welcome_days=14))
    with_time = _enrolled_on(enrol(program), _at(TODAY, 10))  # during the campaign
    services.campaigns_tick(as_of=_at(TODAY, 10, 5))

    first = buy(with_time, "10.00", occurred_at=_at(TODAY, 11))
    second = buy(with_time, "10.00", occurred_at=_at(TODAY, 12))

    assert (len(first.entries), len(second.entries)) == (2, 1)
    assert _campaign_points(with_time, campaign) == 200
    assert CampaignMember.objects.filter(campaign=campaign, account=with_time).exists()


def test_a_welcome_bonus_needs_the_purchase_within_the_days_after_enrolment(program, enrol, buy, campaign_for):
    campaign = _launch(campaign_for(mechanic=Campaign.Mechanic.WELCOME, bonus_points=200, welcome_days=3))
    late = _enrolled_on(enrol(program), _at(TODAY, 10))

    buy(late, "10.00", occurred_at=_at(TODAY + datetime.timedelta(days=4), 11))

    assert _campaign_points(late, campaign) == 0


def test_a_win_back_targets_lapsed_members_once_and_rewards_their_return_once(program, enrol, buy, campaign_for):
    lapsed = enrol(program)
    active = enrol(program)
    long_ago = _at(TODAY - datetime.timedelta(days=200))
    type(lapsed).objects.filter(pk=lapsed.pk).update(last_activity_at=long_ago, enrolled_at=long_ago)
    type(active).objects.filter(pk=active.pk).update(last_activity_at=_at(TODAY - datetime.timedelta(days=5)))
    campaign = _launch(
        campaign_for(mechanic=Campaign.Mechanic.WIN_BACK, bonus_multiple=None, bonus_points=300, inactive_days=90)
    )
    lapsed.refresh_from_db()
    active.refresh_from_db()

    buy(lapsed, "10.00", occurred_at=_at(TODAY, 11))
    buy(lapsed, "10.00", occurred_at=_at(TODAY, 12))
    buy(active, "10.00", occurred_at=_at(TODAY, 11))

    assert list(CampaignMember.objects.filter(campaign=campaign).values_list("account_id", flat=True)) == [lapsed.pk]
    assert (_campaign_points(lapsed, campaign), _campaign_points(active, campaign)) == (300, 0)


def test_a_win_back_voucher_is_issued_once_to_each_member_who_comes_back(program, enrol, buy, campaign_for):
    lapsed = enrol(program)
    long_ago = _at(TODAY - datetime.timedelta(days=200))
    type(lapsed).objects.filter(pk=lapsed.pk).update(last_activity_at=long_ago, enrolled_at=long_ago)
    campaign = _launch(
        campaign_for(
            mechanic=Campaign.Mechanic.WIN_BACK,
            bonus_multiple=None,
            award=Campaign.Award.VOUCHER,
            voucher_amount=Decimal("10.00"),
            inactive_days=90,
        )
    )
    lapsed.refresh_from_db()
    assert services.campaigns_tick(as_of=_at(TODAY, 11)) == 0  # not back yet

    buy(lapsed, "10.00", occurred_at=_at(TODAY, 11))
    services.campaigns_tick(as_of=_at(TODAY, 11, 5))
    services.campaigns_tick(as_of=_at(TODAY, 11, 10))

    [voucher] = Voucher.objects.filter(account=lapsed)
    assert voucher.amount == Decimal("10.00") and voucher.source == campaign
    assert EarnBudget.objects.get(pk=campaign.budget_id).awarded == services.voucher_cost_points(campaign)


def test_a_spend_threshold_voucher_is_issued_once_at_period_end_even_if_the_job_runs_twice(
    program, enrol, buy, campaign_for
):
    big, small, control = (enrol(program) for _ in range(3))
    campaign = _launch(
        campaign_for(
            mechanic=Campaign.Mechanic.SPEND_THRESHOLD,
            bonus_multiple=None,
            threshold_amount=Decimal("100.00"),
            voucher_amount=Decimal("15.00"),
            ends_on=TODAY + datetime.timedelta(days=6),
        )
    )
    CampaignMember.objects.filter(campaign=campaign, account=control).update(held_out=True)
    buy(big, "60.00", occurred_at=_at(TODAY, 11))
    buy(big, "50.00", occurred_at=_at(TODAY + datetime.timedelta(days=6), 20))
    buy(small, "99.99", occurred_at=_at(TODAY, 11))
    buy(control, "500.00", occurred_at=_at(TODAY, 11))
    assert services.campaigns_tick(as_of=_at(TODAY + datetime.timedelta(days=3))) == 0  # period not over

    end = _at(TODAY + datetime.timedelta(days=7), 0, 5)
    services.campaigns_tick(as_of=end)
    Campaign.objects.filter(pk=campaign.pk).update(vouchers_issued_at=None)  # as if killed before recording it
    services.campaigns_tick(as_of=end)

    [voucher] = Voucher.objects.all()
    assert voucher.account_id == big.pk
    assert (voucher.valid_from, voucher.valid_until) == (
        TODAY + datetime.timedelta(days=7),
        TODAY + datetime.timedelta(days=13),
    )
    assert EarnBudget.objects.get(pk=campaign.budget_id).awarded == services.voucher_cost_points(campaign)


def test_an_announcement_awards_nothing_and_needs_a_message(program, enrol, campaign_for):
    enrol(program)
    campaign = campaign_for(mechanic=Campaign.Mechanic.ANNOUNCEMENT, budget_points=None)
    with pytest.raises(ApplicationError, match="needs a message"):
        _launch(campaign)


def test_a_mechanic_missing_its_settings_is_refused_with_the_field_to_fix(program, campaign_for):
    with pytest.raises(ApplicationError) as error:
        campaign_for(mechanic=Campaign.Mechanic.SPEND_THRESHOLD, bonus_multiple=None)
    assert set(error.value.extra["fields"]) == {"threshold_amount", "voucher_amount"}
    with pytest.raises(ApplicationError) as error:
        campaign_for(mechanic=Campaign.Mechanic.WELCOME, welcome_days=None)
    assert "welcome_days" in error.value.extra["fields"]


def test_members_of_another_program_are_never_targeted(program, enrol, campaign_for):
    from tests.factories import ProgramFactory, TierFactory

    other = ProgramFactory(slug="other")
    TierFactory(program=other, rank=1, name="Entry", threshold=0)
    from loyalty import services as engine_services

    engine_services.enrol(member=MemberFactory(), program=other)
    mine = enrol(program)
    campaign = _launch(campaign_for())
    assert list(CampaignMember.objects.filter(campaign=campaign).values_list("account_id", flat=True)) == [mine.pk]


def test_the_scheduled_campaigns_job_starts_a_campaign_through_the_job_runner(program, enrol, campaign_for, run_job):
    enrol(program)
    start = TODAY + datetime.timedelta(days=2)
    campaign = _launch(campaign_for(starts_on=start, ends_on=start + datetime.timedelta(days=2)))

    first = run_job("campaigns.tick", period="2026-12-03T00:05", as_of=_at(start, 0, 5))
    again = run_job("campaigns.tick", period="2026-12-03T00:05", as_of=_at(start, 0, 5))

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert (first.pk, first.rows) == (again.pk, 1)  # the same period is one run, done once
