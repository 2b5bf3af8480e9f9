"""Liability and breakage: the monthly roll-forward reconciles with the ledger and its invariants,
through the summary and without it; breakage by issue month and points about to expire, by hand."""

import csv
import datetime
import io
import itertools
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from loyalty import analytics, services
from loyalty.models import Account, LedgerEntry, LedgerMonth, LedgerMonthMark
from loyalty.selectors import ledger_breaches
from tests.analytics.conftest import months_ago

pytestmark = pytest.mark.django_db


def _ledger_by_month_and_kind(program) -> dict:
    """The same figures summed in Python, entry by entry: what the SQL must agree with."""
    sums = defaultdict(int)
    for entry in LedgerEntry.objects.filter(program=program):
        sums[(analytics.month_start(entry.occurred_at), entry.kind)] += entry.points
    return sums


def test_the_roll_forward_closes_on_the_balances_that_check_ledger_verifies(expiring_program, history):
    history(accounts=5)

    ledger = analytics.ledger_read(program=expiring_program)
    rows = analytics.roll_forward(ledger)
    liability = analytics.liability(program=expiring_program, ledger=ledger)

    assert ledger_breaches(program=expiring_program) == []  # balance = sum of available entries, etc.
    totals = Account.objects.filter(program=expiring_program).aggregate(balance=Sum("balance"), pending=Sum("pending"))
    assert totals["pending"] > 0 and totals["balance"] > 0  # the history leaves points in both states
    assert rows[-1].closing == totals["balance"] + totals["pending"] == liability.points
    assert liability.reconciles
    assert liability.value == (Decimal(liability.points) * Decimal("0.02")).quantize(Decimal("0.01"))
    for before, after in itertools.pairwise(rows):
        assert after.opening == before.closing
    for row in rows:
        assert row.closing == row.opening + row.movement
    # Every column is the kind it names, month by month.
    expected = _ledger_by_month_and_kind(expiring_program)
    for row in rows:
        assert row.issued == expected[(row.month, "earn")]
        assert row.redeemed == -expected[(row.month, "redeem")]
        assert row.expired == -expected[(row.month, "expire")]
        assert row.adjusted == expected[(row.month, "adjust")]
        assert row.reversed == expected[(row.month, "reverse")]
    assert sum(row.expired for row in rows) > 0 and sum(row.reversed for row in rows) != 0
    assert sum(row.adjusted for row in rows) == 5 * (15 - 5)


def test_the_summary_plus_the_entries_posted_since_equal_a_full_rebuild(expiring_program, history, buy):
    accounts = history(accounts=3)
    before = analytics.roll_forward(analytics.ledger_read(program=expiring_program))

    assert analytics.ledger_months_refresh(program=expiring_program) > 0
    summarised = analytics.ledger_read(program=expiring_program)
    assert summarised.tail_entries == 0 and summarised.mark.through_entry == LedgerEntry.objects.latest("pk").pk
    assert analytics.roll_forward(summarised) == before

    # New points after the summary: read live, by id, until the next refresh.
    buy(accounts[0], "80.00", occurred_at=months_ago(1))
    services.adjust(account=accounts[1], points=-3, reason="Fix", created_by=None, idempotency_key="late-adjust")
    services.expire_due(program=expiring_program, as_of=timezone.now() + datetime.timedelta(days=200))
    live = analytics.ledger_read(program=expiring_program)
    assert live.tail_entries > 2
    rows = analytics.roll_forward(live)

    analytics.ledger_months_refresh(program=expiring_program)
    rebuilt = analytics.ledger_read(program=expiring_program)
    assert rebuilt.tail_entries == 0
    assert analytics.roll_forward(rebuilt) == rows
    assert analytics.breakage_by_cohort(rebuilt) == analytics.breakage_by_cohort(live)
    totals = Account.objects.filter(program=expiring_program).aggregate(balance=Sum("balance"), pending=Sum("pending"))
    assert rows[-1].closing == totals["balance"] + totals["pending"]
    assert LedgerMonthMark.objects.filter(program=expiring_program).count() == 1


def test_a_period_opens_on_everything_posted_before_it(expiring_program, history):
    history(accounts=2)
    ledger = analytics.ledger_read(program=expiring_program)
    whole = analytics.roll_forward(ledger)
    start = analytics.month_start(months_ago(5))

    period = analytics.roll_forward(ledger, start=start, end=analytics.month_start(months_ago(1)))

    assert [row.month for row in period] == [analytics.month_start(months_ago(n)) for n in range(5, 0, -1)]
    assert (
        period[0].opening
        == LedgerEntry.objects.filter(
            program=expiring_program, occurred_at__lt=months_ago(5, day=1).replace(hour=0)
        ).aggregate(s=Sum("points"))["s"]
    )
    assert period == [row for row in whole if start <= row.month <= period[-1].month]


