"""Ledger-level figures for the analytics pages: points per month by kind, the liability roll-forward,
breakage by issue cohort and points about to expire; and the member summary the overview and the value
pyramid read (`member_months_refresh`, at the end of this module).

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
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    CharField,
    Count,
    DateField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, TruncMonth
from django.utils import timezone

from loyalty.models import (
    Account,
    AccountValue,
    LedgerEntry,
    LedgerExpiring,
    LedgerMonth,
    LedgerMonthMark,
    MemberDecile,
    MemberMonth,
    MemberMonthMark,
    MemberRegion,
    Program,
    TierChange,
)
from loyalty.signals import member_summary_refreshed

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


def ledger_months_refresh(
    *, program: Program, now: datetime.datetime | None = None, entries: "IdMark | None" = None
) -> int:
    """Rebuild the program's `LedgerMonth` rows from its ledger in one transaction (set-based: the
    database sums; only the few hundred sums travel); returns the rows written. `entries` is the mark
    of the ledger the sums cover (the daily job shares the member summary's); without one, it is taken
    here. Takes no lock on the ledger: entries still being written are in the mark's gaps."""
    now = now or timezone.now()
    if entries is None:
        previous = LedgerMonthMark.objects.filter(program=program).first()
        entries = _id_mark(
            LedgerEntry,
            previous=ledger_mark(previous),
            previous_at=previous.refreshed_at if previous else None,
            now=now,
        )
    sums = _sums(entries.covered(LedgerEntry.objects.filter(program=program)))
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
        LedgerMonthMark.objects.update_or_create(
            program=program,
            defaults={"through_entry": entries.through, "entry_gaps": entries.gaps_json, "refreshed_at": now},
        )
    return len(sums)


def ledger_read(*, program: Program) -> Ledger:
    """The program's monthly sums: the summary plus every entry posted after its mark (4 queries)."""
    mark = LedgerMonthMark.objects.filter(program=program).first()
    months = [
        MonthSums(r.month, r.kind, r.cohort, r.credit, r.debit, r.entries)
        for r in LedgerMonth.objects.filter(program=program)
    ]
    tail = _sums(LedgerEntry.objects.filter(ledger_mark(mark).after(), program=program))
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


# --- members ----------------------------------------------------------------------------------
#
# The overview's member figures are either counted live or the summary plus what was recorded since,
# so they are exact at any moment: members, enrolments this month and activity in the last 90 days
# change all the time, so the pages count them live (one pass over the accounts); enrolments (by
# month, channel, store and clerk) and tier movements never change once written, so `MemberMonth`
# keeps them and the pages add the accounts and tier changes with ids the summary does not cover.
# First redemptions are summed with the ledger as a mark saw it; the pages redo, live, the accounts
# with a redemption or a refund since (a cancellation is a refund entry, and changes which redemption
# was first). Redemptions per reward are the rewards app's (`rewards.analytics`), summed with the same
# mark in the same transaction (`member_summary_refreshed`). The tier mix is counted live with the
# members (the same pass); per value decile (`MemberDecile`) it is the tiers as of the mark, and the
# pages move the members with a tier change since. One figure is as of the refresh, and the pages say
# so: a member's region (a member who moves is counted in the old region until the next refresh,
# except in the counts of members and tiers, which are live). The summary writes it once per member
# (`MemberRegion`), and what changed since for a member it counted (a first redemption cancelled, a
# tier changed) is taken off the region it counted them in.


@dataclass(frozen=True)
class IdMark:
    """The rows of a table a summary covers: ids up to `through`, except the `gaps`, [low, high] ranges
    in which no committed row stood when the mark was taken (a transaction still writing them, or one
    rolled back). Ids come from a sequence before commit, so a row can appear below `through` later;
    it is read live with the rows above, and no table lock is needed to keep the sums exact."""

    through: int = 0
    gaps: tuple[tuple[int, int], ...] = ()

    @classmethod
    def stored(cls, through: int, gaps: list) -> "IdMark":
        """From a mark's columns (the gaps as a JSON list of [low, high])."""
        return cls(through, tuple(map(tuple, gaps)))

    @property
    def gaps_json(self) -> list[list[int]]:
        return [list(gap) for gap in self.gaps]

    def _in_gaps(self, field: str = "pk") -> Q:
        q = Q(**{f"{field}__in": []})
        for low, high in self.gaps:
            q |= Q(**{f"{field}__gte": low, f"{field}__lte": high})
        return q

    def covered(self, rows: QuerySet) -> QuerySet:
        """`rows` the summary counts; the few that came into a gap are found by the index, not row by row."""
        rows = rows.filter(pk__lte=self.through)
        return rows.exclude(pk__in=rows.model.objects.filter(self._in_gaps()).values("pk")) if self.gaps else rows

    def after(self, field: str = "pk") -> Q:
        """The rows the summary does not count, to read live (`field`: a column holding such ids)."""
        return Q(**{f"{field}__gt": self.through}) | self._in_gaps(field)


# A gap still empty this long after a refresh saw it is a rolled-back insert, not one still being written.
GAPS_KEPT = datetime.timedelta(hours=1)
# The gaps a mark keeps at most (each is one range in the pages' live reads); with more, the mark ends
# below the first one it leaves out, so no row is ever in neither the summary nor the live read (the
# next refresh an hour or more later takes the kept ones as rolled back and moves on past up to as many).
MAX_GAPS = 1_000


def _id_mark(model, *, previous: IdMark, previous_at: datetime.datetime | None, now: datetime.datetime) -> IdMark:
    """The highest id of `model` and the id ranges below it with no committed row, read in one statement
    (so one snapshot). Kept: the gaps above the previous mark, and those of the previous mark still
    empty if it is recent (a transaction may still be writing them); older ones are dropped. So only
    the ids from the previous mark up and those in its kept gaps are read (the ledger has 20,000,000):
    every id below it outside its gaps was a committed row then, and is one still."""
    table = connection.ops.quote_name(model._meta.db_table)
    recent = previous_at is not None and now - previous_at < GAPS_KEPT
    looked_at = [(previous.through, None), *(previous.gaps if recent else ())]
    where = " OR ".join("id >= %s" if high is None else "id BETWEEN %s AND %s" for _low, high in looked_at)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT previous + 1, id - 1 FROM (SELECT id, LAG(id, 1, 0) OVER (ORDER BY id) AS previous"
            f" FROM {table} WHERE {where}) ids WHERE id - previous > 1"
            f" UNION ALL SELECT COALESCE(MAX(id), 0), NULL FROM {table}",
            [bound for low, high in looked_at for bound in (low, high) if bound is not None],
        )
        rows = cursor.fetchall()
    through = next(low for low, high in rows if high is None)
    gaps = []
    for low, high in sorted((low, high) for low, high in rows if high is not None):
        if high > previous.through:
            gaps.append((max(low, previous.through + 1), high))
        if recent:  # the part of it that was already a gap then
            gaps += [(max(low, a), min(high, b)) for a, b in previous.gaps if max(low, a) <= min(high, b)]
    gaps = sorted(set(gaps))
    if len(gaps) > MAX_GAPS:  # the mark stops below the first gap it cannot keep: all above is read live
        through, gaps = gaps[MAX_GAPS][0] - 1, gaps[:MAX_GAPS]
    return IdMark(through=through, gaps=tuple(gaps))


def member_marks(mark: MemberMonthMark | None) -> tuple[IdMark, IdMark]:
    """The accounts and the tier changes `MemberMonth` covers (none without a summary: read them all live)."""
    if mark is None:
        return IdMark(), IdMark()
    return (
        IdMark.stored(mark.through_account, mark.account_gaps),
        IdMark.stored(mark.through_tier_change, mark.tier_change_gaps),
    )


def ledger_mark(mark: LedgerMonthMark | MemberMonthMark | None) -> IdMark:
    """The ledger entries a summary covers (none without a summary: read them all live)."""
    return IdMark() if mark is None else IdMark.stored(mark.through_entry, mark.entry_gaps)


# What each event is counted by; the refresh and the pages' live part share them, so they group alike.
ENROLMENT_DIMENSIONS = {
    "event_month": _month("enrolled_at"),
    "member_region": F("member__region"),
    "enrol_store": F("enrolled_at_store"),
    "enrol_clerk": F("enrolled_by"),
    "enrol_channel": F("member__enrolment_channel"),
}
MOVES = [TierChange.Reason.UPGRADE, TierChange.Reason.DOWNGRADE]
MEMBER_REGION = F("account__member__region")
# A member's region as the summary wrote it (`MemberRegion`): first redemptions and deciles are counted
# in it, so the pages take what changed since off the same region, wherever the member lives now. Every
# account the marks cover has one; the live region only keeps a surprise from failing the nightly job.
SUMMARY_REGION = Coalesce("account__summary_region__region", "account__member__region")
# Typed NULLs: an INSERT ... SELECT needs them to be of the column's type.
NO_CLERK = Cast(Value(None), BigIntegerField())
NONE_WAITED = Cast(Value(None), DurationField())


def enrolment_events(accounts: QuerySet[Account]) -> QuerySet:
    return (
        accounts.values(event=Value(MemberMonth.Kind.ENROLLED), **ENROLMENT_DIMENSIONS)
        .annotate(members=Count("pk"), waited=NONE_WAITED)
        .order_by()
    )


def movement_events(changes: QuerySet[TierChange]) -> QuerySet:
    """Upgrades and downgrades per month of the change, by the member's region and enrolment store."""
    return _account_events(changes.filter(reason__in=MOVES), event=F("reason"), at="changed_at", waited=NONE_WAITED)


def _account_events(rows: QuerySet, *, event, at: str, waited, region=MEMBER_REGION) -> QuerySet:
    """`rows` (linked to an account) counted per event and month of `at`, by the member's region (`region`)
    and the account's enrolment store: the shape of `MemberMonth` rows for events with no clerk or channel."""
    return (
        rows.values(
            event=event,
            event_month=_month(at),
            member_region=region,
            enrol_store=F("account__enrolled_at_store"),
            enrol_clerk=NO_CLERK,
            enrol_channel=Value("", output_field=CharField()),
        )
        .annotate(members=Count("pk"), waited=waited)
        .order_by()
    )


def redeems_kept(redeems: QuerySet[LedgerEntry], entries: IdMark | None) -> QuerySet[LedgerEntry]:
    """The redeem entries among `redeems` not refunded, with the ledger as the mark `entries` saw it."""
    redeems = redeems.filter(kind=Kind.REDEEM)
    refunds = LedgerEntry.objects.all()
    if entries is not None:
        redeems, refunds = entries.covered(redeems), entries.covered(refunds)
    return redeems.exclude(Exists(refunds.filter(reverses=OuterRef("pk"))))


def first_redemptions(*, program: Program, entries: IdMark | None = None) -> QuerySet[LedgerEntry]:
    """Each member's first redemption that was not cancelled: their earliest redeem entry with no refund
    (with the ledger as the mark `entries` saw it, if given). Read from the ledger (the engine does not
    see the rewards app): every redeem entry is a redemption (rewards.redeem is `spend`'s caller) and
    cancelling one is exactly refunding its entry."""
    redeems = redeems_kept(LedgerEntry.objects.filter(program=program), entries)
    earlier = redeems.filter(account=OuterRef("account")).filter(
        Q(occurred_at__lt=OuterRef("occurred_at")) | Q(occurred_at=OuterRef("occurred_at"), pk__lt=OuterRef("pk"))
    )
    return redeems.exclude(Exists(earlier))


def _first_redeemed_at(entries: IdMark | None) -> Subquery:
    """An account's first redemption (as `first_redemptions` picks it), one index probe per account."""
    redeems = redeems_kept(LedgerEntry.objects.filter(account=OuterRef("pk")), entries)
    return Subquery(redeems.order_by("occurred_at", "pk").values("occurred_at")[:1])


def first_redemptions_since(*, program: Program, entries: IdMark, scope: Q, counted: Q) -> dict:
    """What the entries the mark `entries` leaves out changed in first redemptions of the accounts in
    `scope` (a filter on accounts; `counted`: the same scope as the summary counted them, with the
    region it wrote for them): members who redeemed for the first time, or whose first redemption was
    cancelled (another one, or none, is now their first), added in `scope` and taken off in `counted`.
    Only accounts with a redeem or a refund since are looked at, each by its statement index:
    `{"members": +/-n, "waited": +/- the time from enrolment summed}` (one query)."""
    touched = LedgerEntry.objects.filter(entries.after(), kind__in=[Kind.REDEEM, Kind.REVERSE]).values("account")
    zero = datetime.timedelta(0)
    as_now = ExpressionWrapper(scope, output_field=BooleanField())
    as_then = ExpressionWrapper(counted, output_field=BooleanField())
    return (
        Account.objects.filter(scope | counted, program=program, pk__in=touched)
        .annotate(then=_first_redeemed_at(entries), now=_first_redeemed_at(None), in_now=as_now, in_then=as_then)
        .aggregate(
            members=Count("now", filter=Q(in_now=True)) - Count("then", filter=Q(in_then=True)),
            waited=Sum(F("now") - F("enrolled_at"), filter=Q(in_now=True), output_field=DurationField(), default=zero)
            - Sum(F("then") - F("enrolled_at"), filter=Q(in_then=True), output_field=DurationField(), default=zero),
        )
    )


WAITED = Sum(F("occurred_at") - F("account__enrolled_at"), output_field=DurationField())


def first_redemption_events(entries: QuerySet[LedgerEntry]) -> QuerySet:
    return _account_events(
        entries, event=Value(MemberMonth.Kind.FIRST_REDEMPTION), at="occurred_at", waited=WAITED, region=SUMMARY_REGION
    )


def tier_at_mark(changes: IdMark, *, account: str = "account") -> Case:
    """On a row with an `account` (or on an account, with `account="pk"`): the account's tier as the mark
    `changes` saw it, the tier before the first of its tier changes the mark leaves out, else its tier
    now. The engine changes a tier and records the change in one transaction under the account's lock,
    so one account's changes follow their ids."""
    left_out = TierChange.objects.filter(changes.after(), account=OuterRef(account)).order_by("pk")
    return Case(
        When(Exists(left_out), then=Subquery(left_out.values("from_tier")[:1])),
        default=F("tier" if account == "pk" else f"{account}__tier"),
        output_field=BigIntegerField(),
    )


def first_redemption_totals(
    *,
    program: Program,
    mark: MemberMonthMark | None,
    scope: Q,
    counted: Q,
    summarised: tuple[int, datetime.timedelta],
    entries: Q,
) -> tuple[int, datetime.timedelta | None]:
    """Members with a first redemption among the accounts in `scope` and the time they waited from
    enrolment, summed: the member summary's (`summarised`: its first redemptions among them, read with
    its other rows), corrected by the redemptions and refunds its ledger mark leaves out, in `scope` now
    and in `counted` as the summary counted them (one query; see `first_redemptions_since`); with no
    summary, summed live from the whole ledger (`entries` filters it to the same accounts; one query,
    slow on a large program)."""
    if mark is None:
        totals = first_redemptions(program=program).filter(entries).aggregate(n=Count("pk"), waited=WAITED)
        return totals["n"], totals["waited"]
    since = first_redemptions_since(program=program, entries=ledger_mark(mark), scope=scope, counted=counted)
    return summarised[0] + since["members"], summarised[1] + since["waited"]


def decile_tier_moves(*, program: Program, mark: MemberMonthMark, values: Q) -> list[tuple[int, int | None, int]]:
    """The ranked members (`AccountValue` rows matching `values`) whose tier changed since the member
    summary, as (decile, tier, members) rows to add to its own: -n under the tier the summary counted
    them in, +n under their tier now (one query, over the tier changes since the summary's mark)."""
    _accounts, changes = member_marks(mark)
    moved = (
        AccountValue.objects.filter(
            values,
            account__in=TierChange.objects.filter(changes.after(), account__program=program).values("account"),
        )
        .values("decile", then=tier_at_mark(changes), now=F("account__tier"))
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("decile", "then", "now", "n")
    )
    rows = []
    for decile, then, now, n in moved:
        rows += [(decile, then, -n), (decile, now, n)]
    return rows


def _decile_rows(program: Program, changes: IdMark) -> QuerySet:
    """Ranked members per decile and tier as `changes` saw it (whenever this statement runs), so the
    pages can move the members whose tier changed since from their old tier to their new one."""
    return (
        AccountValue.objects.filter(program=program)
        .values(
            "decile",
            member_tier=tier_at_mark(changes),
            member_region=SUMMARY_REGION,
            enrol_store=F("account__enrolled_at_store"),
        )
        .annotate(members=Count("pk"), spend=Sum("spend_12m"), ranked_at=Max("computed_at"))
        .order_by()
    )


_EVENT_COLUMNS = {
    "kind": "event",
    "month": "event_month",
    "region": "member_region",
    "store_id": "enrol_store",
    "clerk_id": "enrol_clerk",
    "channel": "enrol_channel",
    "members": "members",
    "waited": "waited",
}
_DECILE_COLUMNS = {
    "decile": "decile",
    "tier_id": "member_tier",
    "region": "member_region",
    "store_id": "enrol_store",
    "members": "members",
    "spend": "spend",
    "computed_at": "ranked_at",
}


_REGION_COLUMNS = {"account_id": "member_account", "region": "member_region"}


def _member_region_rows(program: Program) -> QuerySet:
    """Each account of the program and the region its member lives in."""
    return Account.objects.filter(program=program).values(member_account=F("pk"), member_region=F("member__region"))


def summary_insert(model, columns: dict[str, str], *, program: Program, rows: QuerySet) -> int:
    """INSERT ... SELECT: the database groups and writes the rows; none travels through Python."""
    quote = connection.ops.quote_name
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)} (program_id, {', '.join(map(quote, columns))})"
            f" SELECT %s, {', '.join(f'q.{quote(alias)}' for alias in columns.values())} FROM ({sql}) q",
            [program.pk, *params],
        )
        return cursor.rowcount


