"""Every rule type, rounding mode, cap period, stacking case, condition and window edge, posted
through the real services (and checked against the preview, which must always agree)."""

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from loyalty import services
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Activity, ActivityType, EarnRule, LedgerEntry
from loyalty.selectors import preview_earn
from tests.conftest import tier
from tests.factories import EarnRuleFactory, StoreFactory

pytestmark = pytest.mark.django_db


def _local(*args) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime(*args))


def _activity(account, activity_type, *, key, quantity=1, **kwargs):
    kwargs.setdefault("occurred_at", timezone.now())
    return services.earn_for_activity(
        account=account, activity_type=activity_type, quantity=quantity, idempotency_key=key, **kwargs
    )


def test_a_purchase_earns_per_currency_unit_and_says_why(program, enrol, buy):
    account = enrol(program)

    result = buy(account, "120.00")

    assert result.points == 120
    assert result.explanations == ["120 pts: 1 pt per EUR 1 on EUR 120 (Base earning)"]
    account.refresh_from_db()
    assert account.balance == 120


def test_the_tier_multiplier_is_applied_and_named(program, enrol, buy):
    account = enrol(program)
    services.adjust(account=account, points=5000, reason="Gold by hand", created_by=None, qualifying=True)
    account.refresh_from_db()
    assert account.tier.name == "Gold"

    result = buy(account, "80.00")

    assert result.points == 120
    assert result.explanations == ["120 pts: 1 pt per EUR 1 on EUR 80, x1.5 Gold (Base earning)"]


@pytest.mark.parametrize(("rounding", "expected"), [("down", 12), ("half_up", 13), ("up", 13)])
def test_rounding_modes(program, enrol, buy, rounding, expected):
    program.earn_rules.update(rate=Decimal("0.5"), rounding=rounding)
    account = enrol(program)

    assert buy(account, "25.00").points == expected  # 12.5 points


def test_half_up_rounds_down_below_the_half(program, enrol, buy):
    program.earn_rules.update(rate=Decimal("0.5"), rounding="half_up")

    assert buy(enrol(program), "24.98").points == 12  # 12.49


def test_points_per_unit_of_quantity_for_training_hours(program, enrol):
    EarnRuleFactory(
        program=program,
        name="Training",
        activity_type=ActivityType.TRAINING_HOURS,
        calculation=EarnRule.Calculation.PER_QUANTITY,
        rate=Decimal("50"),
    )
    account = enrol(program)
    claim = _activity(account, ActivityType.TRAINING_HOURS, key="t1", quantity="2.5")
    assert claim.awaiting_approval  # training needs evidence: staff approve it first

    result = services.activity_approve(activity=claim.activity, reviewed_by=None)

    assert result.points == 125
    assert "50 pts x 2.5" in result.explanations[0]


def test_fixed_points_for_attending_an_event(program, enrol):
    EarnRuleFactory(
        program=program,
        name="Launch evening",
        activity_type=ActivityType.EVENT_ATTENDANCE,
        calculation=EarnRule.Calculation.FIXED,
        rate=Decimal("25"),
    )

    result = _activity(enrol(program), ActivityType.EVENT_ATTENDANCE, key="e1")

    assert not result.awaiting_approval
    assert result.points == 25
    assert result.explanations == ["25 pts: 25 pts fixed (Launch evening)"]


def test_a_review_waits_for_approval_even_when_its_rule_does_not_ask(program, enrol):
    EarnRuleFactory(
        program=program,
        name="Review",
        activity_type=ActivityType.REVIEW,
        calculation=EarnRule.Calculation.FIXED,
        rate=Decimal("25"),
    )

    result = _activity(enrol(program), ActivityType.REVIEW, key="r1")

    assert result.awaiting_approval and result.points == 0
    approved = services.activity_approve(activity=result.activity, reviewed_by=None)
    assert approved.explanations == ["25 pts: 25 pts fixed (Review)"]


def test_an_event_rule_can_ask_for_approval_too(program, enrol):
    EarnRuleFactory(
        program=program,
        name="Trade fair",
        activity_type=ActivityType.EVENT_ATTENDANCE,
        calculation=EarnRule.Calculation.FIXED,
        rate=Decimal("40"),
        requires_approval=True,
    )

    result = _activity(enrol(program), ActivityType.EVENT_ATTENDANCE, key="e1")

    assert result.awaiting_approval and result.points == 0


