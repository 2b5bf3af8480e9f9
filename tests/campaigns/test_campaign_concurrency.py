"""A campaign's budget under real concurrent earns on PostgreSQL: never a point over the ceiling."""

import datetime
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign
from loyalty import services as engine
from loyalty.models import EarnBudget, LedgerEntry
from tests.engine.test_concurrency import _race
from tests.factories import MemberFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_twenty_members_earning_at_once_never_take_the_campaign_past_its_budget(program):
    accounts = [engine.enrol(member=MemberFactory(), program=program) for _ in range(20)]
    today = timezone.localdate()
    campaign = services.campaign_launch(
        campaign=services.campaign_save(
            program=program,
            name="Flash bonus",
            starts_on=today,
            ends_on=today + datetime.timedelta(days=1),
            mechanic=Campaign.Mechanic.BONUS_POINTS,
            bonus_points=100,
            budget_points=750,
            holdout_percent=Decimal("0"),
        )
    )
    rules = list(campaign.rules.all())

    outcomes = _race(
        20,
        lambda i: (
            engine.earn_for_purchase(
                account=accounts[i],
                amount="10.00",
                currency="EUR",
                receipt_number=f"R{i}",
                occurred_at=timezone.now(),
                idempotency_key=f"flash-{i}",
            ).purchase.pk
        ),
    )

    assert [outcome for outcome, _value in outcomes] == ["ok"] * 20
    bonuses = list(LedgerEntry.objects.filter(rule__in=rules).values_list("points", flat=True))
    assert sum(bonuses) == 750
    assert sorted(bonuses) == [50] + [100] * 7
    assert EarnBudget.objects.get(pk=campaign.budget_id).awarded == 750
    out = io.StringIO()
    call_command("check_ledger", stdout=out)
    assert "every invariant holds" in out.getvalue()
