"""Property-based: whatever sequence of earns, spends, returns, adjustments, releases and expiries
happens, every ledger invariant holds and the balance never goes below zero."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty import services
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Program
from loyalty.selectors import ledger_breaches
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

operations = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.integers(1, 500), st.integers(0, 300)),
        st.tuples(st.just("spend"), st.integers(1, 400)),
        st.tuples(st.just("return"), st.integers(0, 9), st.sampled_from(["0.25", "0.5", "1"])),
        st.tuples(st.just("adjust"), st.integers(-300, 300).filter(bool)),
        st.tuples(st.just("release"), st.integers(0, 30)),
        st.tuples(st.just("expire"), st.integers(0, 400)),
        st.tuples(st.just("refund"), st.integers(0, 9)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_random_sequences_keep_every_invariant(program, steps):
    Program.objects.filter(pk=program.pk).update(pending_days=7, expiry_policy="months_after_earn", expiry_months=6)
    program.refresh_from_db()
    account = services.enrol(member=MemberFactory(), program=program)
    now = timezone.now()
    purchases, redemptions = [], []
    for n, step in enumerate(steps):
        try:
            match step:
                case ("buy", amount, days_ago):
                    result = services.earn_for_purchase(
                        account=account,
                        amount=Decimal(amount),
                        currency="EUR",
                        receipt_number=f"{account.pk}-{n}",
                        occurred_at=now - datetime.timedelta(days=days_ago),
                        idempotency_key=f"{account.pk}-buy-{n}",
                    )
                    purchases.append(result.purchase)
                case ("spend", points):
                    redemptions.append(
                        services.spend(
                            account=account, points=points, reason="x", idempotency_key=f"{account.pk}-s-{n}"
                        )
                    )
                case ("return", index, share) if purchases:
                    purchase = purchases[index % len(purchases)]
                    purchase.refresh_from_db()
                    amount = min(purchase.amount * Decimal(share), purchase.amount - purchase.returned_amount)
                    services.reverse_purchase(
                        purchase=purchase, amount=amount.quantize(Decimal("0.01")), idempotency_key=f"r-{n}"
                    )
                case ("adjust", points):
                    services.adjust(account=account, points=points, reason="Correction", created_by=None)
                case ("release", days):
                    services.release_pending(program=program, as_of=now + datetime.timedelta(days=days))
                case ("expire", days):
                    services.expire_due(program=program, as_of=now + datetime.timedelta(days=days))
                case ("refund", index) if redemptions:
                    services.refund(entry=redemptions[index % len(redemptions)], reason="Cancelled")
        except ApplicationError:
            pass  # a refusal (not enough points, nothing left to return) must leave the books sound too

        assert ledger_breaches(program=program) == [], (n, step)
    account.refresh_from_db()
    assert account.balance >= 0 and account.pending >= 0