def test_a_custom_code_rule_fires_only_for_its_code(program, enrol):
    EarnRuleFactory(
        program=program,
        name="Fair",
        activity_type=ActivityType.CUSTOM_CODE,
        custom_code="fair-2026",
        calculation=EarnRule.Calculation.FIXED,
        rate=Decimal("100"),
    )
    account = enrol(program)

    assert _activity(account, ActivityType.CUSTOM_CODE, key="c1", code="fair-2026").points == 100
    assert _activity(account, ActivityType.CUSTOM_CODE, key="c2", code="other").points == 0


@pytest.mark.parametrize(
    ("period", "second", "expected_second"),
    [
        ("day", datetime.timedelta(hours=1), 0),
        ("day", datetime.timedelta(days=1), 60),
        ("week", datetime.timedelta(days=6), 0),  # Monday, then Sunday of the same week
        ("week", datetime.timedelta(days=7), 60),
        ("month", datetime.timedelta(days=27), 0),
        ("month", datetime.timedelta(days=31), 60),
        ("year", datetime.timedelta(days=300), 0),
        ("ever", datetime.timedelta(days=300), 0),
    ],
)
def test_caps_per_period(program, enrol, buy, period, second, expected_second):
    program.earn_rules.update(cap_points=60, cap_period=period)
    account = enrol(program)
    first_day = _local(2026, 3, 2, 10, 0)  # a Monday, early in the month
    with time_machine.travel(first_day + second + datetime.timedelta(hours=1)):
        first = buy(account, "100.00", occurred_at=first_day)
        later = buy(account, "100.00", occurred_at=first_day + second)

    assert first.points == 60
    assert "capped at 60 pts" in first.explanations[0]
    assert later.points == expected_second


def test_exclusive_rule_with_highest_priority_applies_alone(program, enrol, buy):
    EarnRuleFactory(program=program, name="Double", rate=Decimal("2"), stackable=False, priority=5)
    EarnRuleFactory(program=program, name="Triple", rate=Decimal("3"), stackable=False, priority=9)

    result = buy(enrol(program), "10.00")

    assert result.points == 30
    assert [entry.rule.name for entry in result.entries] == ["Triple"]


def test_stackable_rules_add_up(program, enrol, buy):
    EarnRuleFactory(program=program, name="Bonus", rate=Decimal("1"))

    result = buy(enrol(program), "10.00")

    assert result.points == 20
    assert len(result.entries) == 2


@pytest.mark.parametrize(
    ("moment", "applies"),
    [
        ((2026, 3, 31, 23, 59, 59), True),  # last second of the last day
        ((2026, 4, 1, 0, 0, 0), False),
        ((2026, 3, 1, 0, 0, 0), True),
        ((2026, 2, 28, 23, 59, 59), False),
    ],
)
def test_rule_validity_window_edges_in_local_time(program, enrol, buy, moment, applies):
    program.earn_rules.update(valid_from=datetime.date(2026, 3, 1), valid_until=datetime.date(2026, 3, 31))
    account = enrol(program)
    with time_machine.travel(_local(2026, 4, 2, 12, 0)):
        result = buy(account, "10.00", occurred_at=_local(*moment))

    assert (result.points == 10) is applies


def test_conditions_on_tier_region_store_member_type_and_minimum(program, enrol, buy):
    store, other_store = StoreFactory(), StoreFactory()
    program.earn_rules.all().delete()
    EarnRuleFactory(
        program=program,
        name="Pro bonus",
        tiers=[tier(program, "Bronze")],
        stores=[store],
        regions=["Flanders"],
        member_types=["contractor"],
        min_amount=Decimal("50"),
    )
    pro = enrol(program, region="Flanders", member_type="contractor")
    consumer = enrol(program, region="Flanders", member_type="consumer")
    elsewhere = enrol(program, region="Wallonia", member_type="contractor")

    assert buy(pro, "60.00", store=store).points == 60
    assert buy(pro, "40.00", store=store).points == 0  # under the minimum
    assert buy(pro, "60.00", store=other_store).points == 0
    assert buy(consumer, "60.00", store=store).points == 0
    assert buy(elsewhere, "60.00", store=store).points == 0


