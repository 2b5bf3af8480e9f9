"""A small program history spread over the past months: earns (some still pending), redemptions,
adjustments both ways, a returned purchase, a refunded redemption, and lapsed lots."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty import services
from loyalty.models import Program


def months_ago(n: int, day: int = 10) -> datetime.datetime:
    today = timezone.localdate()
    year, month = divmod(today.year * 12 + today.month - 1 - n, 12)
    return timezone.make_aware(datetime.datetime(year, month + 1, day, 12, 0))


@pytest.fixture
def expiring_program(program):
    """The shared program with points lapsing 6 months after they were earned, a 14-day return window."""
    Program.objects.filter(pk=program.pk).update(
        expiry_policy=Program.ExpiryPolicy.MONTHS_AFTER_EARN,
        expiry_months=6,
        pending_days=14,
        point_value=Decimal("0.02"),
    )
    program.refresh_from_db()
    return program


@pytest.fixture
def history(expiring_program, enrol, buy, manager_user):
    """history(accounts=N) -> accounts, each with a year of activity through the real services."""

    def _history(accounts: int = 4, offset: int = 0):
        made = []
        for n in range(offset, offset + accounts):
            account = enrol(expiring_program)
            for months in (11, 9, 7, 4, 2):
                buy(account, Decimal(40 + 7 * n + months), occurred_at=months_ago(months, day=3 + n % 20))
            recent = buy(account, Decimal(25 + n), occurred_at=timezone.now() - datetime.timedelta(days=2))
            services.release_pending(program=expiring_program)
            account.refresh_from_db()
            redemption = services.spend(
                account=account, points=30 + n, reason="Voucher", idempotency_key=f"spend-{account.pk}"
            )
            if n % 2 == 0:
                services.refund(entry=redemption, reason="Voucher cancelled")
            services.adjust(
                account=account,
                points=15,
                reason="Goodwill",
                created_by=manager_user,
                idempotency_key=f"adj+{account.pk}",
            )
            services.adjust(
                account=account,
                points=-5,
                reason="Correction",
                created_by=manager_user,
                idempotency_key=f"adj-{account.pk}",
            )
            if n % 3 == 0:
                services.reverse_purchase(
                    purchase=recent.purchase, amount=Decimal(10), idempotency_key=f"ret-{account.pk}"
                )
            made.append(account)
        # Lots earned 7 months ago and more have lapsed; those of 2 days ago are still pending.
        services.expire_due(program=expiring_program)
        return made

    return _history