def member_months_refresh(*, program: Program, now: datetime.datetime | None = None) -> int:
    """Rebuild the program's member summary (`MemberMonth`, `MemberDecile`, and `MemberRegion`, not
    counted in the rows written it returns) set-based, in one transaction, and its mark. First
    redemptions are counted with the ledger as a mark saw it (kept as `through_entry` and
    `entry_gaps`), so the pages can add exactly what the entries it leaves out changed; the apps above
    summarise the same ledger mark in the same transaction (`member_summary_refreshed`: rewards'
    redemptions per reward). Takes no lock on accounts, tier
    changes or the ledger: the marks' gaps keep the sums exact."""
    now = now or timezone.now()
    previous = MemberMonthMark.objects.filter(program=program).first()
    previous_at = previous.refreshed_at if previous else None
    previous_accounts, previous_changes = member_marks(previous)
    accounts = _id_mark(Account, previous=previous_accounts, previous_at=previous_at, now=now)
    changes = _id_mark(TierChange, previous=previous_changes, previous_at=previous_at, now=now)
    entries = _id_mark(LedgerEntry, previous=ledger_mark(previous), previous_at=previous_at, now=now)
    with transaction.atomic():
        for model in (MemberMonth, MemberDecile, MemberRegion):
            model.objects.filter(program=program).delete()
        # First: every account, tier change and entry the marks cover committed before they were taken,
        # so its member is here, and the rows below and rewards' read the one region written for them.
        summary_insert(MemberRegion, _REGION_COLUMNS, program=program, rows=_member_region_rows(program))
        events = [
            enrolment_events(accounts.covered(Account.objects.filter(program=program))),
            movement_events(changes.covered(TierChange.objects.filter(account__program=program))),
            first_redemption_events(first_redemptions(program=program, entries=entries)),
        ]
        written = sum(summary_insert(MemberMonth, _EVENT_COLUMNS, program=program, rows=rows) for rows in events)
        written += summary_insert(MemberDecile, _DECILE_COLUMNS, program=program, rows=_decile_rows(program, changes))
        for _receiver, rows in member_summary_refreshed.send(sender=MemberMonthMark, program=program, entries=entries):
            written += rows
        MemberMonthMark.objects.update_or_create(
            program=program,
            defaults={
                "through_account": accounts.through,
                "account_gaps": accounts.gaps_json,
                "through_tier_change": changes.through,
                "tier_change_gaps": changes.gaps_json,
                "through_entry": entries.through,
                "entry_gaps": entries.gaps_json,
                "ranked_at": MemberDecile.objects.filter(program=program).aggregate(at=Max("computed_at"))["at"],
                "refreshed_at": now,
            },
        )
    return written


def summaries_refresh(*, program: Program, now: datetime.datetime | None = None) -> int:
    """The daily job `loyalty.summarise_ledger`: the member summary, then the ledger's with the same
    ledger mark; returns the rows written. No table is locked: earns go on while it runs."""
    now = now or timezone.now()
    written = member_months_refresh(program=program, now=now)
    mark = MemberMonthMark.objects.get(program=program)
    return written + ledger_months_refresh(program=program, now=now, entries=ledger_mark(mark))
