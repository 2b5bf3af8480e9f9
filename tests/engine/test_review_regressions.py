"""Bugs found in review of the money paths; each test failed before its fix."""

from decimal import Decimal

import pytest

from loyalty import services
from loyalty.core.exceptions import ApplicationError
from tests.factories import EarnRuleFactory

pytestmark = pytest.mark.django_db


def _balance(account):
    account.refresh_from_db()
    return account.balance


def test_returning_a_purchase_that_earned_two_lots_after_one_was_spent(program, enrol, buy):
    EarnRuleFactory(program=program, name="Bonus", rate=Decimal("0.5"))
    account = enrol(program)
    purchase = buy(account, "100.00").purchase  # lots of 100 and 50
    services.adjust(account=account, points=200, reason="Goodwill", created_by=None)
    services.spend(account=account, points=100, reason="Voucher", idempotency_key="s1")  # the 100-lot

    result = services.reverse_purchase(purchase=purchase, amount="100.00", idempotency_key="r1")

    # 150 owed: 50 from the bonus lot itself, 100 from the other points; nothing short.
    assert sum(entry.points for entry in result.entries) == -150
    assert result.purchase_return.points_shortfall == 0
    assert _balance(account) == 100  # 350 earned - 100 spent - 150 returned; invariants checked after the test


def test_a_full_return_after_spending_one_lot_records_a_shortfall_instead_of_failing(program, enrol, buy):
    EarnRuleFactory(program=program, name="Bonus", rate=Decimal("0.5"))
    account = enrol(program)
    purchase = buy(account, "100.00").purchase
    services.spend(account=account, points=100, reason="Voucher", idempotency_key="s1")

    result = services.reverse_purchase(purchase=purchase, amount="100.00", idempotency_key="r1")

    assert result.purchase_return.points_shortfall == 100
    assert _balance(account) == 0


def test_a_purchase_retried_after_a_return_replays_what_it_earned(program, enrol, buy):
    account = enrol(program)
    first = buy(account, "100.00", receipt_number="R1", idempotency_key="p1")
    services.reverse_purchase(purchase=first.purchase, amount="40.00", idempotency_key="r1")

    retry = buy(account, "100.00", receipt_number="R1", idempotency_key="p1", occurred_at=first.purchase.occurred_at)

    assert retry.replayed and retry.points == 100


@pytest.mark.parametrize("key", ["   ", None])
def test_a_blank_adjustment_key_means_no_key(program, enrol, key):
    account = enrol(program)

    services.adjust(account=account, points=5, reason="Goodwill", created_by=None, idempotency_key=key)
    services.adjust(account=account, points=5, reason="Goodwill", created_by=None, idempotency_key=key)

    assert _balance(account) == 10


def test_an_over_long_adjustment_key_is_refused_clearly(program, enrol):
    with pytest.raises(ApplicationError, match="1 to 128 characters"):
        services.adjust(account=enrol(program), points=5, reason="x", created_by=None, idempotency_key="k" * 200)


def test_callers_cannot_use_the_engines_own_key_space(program, enrol, buy):
    account = enrol(program)
    buy(account, "50.00")
    redemption = services.spend(account=account, points=10, reason="Voucher", idempotency_key="s1")

    with pytest.raises(ApplicationError, match="not starting with") as error:
        services.spend(account=account, points=5, reason="x", idempotency_key=f"~refund:{redemption.pk}")
    services.refund(entry=redemption, reason="Cancelled")  # its own key is still free

    assert error.value.code == "idempotency_key_required"
    assert _balance(account) == 50


@pytest.mark.parametrize("reason", [None, "  "])
def test_a_spend_or_refund_without_a_reason_is_refused_clearly(program, enrol, buy, reason):
    account = enrol(program)
    buy(account, "50.00")
    with pytest.raises(ApplicationError, match="Give a reason"):
        services.spend(account=account, points=5, reason=reason, idempotency_key="s1")
    redemption = services.spend(account=account, points=5, reason="Voucher", idempotency_key="s2")
    with pytest.raises(ApplicationError, match="Give a reason"):
        services.refund(entry=redemption, reason=reason)