def test_category_rule_counts_only_matching_lines(program, enrol, buy):
    EarnRuleFactory(program=program, name="Paint x2", rate=Decimal("2"), product_categories=["PAINT"])
    lines = [{"category": "PAINT", "amount": "30.00"}, {"category": "TOOLS", "amount": "70.00"}]

    result = buy(enrol(program), "100.00", lines=lines)

    assert sorted(entry.points for entry in result.entries) == [60, 100]
    assert "(PAINT)" in next(e.reason for e in result.entries if e.points == 60)


def test_evidence_activities_become_claims_and_earn_only_when_approved(program, enrol, manager_user):
    EarnRuleFactory(
        program=program,
        name="Certification",
        activity_type=ActivityType.CERTIFICATION,
        calculation=EarnRule.Calculation.FIXED,
        rate=Decimal("300"),
        requires_approval=True,
    )
    account = enrol(program)

    claim = _activity(account, ActivityType.CERTIFICATION, key="cert-1", description="Roofing level 2")

    assert claim.awaiting_approval and claim.points == 0
    account.refresh_from_db()
    assert account.balance == 0

    approved = services.activity_approve(activity=claim.activity, reviewed_by=manager_user)
    again = services.activity_approve(activity=claim.activity, reviewed_by=manager_user)

    account.refresh_from_db()
    assert approved.points == 300 and again.replayed
    assert account.balance == 300
    assert claim.activity.entries.count() == 1


def test_a_rejected_claim_needs_a_reason_and_earns_nothing(program, enrol, manager_user):
    EarnRuleFactory(
        program=program,
        name="Review",
        activity_type=ActivityType.REVIEW,
        calculation=EarnRule.Calculation.FIXED,
        rate=Decimal("25"),
        requires_approval=True,
    )
    claim = _activity(enrol(program), ActivityType.REVIEW, key="rev-1")

    with pytest.raises(ApplicationError, match="Say why"):
        services.activity_reject(activity=claim.activity, reviewed_by=manager_user, reason=" ")
    services.activity_reject(activity=claim.activity, reviewed_by=manager_user, reason="Not a verified buyer")

    claim.activity.refresh_from_db()
    assert claim.activity.status == Activity.Status.REJECTED
    with pytest.raises(ApplicationError, match="already"):
        services.activity_approve(activity=claim.activity, reviewed_by=manager_user)


def test_the_preview_shows_exactly_what_earning_posts_and_writes_nothing(program, enrol, buy):
    EarnRuleFactory(program=program, name="Paint x2", rate=Decimal("2"), product_categories=["PAINT"])
    account = enrol(program)
    lines = [{"category": "PAINT", "amount": "30.00"}]
    before = LedgerEntry.objects.count()

    preview = preview_earn(
        program=program, activity_type="purchase", account=account, amount=Decimal("45.50"), lines=lines
    )

    assert LedgerEntry.objects.count() == before
    result = buy(account, "45.50", lines=lines)
    assert preview.points == result.points == 105
    assert preview.explanations == result.explanations


def test_preview_for_a_profile_without_an_account(program):
    preview = preview_earn(
        program=program, activity_type="purchase", tier=tier(program, "Platinum"), amount=Decimal("100")
    )

    assert preview.points == 200
    assert preview.explanations == ["200 pts: 1 pt per EUR 1 on EUR 100, x2 Platinum (Base earning)"]


def test_enrolment_opens_the_entry_tier_with_the_welcome_bonus_once(program, enrol):
    program.welcome_bonus = 250
    program.save()
    account = enrol(program)

    again = services.enrol(member=account.member, program=program)

    account.refresh_from_db()
    assert again.pk == account.pk
    assert account.tier.name == "Bronze"
    assert account.balance == 250
    assert list(account.entries.values_list("reason", flat=True)) == ["250 pts: welcome bonus"]


def test_explanations_are_written_in_the_members_language(program, enrol, buy):
    account = enrol(program, language="fr")

    result = buy(account, "12.00")

    assert result.explanations == ["12 pts : 1 pt par EUR 1 sur EUR 12 (Base earning)"]
