"""Real concurrent transactions on PostgreSQL: the account row lock is what keeps money safe."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.utils import timezone

from loyalty import services
from loyalty.core.exceptions import ApplicationError
from loyalty.models import LedgerEntry, Purchase

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(count: int, work):
    """Run work(i) in `count` threads released at the same instant; return results and errors."""
    barrier = threading.Barrier(count)

    def run(i):
        try:
            barrier.wait(timeout=30)
            return ("ok", work(i))
        except ApplicationError as error:
            return ("refused", error.code)
        finally:
            connections.close_all()  # each thread has its own connection; give it back

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_fifty_concurrent_spends_against_a_balance_that_covers_one_succeed_once(program, enrol, buy):
    account = enrol(program)
    buy(account, "100.00")

    outcomes = _race(
        50, lambda i: services.spend(account=account, points=80, reason="Voucher", idempotency_key=f"s{i}")
    )

    assert [o[0] for o in outcomes].count("ok") == 1
    assert {o[1] for o in outcomes if o[0] == "refused"} == {"insufficient_points"}
    account.refresh_from_db()
    assert account.balance == 20
    assert account.entries.filter(kind="redeem").count() == 1


def test_fifty_concurrent_posts_with_one_idempotency_key_create_one_purchase_and_agree(program, enrol):
    account = enrol(program)
    at = timezone.now()

    def post(_i):
        result = services.earn_for_purchase(
            account=account,
            amount="42.00",
            currency="EUR",
            receipt_number="R-1",
            occurred_at=at,
            idempotency_key="till-retry",
        )
        return (result.purchase.pk, tuple(entry.pk for entry in result.entries), result.points)

    outcomes = _race(50, post)

    assert {o[0] for o in outcomes} == {"ok"}
    assert len({o[1] for o in outcomes}) == 1  # every caller got the first result
    assert Purchase.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="earn", purchase__isnull=False).count() == 1
    account.refresh_from_db()
    assert account.balance == 42


def test_concurrent_earns_on_one_account_lose_no_points(program, enrol):
    account = enrol(program)
    at = timezone.now()

    _race(
        40,
        lambda i: services.earn_for_purchase(
            account=account,
            amount=f"{i + 1}.00",
            currency="EUR",
            receipt_number=f"R-{i}",
            occurred_at=at,
            idempotency_key=f"k-{i}",
        ),
    )

    account.refresh_from_db()
    assert account.balance == sum(range(1, 41))
    assert account.lifetime_earned == sum(range(1, 41))


def test_spends_racing_the_expiry_job_never_double_count_a_lot(program, enrol, buy):
    from loyalty.models import Program

    Program.objects.filter(pk=program.pk).update(expiry_policy="months_after_earn", expiry_months=1)
    program.refresh_from_db()
    accounts = [enrol(program) for _ in range(10)]
    for account in accounts:
        buy(account, "50.00", occurred_at=timezone.now() - timezone.timedelta(days=40))
        buy(account, "50.00")

    def work(i):
        if i == 0:
            return services.expire_due(program=program)
        account = accounts[i % 10]
        return services.spend(account=account, points=30, reason="Voucher", idempotency_key=f"s{i}")

    _race(21, work)

    for account in accounts:
        account.refresh_from_db()
        spent = -sum(account.entries.filter(kind="redeem").values_list("points", flat=True))
        expired = -sum(account.entries.filter(kind="expire").values_list("points", flat=True))
        assert account.balance == 100 - spent - expired


def test_one_key_posted_for_two_accounts_at_once_is_refused_clearly_not_a_500(program, enrol):
    accounts = [enrol(program), enrol(program)]
    at = timezone.now()

    outcomes = _race(
        2,
        lambda i: (
            services.earn_for_purchase(
                account=accounts[i],
                amount="10.00",
                currency="EUR",
                receipt_number=f"R-{i}",
                occurred_at=at,
                idempotency_key="shared-key",
            ).points
        ),
    )

    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    assert [o[1] for o in outcomes if o[0] == "refused"] == ["idempotency_key_reused"]
