"""Ledger-level figures for the analytics pages: points per month by kind, the liability roll-forward,
breakage by issue cohort and points about to expire.

Every figure is summed by the database. The monthly sums come from `LedgerMonth` (rebuilt set-based by
`ledger_months_refresh`, the daily job `loyalty.summarise_ledger`) plus the entries posted since its
mark, read straight from the ledger by id; so a page costs the same few queries at 20,000,000 entries
and the roll-forward still closes on the sum of the balances to the point.

Liability counts every point the program owes: available (`Account.balance`) and pending
(`Account.pending`, points still inside a return window), because the sum of all ledger entries is
exactly their total (check_ledger's invariants).
"""

import datetime
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db import connection, transaction
from django.db.models import Count, DateField, Max, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from loyalty.models import Account, LedgerEntry, LedgerExpiring, LedgerMonth, LedgerMonthMark, Program

Kind = LedgerEntry.Kind


@dataclass(frozen=True)
class MonthSums:
    """One program's ledger in one month, one kind (and, for expiries, the month the lot was issued)."""

    month: datetime.date
    kind: str
    cohort: datetime.date | None
    credit: int
    debit: int
    entries: int


@dataclass(frozen=True)
class RollForwardMonth:
    month: datetime.date
    opening: int
    issued: int  # earned points (kind earn)
    redeemed: int  # spent on rewards, as a positive number
    expired: int  # lapsed, as a positive number
    adjusted: int  # staff adjustments, net (+/-)
    reversed: int  # returns of purchases and refunds of redemptions, net (+/-)
    carried_in: int  # opening balances from a legacy system and migrations, net (+/-)
    closing: int

    @property
    def movement(self) -> int:
        return self.issued - self.redeemed - self.expired + self.adjusted + self.reversed + self.carried_in


@dataclass(frozen=True)
class Liability:
    available: int
    pending: int
    point_value: Decimal
    currency: str
    ledger_total: int  # the sum of every entry: the roll-forward's closing over the whole history

    @property
    def points(self) -> int:
        return self.available + self.pending

    @property
    def value(self) -> Decimal:
        return (Decimal(self.points) * self.point_value).quantize(Decimal("0.01"))

    @property
    def reconciles(self) -> bool:
        return self.ledger_total == self.points


@dataclass(frozen=True)
class Cohort:
    month: datetime.date
    issued: int  # every lot credited that month (points > 0)
    expired: int  # what later lapsed of those lots

    @property
    def breakage(self) -> Decimal | None:
        return Decimal(self.expired) / self.issued if self.issued else None


@dataclass(frozen=True)
class ExpiringMonth:
    month: datetime.date
    points: int


@dataclass(frozen=True)
class Ledger:
    """What the analytics pages read of one program's ledger (`ledger_read`)."""

    months: list[MonthSums]
    mark: LedgerMonthMark | None
    tail_entries: int  # entries posted since the summary's mark, read live

    def net_by_month(self) -> dict[datetime.date, dict[str, int]]:
        net: dict[datetime.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for row in self.months:
            net[row.month][row.kind] += row.credit + row.debit
        return net

    @property
    def total(self) -> int:
        return sum(row.credit + row.debit for row in self.months)


def month_start(value: datetime.date | datetime.datetime) -> datetime.date:
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value).date()
    return value.replace(day=1)


def _month(field: str) -> TruncMonth:
    return TruncMonth(field, output_field=DateField())


def _sums(entries) -> list[MonthSums]:
    """Sum `entries` per month and kind in two statements; expiries joined to the lot they take back."""
    totals = {
        "credit": Sum("points", filter=Q(points__gt=0), default=0),
        "debit": Sum("points", filter=Q(points__lt=0), default=0),
        "entries": Count("pk"),
    }
    rows = [
        MonthSums(r["month"], r["kind"], None, r["credit"], r["debit"], r["entries"])
        for r in entries.exclude(kind=Kind.EXPIRE)
        .annotate(month=_month("occurred_at"))
        .values("month", "kind")
        .annotate(**totals)
        .order_by()
    ]
    rows += [
        MonthSums(r["month"], Kind.EXPIRE, r["cohort"], r["credit"], r["debit"], r["entries"])
        for r in entries.filter(kind=Kind.EXPIRE)
        .annotate(month=_month("occurred_at"), cohort=_month("reverses__occurred_at"))
        .values("month", "cohort")
        .annotate(**totals)
        .order_by()
    ]
    return rows