def test_breakage_is_what_lapsed_of_each_months_lots(expiring_program, enrol, buy):
    account = enrol(expiring_program)
    buy(account, "100.00", occurred_at=months_ago(11))  # 100 pts
    buy(account, "50.00", occurred_at=months_ago(10))  # 50 pts
    buy(account, "20.00", occurred_at=months_ago(3))  # 20 pts, not lapsed yet
    services.release_pending(program=expiring_program)
    services.spend(account=account, points=30, reason="Voucher", idempotency_key="spend-1")  # from the oldest lot

    services.expire_due(program=expiring_program)

    cohorts = {c.month: c for c in analytics.breakage_by_cohort(analytics.ledger_read(program=expiring_program))}
    eleven, ten, three = (analytics.month_start(months_ago(n)) for n in (11, 10, 3))
    assert (cohorts[eleven].issued, cohorts[eleven].expired, cohorts[eleven].breakage) == (100, 70, Decimal("0.7"))
    assert (cohorts[ten].issued, cohorts[ten].expired, cohorts[ten].breakage) == (50, 50, Decimal("1"))
    assert (cohorts[three].issued, cohorts[three].expired) == (20, 0)


def test_points_expiring_in_the_next_three_months_by_month(expiring_program, enrol, buy):
    account = enrol(expiring_program)
    buy(account, "10.00", occurred_at=months_ago(5, day=20))  # lapses next month
    buy(account, "30.00", occurred_at=months_ago(4, day=20))  # in two months
    buy(account, "70.00", occurred_at=months_ago(2, day=20))  # in four months: not counted
    services.release_pending(program=expiring_program)
    services.spend(account=account, points=4, reason="Voucher", idempotency_key="spend-soon")

    expiring = analytics.points_expiring(program=expiring_program)

    this_month = analytics.month_start(timezone.now())
    assert [(e.month, e.points) for e in expiring] == [
        (this_month, 0),
        (analytics.month_start(months_ago(-1)), 6),
        (analytics.month_start(months_ago(-2)), 30),
    ]


def test_the_summary_keeps_what_expires_as_of_its_refresh(expiring_program, enrol, buy):
    account = enrol(expiring_program)
    buy(account, "10.00", occurred_at=months_ago(5, day=20))
    buy(account, "30.00", occurred_at=months_ago(4, day=20))
    services.release_pending(program=expiring_program)
    live = analytics.points_expiring(program=expiring_program)

    analytics.ledger_months_refresh(program=expiring_program)
    mark = analytics.ledger_read(program=expiring_program).mark
    services.spend(account=account, points=4, reason="Voucher", idempotency_key="after-the-summary")

    assert analytics.points_expiring(program=expiring_program, mark=mark) == live  # as of the summary
    assert sum(e.points for e in analytics.points_expiring(program=expiring_program)) == 36  # live: 40 - 4


def test_the_liability_page_and_its_csv_show_the_roll_forward(client, manager_user, expiring_program, history):
    history(accounts=2)
    analytics.ledger_months_refresh(program=expiring_program)
    client.force_login(manager_user)
    total = Account.objects.filter(program=expiring_program).aggregate(s=Sum("balance") + Sum("pending"))["s"]

    page = client.get(reverse("staff:analytics_liability"))
    assert page.status_code == 200
    assert "Reconciled" in page.content.decode()
    assert f"{total:,}" in page.content.decode()

    response = client.get(reverse("staff:analytics_liability_csv"), {"program": expiring_program.pk})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    header = rows.index(
        [
            "Month",
            "Opening",
            "Issued",
            "Redeemed",
            "Expired",
            "Adjustments",
            "Reversals",
            "Opening balances and migrations",
            "Closing",
        ]
    )
    months = []
    for row in rows[header + 1 :]:
        if not row:
            break
        months.append(row)
    assert int(months[-1][-1]) == total
    assert ["Outstanding points", str(total)] in rows


def test_the_summary_job_rebuilds_every_live_program(expiring_program, history, run_job):
    history(accounts=1)

    run = run_job("loyalty.summarise_ledger")

    assert run.status == "succeeded"
    assert LedgerMonth.objects.filter(program=expiring_program).exists()
    assert analytics.ledger_read(program=expiring_program).tail_entries == 0
