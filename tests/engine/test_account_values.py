"""The nightly value ranking: spend over 12 months into deciles, members who left dropped."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty import services
from loyalty.models import AccountValue
from members.models import Member

pytestmark = pytest.mark.django_db


def test_the_ranking_puts_the_biggest_spenders_first_and_forgets_members_who_left(program, enrol, buy, run_job):
    accounts = [enrol(program) for _ in range(20)]
    for n, account in enumerate(accounts[:15]):
        buy(account, Decimal(100 + 10 * n), occurred_at=timezone.now() - datetime.timedelta(days=30))
    buy(accounts[0], "5000.00", occurred_at=timezone.now() - datetime.timedelta(days=300))

    # Two months on, the 5000 bought ten months ago has left the 12 months.
    run = run_job("loyalty.refresh_account_values", as_of=timezone.now() + datetime.timedelta(days=70))

    assert run.rows == 20
    values = {value.account_id: value for value in AccountValue.objects.filter(program=program)}
    assert [values[accounts[n].pk].decile for n in (14, 13)] == [1, 1]  # the two who spent most
    assert values[accounts[0].pk].spend_12m == Decimal("100.00")
    assert values[accounts[0].pk].purchases_12m == 1
    spenders = {values[account.pk].decile for account in accounts[:15]}
    assert min(values[account.pk].decile for account in accounts[15:]) >= max(spenders)  # no spend: the bottom
    Member.objects.filter(pk=accounts[5].member_id).update(status=Member.Status.CLOSED)

    assert services.account_values_refresh(program=program, as_of=timezone.now() + datetime.timedelta(days=70)) == 19
    assert not AccountValue.objects.filter(account=accounts[5]).exists()