def _ledger_mark() -> int:
    """The highest entry id whose transaction has committed, with none below it still to come.

    A sequence hands out ids before commit, so a slow transaction can commit id 100 after id 101 is
    visible. Taking SHARE on the ledger waits for every transaction writing to it to finish (new
    writers wait a moment behind us); once we have it, no id below the current maximum can appear."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '30s'")
                cursor.execute(f"LOCK TABLE {LedgerEntry._meta.db_table} IN SHARE MODE")
        return LedgerEntry.objects.aggregate(mark=Max("pk"))["mark"] or 0


def ledger_months_refresh(*, program: Program, now: datetime.datetime | None = None) -> int:
    """Rebuild the program's `LedgerMonth` rows from its ledger in one transaction (set-based: the
    database sums; only the few hundred sums travel); returns the rows written."""
    mark = _ledger_mark()
    now = now or timezone.now()
    sums = _sums(LedgerEntry.objects.filter(program=program, pk__lte=mark))
    expiring = _expiring_live(program, now, EXPIRING_MONTHS_KEPT)
    with transaction.atomic():
        LedgerExpiring.objects.filter(program=program).delete()
        LedgerExpiring.objects.bulk_create(
            LedgerExpiring(program=program, month=e.month, points=e.points) for e in expiring
        )
        LedgerMonth.objects.filter(program=program).delete()
        LedgerMonth.objects.bulk_create(
            LedgerMonth(
                program=program,
                month=row.month,
                kind=row.kind,
                cohort=row.cohort,
                credit=row.credit,
                debit=row.debit,
                entries=row.entries,
            )
            for row in sums
        )
        LedgerMonthMark.objects.update_or_create(program=program, defaults={"through_entry": mark, "refreshed_at": now})
    return len(sums)


def ledger_read(*, program: Program) -> Ledger:
    """The program's monthly sums: the summary plus every entry posted after its mark (4 queries)."""
    mark = LedgerMonthMark.objects.filter(program=program).first()
    through = mark.through_entry if mark else 0
    months = [
        MonthSums(r.month, r.kind, r.cohort, r.credit, r.debit, r.entries)
        for r in LedgerMonth.objects.filter(program=program)
    ]
    tail = _sums(LedgerEntry.objects.filter(program=program, pk__gt=through))
    return Ledger(months=months + tail, mark=mark, tail_entries=sum(row.entries for row in tail))


def months_between(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    months, month = [], first
    while month <= last:
        months.append(month)
        month += relativedelta(months=1)
    return months


def roll_forward(
    ledger: Ledger, *, start: datetime.date | None = None, end: datetime.date | None = None
) -> list[RollForwardMonth]:
    """Opening + issued - redeemed - expired +/- adjustments, reversals and carried-in balances =
    closing, month by month from `start` to `end` (first days of months; by default the whole history
    up to this month). The opening of `start` is everything posted before it."""
    net = ledger.net_by_month()
    if not net and start is None:
        return []
    start = start or min(net)
    end = end or max([*net, month_start(timezone.now())])
    opening = sum(sum(kinds.values()) for month, kinds in net.items() if month < start)
    rows = []
    for month in months_between(start, end):
        kinds = net.get(month, {})
        row = RollForwardMonth(
            month=month,
            opening=opening,
            issued=kinds.get(Kind.EARN, 0),
            redeemed=-kinds.get(Kind.REDEEM, 0),
            expired=-kinds.get(Kind.EXPIRE, 0),
            adjusted=kinds.get(Kind.ADJUST, 0),
            reversed=kinds.get(Kind.REVERSE, 0),
            carried_in=kinds.get(Kind.OPENING_BALANCE, 0) + kinds.get(Kind.MIGRATE, 0),
            closing=opening + sum(kinds.values()),
        )
        rows.append(row)
        opening = row.closing
    return rows


def liability(*, program: Program, ledger: Ledger) -> Liability:
    """What the program owes now (one query over its accounts), beside what its ledger adds up to."""
    totals = Account.objects.filter(program=program).aggregate(
        available=Sum("balance", default=0), pending=Sum("pending", default=0)
    )
    return Liability(
        available=totals["available"],
        pending=totals["pending"],
        point_value=program.point_value,
        currency=program.currency,
        ledger_total=ledger.total,
    )


def breakage_by_cohort(
    ledger: Ledger, *, start: datetime.date | None = None, end: datetime.date | None = None
) -> list[Cohort]:
    """Per month of issue: the points credited, and how many of them later expired."""
    issued: dict[datetime.date, int] = defaultdict(int)
    expired: dict[datetime.date, int] = defaultdict(int)
    for row in ledger.months:
        issued[row.month] += row.credit
        if row.kind == Kind.EXPIRE and row.cohort is not None:
            expired[row.cohort] -= row.debit
    return [
        Cohort(month=month, issued=issued[month], expired=expired[month])
        for month in sorted(set(issued) | set(expired))
        if (start is None or month >= start) and (end is None or month <= end) and (issued[month] or expired[month])
    ]


EXPIRING_MONTHS_KEPT = 12


def _expiring_live(program: Program, as_of: datetime.datetime, months: int) -> list[ExpiringMonth]:
    first = month_start(as_of)
    until = timezone.make_aware(datetime.datetime.combine(first + relativedelta(months=months), datetime.time()))
    sums = dict(
        LedgerEntry.objects.filter(program=program, remaining__gt=0, expires_at__gte=as_of, expires_at__lt=until)
        .annotate(month=_month("expires_at"))
        .values("month")
        .annotate(points=Sum("remaining"))
        .order_by()
        .values_list("month", "points")
    )
    return [
        ExpiringMonth(month, sums.get(month, 0))
        for month in months_between(first, first + relativedelta(months=months - 1))
    ]


def points_expiring(
    *, program: Program, mark: LedgerMonthMark | None = None, as_of: datetime.datetime | None = None, months: int = 3
) -> list[ExpiringMonth]:
    """Unspent points lapsing in each of the `months` calendar months starting with this one. With a
    summary `mark`, as of that summary (one small query: on a large program a quarter of all lots lapse
    within three months, millions of rows to sum); without one, summed live from `as_of`."""
    if mark is None:
        return _expiring_live(program, as_of or timezone.now(), months)
    first = month_start(as_of or timezone.now())
    kept = dict(LedgerExpiring.objects.filter(program=program, month__gte=first).values_list("month", "points"))
    return [
        ExpiringMonth(month, kept.get(month, 0))
        for month in months_between(first, first + relativedelta(months=months - 1))
    ]
