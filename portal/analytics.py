"""Program analytics for staff (`/staff/analytics/`): overview, liability and breakage, the value
pyramid and enrolment cohorts, each page with its CSV.

Member figures (enrolments, activity, tiers, redemptions, deciles, cohorts) are grouped by the
database over accounts, filtered by region (the member's) and store (where the account was opened).
The overview and the value pyramid read the daily member summary (`MemberMonth`, `MemberDecile`, see
`loyalty.analytics`; `RewardMonth`, see `rewards.analytics`) plus what was recorded since, and count
live what changes all the time (members, activity, tiers). Ledger figures come from `loyalty.analytics`
and are program-wide: points are owed by the program, whatever store a member joined at. Every read
here is a fixed number of queries.
"""

import csv
import datetime
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django import forms
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.db.models import Count, DateField, F, Max, Q, Sum
from django.db.models.functions import TruncMonth
from django.http import HttpResponse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View

from loyalty import analytics as ledger_analytics
from loyalty.core import charts
from loyalty.core.spreadsheets import spreadsheet_safe
from loyalty.models import (
    Account,
    AccountValue,
    LedgerEntry,
    MemberDecile,
    MemberMonth,
    MemberMonthMark,
    Program,
    Tier,
    TierChange,
)
from loyalty.selectors import ranking_made_at
from members.models import Member, Store
from rewards.models import Redemption, RewardMonth

ACTIVE_DAYS = 90
RETENTION_DAYS = ((1, 30), (3, 91), (6, 182), (12, 365))  # months after enrolment, as days
TOP = 10


# --- filters ----------------------------------------------------------------------------------


class AnalyticsFilterForm(forms.Form):
    program = forms.ModelChoiceField(
        label=gettext_lazy("Program"), queryset=Program.objects.exclude(status=Program.Status.DRAFT), required=False
    )
    start = forms.DateField(
        label=gettext_lazy("From month"),
        required=False,
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
    )
    end = forms.DateField(
        label=gettext_lazy("To month"),
        required=False,
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
    )
    region = forms.ChoiceField(label=gettext_lazy("Region"), required=False)
    store = forms.ModelChoiceField(label=gettext_lazy("Store"), queryset=Store.objects.order_by("name"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        regions = Store.objects.exclude(region="").order_by("region").values_list("region", flat=True).distinct()
        self.fields["region"].choices = [("", _("Every region")), *((r, r) for r in regions)]
        self.fields["store"].empty_label = _("Every store")
        self.fields["program"].empty_label = None

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            self.add_error("end", _("Choose a month on or after the first month."))
        return data


@dataclass(frozen=True)
class Scope:
    program: Program
    start: datetime.date  # first day of the first month
    end: datetime.date  # first day of the last month
    region: str = ""
    store: Store | None = None
    now: datetime.datetime = field(default_factory=timezone.now)

    @property
    def since(self) -> datetime.datetime:
        return _aware(self.start)

    @property
    def until(self) -> datetime.datetime:
        return _aware(self.end + relativedelta(months=1))

    @property
    def months(self) -> list[datetime.date]:
        return ledger_analytics.months_between(self.start, self.end)

    def accounts(self):
        accounts = Account.objects.filter(program=self.program)
        if self.region:
            accounts = accounts.filter(member__region=self.region)
        if self.store:
            accounts = accounts.filter(enrolled_at_store=self.store)
        return accounts

    def summary_filter(self) -> Q:
        """The scope on a member summary table (`MemberMonth`, `MemberDecile`): region as of its refresh."""
        q = Q(program=self.program)
        if self.region:
            q &= Q(region=self.region)
        if self.store:
            q &= Q(store=self.store)
        return q

    def account_filter(self, prefix: str, *, program_field: str | None = None, counted: bool = False) -> Q:
        """The scope as a filter on a model linked to accounts by `prefix`; `program_field` names the
        model's own program column, which spares joining a million accounts when no region or store is set.
        `counted`: the member's region as the member summary counted them (`MemberRegion`), for taking
        off or moving what it counted, not their region now."""
        q = Q(**{program_field or f"{prefix}program": self.program})
        if self.region:
            region = "summary_region__region" if counted else "member__region"
            q &= Q(**{f"{prefix}{region}": self.region})
        if self.store:
            q &= Q(**{f"{prefix}enrolled_at_store": self.store})
        return q


def _aware(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))


def _month(field_name: str) -> TruncMonth:
    return TruncMonth(field_name, output_field=DateField())


def _share(part, whole) -> Decimal | None:
    return Decimal(part) / Decimal(whole) if whole else None


# --- overview ---------------------------------------------------------------------------------


@dataclass
class Overview:
    members: int
    enrolled_this_month: int
    active: int
    by_channel: list[tuple[str, int]]
    by_store: list[tuple[str, int]]
    by_clerk: list[tuple[str, int]]
    tiers: list[tuple[str, str, int]]  # name, colour, members
    enrolments: list[tuple[datetime.date, int]]
    movements: list[tuple[datetime.date, int, int]]  # month, upgrades, downgrades
    points: list[ledger_analytics.RollForwardMonth]
    first_redemption_days: Decimal | None
    first_redeemers: int
    top_rewards: list[tuple[str, int, int]]  # name, redemptions, points
    summarised_at: datetime.datetime | None = None  # the member summary's refresh, if there is one

    @property
    def engagement(self) -> Decimal | None:
        return _share(self.active, self.members)

    @property
    def issued(self) -> int:
        return sum(row.issued for row in self.points)

    @property
    def redeemed(self) -> int:
        return sum(row.redeemed for row in self.points)

    @property
    def expired(self) -> int:
        return sum(row.expired for row in self.points)

    @property
    def redemption_rate(self) -> Decimal | None:
        return _share(self.redeemed, self.issued)

    @property
    def engagement_text(self) -> str:
        return percent_text(self.engagement)

    @property
    def redemption_rate_text(self) -> str:
        return percent_text(self.redemption_rate)

    @property
    def tier_shares(self) -> list[tuple[str, str, int, str]]:
        return [(name, colour, n, percent_text(_share(n, self.members))) for name, colour, n in self.tiers]


def overview(scope: Scope, ledger: ledger_analytics.Ledger) -> Overview:
    """Members, activity and the tier mix counted live, in one pass (they change all the time, and a
    member who moves region counts in the new one at once); enrolments, tier movements, first
    redemptions and the top rewards from the member summary, plus what was recorded since."""
    accounts = scope.accounts()
    month_start = _aware(ledger_analytics.month_start(scope.now))
    ladder = list(Tier.objects.filter(program=scope.program).order_by("rank").values_list("pk", "name", "colour"))
    mark = MemberMonthMark.objects.filter(program=scope.program).first()
    tier_pks = [None, *(pk for pk, _n, _c in ladder)]
    counts = accounts.aggregate(
        members=Count("pk"),
        this_month=Count("pk", filter=Q(enrolled_at__gte=month_start)),
        active=Count("pk", filter=Q(last_activity_at__gte=scope.now - datetime.timedelta(days=ACTIVE_DAYS))),
        **{f"tier_{pk}": Count("pk", filter=Q(tier_id=pk)) for pk in tier_pks},
    )
    tiers = [(name, colour, counts[f"tier_{pk}"]) for pk, name, colour in ladder]
    if counts["tier_None"]:
        tiers.append((None, None, counts["tier_None"]))
    enrolled, moves, first_redeemed = _enrolments_and_moves(scope, accounts, mark)
    days, first_redeemers = _days_to_first_redemption(scope, mark, first_redeemed)
    return Overview(
        members=counts["members"],
        enrolled_this_month=counts["this_month"],
        active=counts["active"],
        by_channel=[(label, enrolled.channels[code]) for code, label in Member.Channel.choices],
        by_store=enrolled.top_stores(),
        by_clerk=enrolled.top_clerks(),
        tiers=[(name or _("No tier"), colour or "#9aa4b2", n) for name, colour, n in tiers],
        enrolments=[(month, enrolled.months[month]) for month in scope.months],
        movements=[
            (month, moves[(month, TierChange.Reason.UPGRADE)], moves[(month, TierChange.Reason.DOWNGRADE)])
            for month in scope.months
        ],
        points=ledger_analytics.roll_forward(ledger, start=scope.start, end=scope.end),
        first_redemption_days=days,
        first_redeemers=first_redeemers,
        top_rewards=_top_rewards(scope, mark),
        summarised_at=mark.refreshed_at if mark else None,
    )


def _top_rewards(scope: Scope, mark: MemberMonthMark | None) -> list[tuple[str, int, int]]:
    """The rewards redeemed most in the period, without the cancelled redemptions: the member summary's
    (`RewardMonth`), plus the redemptions whose entry its ledger mark leaves out, less those it counted
    that were cancelled since (their refund entry is one it leaves out); one query. Without a
    summary, every redemption of the period read live (one query, slow for a region on a large program).

    By region, the summary counts a redemption in the region its member lived in at the refresh
    (loyalty's `MemberRegion`), and a cancellation since is taken off that same region; the redemptions
    since count in the member's region now, as read live. So the figures are the live ones except for a
    member who moved since the refresh: the redemptions the summary counted stay in the old region until
    the next refresh. A reward is never shown below zero (it cannot go there; the clamp is a safeguard)."""
    redemptions = Redemption.objects.filter(
        scope.account_filter("account__", program_field="program"),
        created_at__gte=scope.since,
        created_at__lt=scope.until,
    )
    order = ("-n", "-points", "reward__name", "reward")
    if mark is None:
        return list(
            redemptions.exclude(status=Redemption.Status.CANCELLED)
            .values("reward")
            .annotate(n=Count("pk"), points=Sum("points"))
            .order_by(*order)
            .values_list("reward__name", "n", "points")[:TOP]
        )
    entries = ledger_analytics.ledger_mark(mark)
    refunded = LedgerEntry.objects.filter(entries.after(), kind=LedgerEntry.Kind.REVERSE).values("reverses")
    since = redemptions.filter(entries.after("entry")).exclude(status=Redemption.Status.CANCELLED)
    # Taken off where the summary counted it: the region its member lived in at the refresh.
    counted = Redemption.objects.filter(
        scope.account_filter("account__", program_field="program", counted=True),
        created_at__gte=scope.since,
        created_at__lt=scope.until,
    ).exclude(entries.after("entry"))
    # Cancelling refunds the entry and marks the redemption in one transaction; asking both keeps a refund
    # made some other way (the redemption still stands, as the live read counts it) out of it.
    cancelled = counted.filter(entry__in=refunded, status=Redemption.Status.CANCELLED)
    parts = [
        RewardMonth.objects.filter(scope.summary_filter(), month__range=(scope.start, scope.end))
        .values_list("reward", "reward__name")
        .annotate(n=Sum("redemptions"), p=Sum("points")),
        since.values_list("reward", "reward__name").annotate(n=Count("pk"), p=Sum("points")),
        cancelled.values_list("reward", "reward__name").annotate(n=-Count("pk"), p=-Sum("points")),
    ]
    totals: dict[tuple[int, str], list[int]] = {}
    for pk, name, n, points in parts[0].order_by().union(*(part.order_by() for part in parts[1:]), all=True):
        total = totals.setdefault((pk, name), [0, 0])
        total[0] += int(n)
        total[1] += int(points)
    ranked = sorted(
        ((name, n, max(p, 0), pk) for (pk, name), (n, p) in totals.items() if n > 0),
        key=lambda r: (-r[1], -r[2], r[0], r[3]),
    )
    return [(name, n, p) for name, n, p, _pk in ranked[:TOP]]


@dataclass
class _Enrolments:
    """Enrolments grouped by channel, store (name), clerk and month: summary and live rows added up."""

    channels: Counter = field(default_factory=Counter)
    stores: Counter = field(default_factory=Counter)
    clerks: Counter = field(default_factory=Counter)  # (id, first name, last name, email)
    months: Counter = field(default_factory=Counter)

    def add(self, channel: str, store: str | None, clerk: tuple, n: int) -> None:
        self.channels[channel] += n
        self.stores[store] += n
        self.clerks[clerk] += n

    def top_stores(self) -> list[tuple[str, int]]:
        # As the database ordered them: most members first, then by name, the accounts without a store last.
        ranked = sorted(self.stores.items(), key=lambda item: (-item[1], item[0] is None, item[0] or ""))
        return [(name or _("No store (online, imported)"), n) for name, n in ranked[:TOP] if n]

    def top_clerks(self) -> list[tuple[str, int]]:
        ranked = sorted(self.clerks.items(), key=lambda item: (-item[1], item[0][0] is None, item[0][0] or 0))
        return [
            (" ".join(filter(None, [first, last])) or email or _("No clerk (online, imported)"), n)
            for (_pk, first, last, email), n in ranked[:TOP]
            if n
        ]


def _enrolments_and_moves(
    scope: Scope, accounts, mark: MemberMonthMark | None
) -> tuple[_Enrolments, Counter, tuple[int, datetime.timedelta]]:
    """Enrolments and tier movements: the summary's rows (two grouped reads of a few thousand rows), plus
    the accounts and tier changes it does not cover, read live by id (everything without a summary).
    The second read also sums the summary's first redemptions (members, time waited), for
    `_days_to_first_redemption`."""
    since_accounts, since_changes = ledger_analytics.member_marks(mark)
    summary = MemberMonth.objects.filter(scope.summary_filter())
    result = _Enrolments()
    for channel, name, pk, first, last, email, n in (
        summary.filter(kind=MemberMonth.Kind.ENROLLED)
        .values_list("channel", "store__name", "clerk", "clerk__first_name", "clerk__last_name", "clerk__email")
        .annotate(n=Sum("members"))
        .order_by()
    ):
        result.add(channel, name, (pk, first, last, email), n)
    moves: Counter = Counter()
    first_redeemers, waited = 0, datetime.timedelta(0)
    for month, kind, n, kind_waited in (
        summary.filter(
            Q(kind__in=[MemberMonth.Kind.ENROLLED, *ledger_analytics.MOVES], month__range=(scope.start, scope.end))
            | Q(kind=MemberMonth.Kind.FIRST_REDEMPTION)
        )
        .values_list("month", "kind")
        .annotate(n=Sum("members"), waited=Sum("waited"))
        .order_by()
    ):
        if kind == MemberMonth.Kind.ENROLLED:
            result.months[month] += n
        elif kind == MemberMonth.Kind.FIRST_REDEMPTION:
            first_redeemers, waited = first_redeemers + n, waited + (kind_waited or datetime.timedelta(0))
        else:
            moves[(month, kind)] += n
    dimensions = ledger_analytics.ENROLMENT_DIMENSIONS
    for month, channel, name, pk, first, last, email, n in (
        accounts.filter(since_accounts.after())
        .values_list(
            dimensions["event_month"],
            dimensions["enrol_channel"],
            "enrolled_at_store__name",
            dimensions["enrol_clerk"],
            "enrolled_by__first_name",
            "enrolled_by__last_name",
            "enrolled_by__email",
        )
        .annotate(n=Count("pk"))
        .order_by()
    ):
        result.add(channel, name, (pk, first, last, email), n)
        if scope.start <= month <= scope.end:
            result.months[month] += n
    changes = TierChange.objects.filter(scope.account_filter("account__"), since_changes.after())
    for row in ledger_analytics.movement_events(changes):
        moves[(row["event_month"], row["event"])] += row["members"]
    return result, moves, (first_redeemers, waited)


def _days_to_first_redemption(
    scope: Scope, mark: MemberMonthMark | None, summarised: tuple[int, datetime.timedelta]
) -> tuple[Decimal | None, int]:
    """Average days from enrolment to a member's first redemption, over members who redeemed."""
    n, waited = ledger_analytics.first_redemption_totals(
        program=scope.program,
        mark=mark,
        scope=scope.account_filter(""),
        counted=scope.account_filter("", counted=True),
        summarised=summarised,
        entries=scope.account_filter("account__", program_field="program"),
    )
    if not n:
        return None, 0
    microseconds = Decimal(waited // datetime.timedelta(microseconds=1))
    return (microseconds / n / 86_400_000_000).quantize(Decimal("0.1")), n


# --- value pyramid ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decile:
    decile: int
    members: int
    spend: Decimal
    share: Decimal | None
    average: Decimal
    tiers: list[tuple[str, int]]


@dataclass(frozen=True)
class Pyramid:
    deciles: list[Decile]
    computed_at: datetime.datetime | None
    tier_names: list[str]
    tier_colours: list[str]
    summarised_at: datetime.datetime | None = None  # the member summary's refresh, when read from it

    @property
    def spend(self) -> Decimal:
        return sum((d.spend for d in self.deciles), Decimal("0"))

    @property
    def top_to_bottom(self) -> Decimal | None:
        """How many times the top tenth's average member is worth the bottom tenth's."""
        if not self.deciles:
            return None
        top, bottom = self.deciles[0], self.deciles[-1]
        if top.decile != 1 or bottom.decile != 10 or not bottom.average:
            return None
        return (top.average / bottom.average).quantize(Decimal("0.1"))


def pyramid(scope: Scope) -> Pyramid:
    """Deciles with their spend and tier mix, in one query grouped by decile and tier: from the member
    summary when it was summed from the current ranking, with the members whose tier changed since
    moved to their tier now; else from the ranking joined to the accounts (slow on a large program)."""
    mark = MemberMonthMark.objects.filter(program=scope.program).first()
    ranked_at = ranking_made_at(program=scope.program)
    if mark is not None and mark.ranked_at == ranked_at:
        ladder = {
            pk: (rank, name, colour)
            for pk, rank, name, colour in Tier.objects.filter(program=scope.program).values_list(
                "pk", "rank", "name", "colour"
            )
        }
        rows = [
            (decile, *ladder.get(tier, (None, None, None)), members, spend, computed_at)
            for decile, tier, members, spend, computed_at in MemberDecile.objects.filter(scope.summary_filter())
            .values("decile", "tier")
            .annotate(members=Sum("members"), spend=Sum("spend"), computed_at=Max("computed_at"))
            .order_by()
            .values_list("decile", "tier", "members", "spend", "computed_at")
        ]
        rows += [
            (decile, *ladder.get(tier, (None, None, None)), n, Decimal("0"), None)
            for decile, tier, n in ledger_analytics.decile_tier_moves(
                program=scope.program, mark=mark, values=scope.account_filter("account__", counted=True)
            )
        ]
        summarised_at = mark.refreshed_at
    else:
        rows = (
            AccountValue.objects.filter(scope.account_filter("account__"))
            .values("decile", "account__tier__rank", "account__tier__name", "account__tier__colour")
            .annotate(members=Count("pk"), spend=Sum("spend_12m"), computed_at=Max("computed_at"))
            .order_by()
            .values_list(
                "decile",
                "account__tier__rank",
                "account__tier__name",
                "account__tier__colour",
                "members",
                "spend",
                "computed_at",
            )
        )
        summarised_at = None
    deciles: dict[int, dict] = {}
    ranks: dict[str, int] = {}
    colours: dict[str, str] = {}
    for decile, rank, name, colour, members, spend, computed_at in rows:
        name = name or _("No tier")
        row = deciles.setdefault(decile, {"members": 0, "spend": Decimal("0"), "computed_at": computed_at, "mix": {}})
        row["members"] += members
        row["spend"] += spend
        row["computed_at"] = max(filter(None, [row["computed_at"], computed_at]), default=None)
        row["mix"][name] = row["mix"].get(name, 0) + members
        ranks[name] = rank if rank is not None else 1_000
        colours[name] = colour or "#9aa4b2"
    # The ladder from the entry tier up, of the tiers with members (one the summary's members all left
    # since shows no more than a live read would).
    held = {name for row in deciles.values() for name, n in row["mix"].items() if n}
    tier_names = sorted(held, key=ranks.get)
    total = sum((row["spend"] for row in deciles.values()), Decimal("0"))
    return Pyramid(
        deciles=[
            Decile(
                decile=decile,
                members=row["members"],
                spend=row["spend"],
                share=_share(row["spend"], total),
                average=(row["spend"] / row["members"]).quantize(Decimal("0.01")),
                tiers=[(name, row["mix"].get(name, 0)) for name in tier_names],
            )
            for decile, row in sorted(deciles.items())
        ],
        computed_at=max((row["computed_at"] for row in deciles.values() if row["computed_at"]), default=None),
        tier_names=tier_names,
        tier_colours=[colours[name] for name in tier_names],
        summarised_at=summarised_at if deciles else None,
    )


# --- cohorts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrolmentCohort:
    month: datetime.date
    members: int
    retention: list[tuple[int, int, Decimal | None]]  # per RETENTION_DAYS: eligible, still active, share


def cohorts(scope: Scope) -> list[EnrolmentCohort]:
    """Per enrolment month: of the members enrolled long enough ago, the share active again at least
    N months (as days) after joining (one query). `last_activity_at` is the member's latest purchase,
    activity or redemption, so "still active after N months" means they came back N months or later."""
    aggregates = {"members": Count("pk")}
    for months, days in RETENTION_DAYS:
        offset = datetime.timedelta(days=days)
        eligible = Q(enrolled_at__lte=scope.now - offset)
        aggregates[f"eligible_{months}"] = Count("pk", filter=eligible)
        aggregates[f"active_{months}"] = Count(
            "pk",
            filter=eligible & Q(last_activity_at__gte=F("enrolled_at") + offset),
        )
    rows = (
        scope.accounts()
        .filter(enrolled_at__gte=scope.since, enrolled_at__lt=scope.until)
        .annotate(month=_month("enrolled_at"))
        .values("month")
        .annotate(**aggregates)
        .order_by("month")
    )
    return [
        EnrolmentCohort(
            month=row["month"],
            members=row["members"],
            retention=[
                (row[f"eligible_{m}"], row[f"active_{m}"], _share(row[f"active_{m}"], row[f"eligible_{m}"]))
                for m, _days in RETENTION_DAYS
            ],
        )
        for row in rows
    ]


# --- charts -----------------------------------------------------------------------------------


def month_label(month: datetime.date) -> str:
    return date_format(month, "YEAR_MONTH_FORMAT")


def _percent(value: Decimal | None) -> float | None:
    return None if value is None else float(round(value * 100, 1))


# --- views ------------------------------------------------------------------------------------


class AnalyticsMixin(PermissionRequiredMixin):
    """Program managers and analysts (members.view_analytics); everything here only reads."""

    permission_required: tuple[str, ...] = ("members.view_staff_pages", "members.view_analytics")
    section = ""

    def scope(self) -> Scope | None:
        if hasattr(self, "_scope"):
            return self._scope
        self.form = AnalyticsFilterForm(self.request.GET or None)
        data = self.form.cleaned_data if self.form.is_bound and self.form.is_valid() else {}
        program = data.get("program") or self.form.fields["program"].queryset.order_by("name").first()
        now = timezone.now()
        this_month = ledger_analytics.month_start(now)
        end = data.get("end") or this_month
        start = data.get("start") or end - relativedelta(months=11)
        self._scope = (
            Scope(
                program=program,
                start=start.replace(day=1),
                end=end.replace(day=1),
                region=data.get("region", ""),
                store=data.get("store"),
                now=now,
            )
            if program
            else None
        )
        if self._scope and not self.form.is_bound:  # show the period and program the page is about
            self.form.initial = {"program": program.pk, "start": self._scope.start, "end": self._scope.end}
        return self._scope

    def get_context_data(self, **kwargs):
        scope = self.scope()
        query = self.request.GET.urlencode() if self.form.is_bound and self.form.is_valid() else ""
        return super().get_context_data(scope=scope, form=self.form, section=self.section, query=query, **kwargs)


class AnalyticsCSVMixin(AnalyticsMixin):
    permission_required = ("members.view_staff_pages", "members.view_analytics", "members.export_reports")
    filename = "analytics"

    def get(self, request, *args, **kwargs):
        scope = self.scope()
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        slug = scope.program.slug if scope else "none"
        response["Content-Disposition"] = f'attachment; filename="{slug}-{self.filename}.csv"'
        writer = csv.writer(response)
        if scope:
            for title, header, rows in self.tables(scope):
                writer.writerow([spreadsheet_safe(str(title))])
                writer.writerow([spreadsheet_safe(str(h)) for h in header])
                for row in rows:
                    writer.writerow([spreadsheet_safe(_csv_value(v)) for v in row])
                writer.writerow([])
        return response

    def tables(self, scope: Scope):
        """Each page's CSV view yields its tables: (title, header, rows)."""
        raise NotImplementedError


def _csv_value(value):
    """Months as 2026-03, dates in ISO, nothing as an empty cell; numbers stay numbers (never escaped)."""
    if isinstance(value, datetime.date):
        return value.strftime("%Y-%m") if value.day == 1 else value.isoformat()
    if value is None:
        return ""
    return value if isinstance(value, int | Decimal) else str(value)


class OverviewView(AnalyticsMixin, TemplateView):
    template_name = "staff/analytics/overview.html"
    section = "overview"

    def get_context_data(self, **kwargs):
        scope = self.scope()
        context = {}
        if scope:
            ledger = ledger_analytics.ledger_read(program=scope.program)
            o = overview(scope, ledger)
            labels = [month_label(m) for m in scope.months]
            context = {
                "o": o,
                "mark": ledger.mark,
                "enrolment_chart": charts.bar_chart(
                    labels, [(_("Members enrolled"), [n for _m, n in o.enrolments])], half=True
                ),
                "points_chart": charts.bar_chart(
                    labels,
                    [
                        (_("Issued"), [row.issued for row in o.points]),
                        (_("Redeemed"), [row.redeemed for row in o.points]),
                        (_("Expired"), [row.expired for row in o.points]),
                    ],
                    y_title=_("Points"),
                    colors=("#1f6feb", "#2da44e", "#d29922"),
                ),
                "tier_chart": charts.bar_chart(
                    [name for name, _c, _n in o.tiers], [(_("Members"), [n for _name, _c, n in o.tiers])], half=True
                ),
                "movement_chart": charts.bar_chart(
                    labels,
                    [
                        (_("Upgrades"), [up for _m, up, _d in o.movements]),
                        (_("Downgrades"), [down for _m, _u, down in o.movements]),
                    ],
                    colors=("#2da44e", "#cf222e"),
                    half=True,
                ),
            }
        return super().get_context_data(**context, **kwargs)


class OverviewCSVView(AnalyticsCSVMixin, View):
    filename = "overview"

    def tables(self, scope):
        o = overview(scope, ledger_analytics.ledger_read(program=scope.program))
        yield (
            _("Members"),
            [_("Figure"), _("Value")],
            [
                (_("Members enrolled"), o.members),
                (_("Enrolled this month"), o.enrolled_this_month),
                (_("Active in the last 90 days"), o.active),
                (_("Engagement rate"), _fmt_share(o.engagement)),
                (_("Points issued"), o.issued),
                (_("Points redeemed"), o.redeemed),
                (_("Points expired"), o.expired),
                (_("Redemption rate"), _fmt_share(o.redemption_rate)),
                (_("Average days to first redemption"), o.first_redemption_days),
            ],
        )
        yield _("Enrolments by channel"), [_("Channel"), _("Members")], o.by_channel
        yield _("Enrolments by store"), [_("Store"), _("Members")], o.by_store
        yield _("Enrolments by clerk"), [_("Clerk"), _("Members")], o.by_clerk
        yield _("Tier distribution"), [_("Tier"), _("Members")], [(name, n) for name, _c, n in o.tiers]
        yield _("Enrolments per month"), [_("Month"), _("Members")], o.enrolments
        yield _("Tier movements per month"), [_("Month"), _("Upgrades"), _("Downgrades")], o.movements
        yield (
            _("Points per month"),
            [_("Month"), _("Issued"), _("Redeemed"), _("Expired")],
            [(row.month, row.issued, row.redeemed, row.expired) for row in o.points],
        )
        yield _("Top rewards"), [_("Reward"), _("Redemptions"), _("Points")], o.top_rewards


def _fmt_share(value: Decimal | None) -> str:
    """A share for CSV: plain digits, whatever the reader's language."""
    return "" if value is None else f"{value * 100:.1f}%"


def percent_text(value: Decimal | None) -> str:
    """A share for a page, in the reader's number format."""
    return "" if value is None else f"{number_format(value * 100, 1)} %"


def liability_figures(scope: Scope) -> dict:
    ledger = ledger_analytics.ledger_read(program=scope.program)
    return {
        "ledger": ledger,
        "mark": ledger.mark,
        "liability": ledger_analytics.liability(program=scope.program, ledger=ledger),
        "roll_forward": ledger_analytics.roll_forward(ledger, start=scope.start, end=scope.end),
        "cohorts": ledger_analytics.breakage_by_cohort(ledger, start=scope.start, end=scope.end),
        "expiring": ledger_analytics.points_expiring(program=scope.program, mark=ledger.mark, as_of=scope.now),
    }


def _expiring_rows(f: dict) -> list[dict]:
    value = f["liability"].point_value
    return [{"month": e.month, "points": e.points, "value": Decimal(e.points) * value} for e in f["expiring"]]


class LiabilityView(AnalyticsMixin, TemplateView):
    template_name = "staff/analytics/liability.html"
    section = "liability"

    def get_context_data(self, **kwargs):
        scope = self.scope()
        context = {}
        if scope:
            context = liability_figures(scope)
            context["expiring_total"] = sum(e.points for e in context["expiring"])
            context["expiring"] = _expiring_rows(context)
            context["cohorts"] = [
                {
                    "month": c.month,
                    "issued": c.issued,
                    "expired": c.expired,
                    "breakage": c.breakage,
                    "breakage_text": percent_text(c.breakage),
                }
                for c in context["cohorts"]
            ]
            rows = context["roll_forward"]
            context["closing_chart"] = charts.line_chart(
                [month_label(row.month) for row in rows],
                [(_("Outstanding points at month end"), [row.closing for row in rows])],
                y_title=_("Points"),
            )
            context["breakage_chart"] = charts.bar_chart(
                [month_label(c["month"]) for c in context["cohorts"]],
                [(_("Breakage (%)"), [_percent(c["breakage"]) for c in context["cohorts"]])],
                y_title=_("% of the points issued that month"),
                colors=("#d29922",),
                half=True,
            )
        return super().get_context_data(**context, **kwargs)


class LiabilityCSVView(AnalyticsCSVMixin, View):
    filename = "liability"

    def tables(self, scope):
        f = liability_figures(scope)
        liability = f["liability"]
        yield (
            _("Liability"),
            [_("Figure"), _("Value")],
            [
                (_("Available points"), liability.available),
                (_("Pending points"), liability.pending),
                (_("Outstanding points"), liability.points),
                (_("Point value"), f"{liability.point_value} {liability.currency}"),
                (_("Liability"), f"{liability.value} {liability.currency}"),
                (_("Sum of the ledger"), liability.ledger_total),
            ],
        )
        yield (
            _("Roll-forward"),
            [
                _("Month"),
                _("Opening"),
                _("Issued"),
                _("Redeemed"),
                _("Expired"),
                _("Adjustments"),
                _("Reversals"),
                _("Opening balances and migrations"),
                _("Closing"),
            ],
            [
                (r.month, r.opening, r.issued, r.redeemed, r.expired, r.adjusted, r.reversed, r.carried_in, r.closing)
                for r in f["roll_forward"]
            ],
        )
        yield (
            _("Breakage by issue month"),
            [_("Issued in"), _("Points issued"), _("Points expired"), _("Breakage")],
            [(c.month, c.issued, c.expired, _fmt_share(c.breakage)) for c in f["cohorts"]],
        )
        yield _("Points expiring"), [_("Month"), _("Points")], [(e.month, e.points) for e in f["expiring"]]


class PyramidView(AnalyticsMixin, TemplateView):
    template_name = "staff/analytics/pyramid.html"
    section = "pyramid"

    def get_context_data(self, **kwargs):
        scope = self.scope()
        context = {}
        if scope:
            p = pyramid(scope)
            context = {
                "p": p,
                "ranked": sum(d.members for d in p.deciles),
                "top_share": percent_text(p.deciles[0].share) if p.deciles and p.deciles[0].decile == 1 else "",
                "deciles": [{**d.__dict__, "share_text": percent_text(d.share)} for d in p.deciles],
            }
            if p.deciles:
                context["share_chart"] = charts.bar_chart(
                    [str(d.decile) for d in p.deciles],
                    [(_("Share of spend (%)"), [_percent(d.share) for d in p.deciles])],
                    y_title=_("% of 12-month spend"),
                    half=True,
                )
                context["tier_chart"] = charts.bar_chart(
                    [str(d.decile) for d in p.deciles],
                    [(name, [d.tiers[i][1] for d in p.deciles]) for i, name in enumerate(p.tier_names)],
                    y_title=_("Members"),
                    colors=tuple(p.tier_colours),
                    stacked=True,
                    half=True,
                )
        return super().get_context_data(**context, **kwargs)


class PyramidCSVView(AnalyticsCSVMixin, View):
    filename = "value-pyramid"

    def tables(self, scope):
        p = pyramid(scope)
        yield (
            _("Value pyramid"),
            [_("Decile"), _("Members"), _("Spend"), _("Share of spend"), _("Average spend"), *p.tier_names],
            [
                (d.decile, d.members, d.spend, _fmt_share(d.share), d.average, *(n for _name, n in d.tiers))
                for d in p.deciles
            ],
        )


class CohortsView(AnalyticsMixin, TemplateView):
    template_name = "staff/analytics/cohorts.html"
    section = "cohorts"

    def get_context_data(self, **kwargs):
        scope = self.scope()
        rows = [
            {
                "month": c.month,
                "members": c.members,
                "cells": [
                    {
                        "eligible": eligible,
                        "active": active,
                        "text": percent_text(share),
                        "heat": f"{float(share or 0) * 100:.0f}%",
                    }
                    for eligible, active, share in c.retention
                ],
            }
            for c in (cohorts(scope) if scope else [])
        ]
        return super().get_context_data(cohorts=rows, retention_months=[m for m, _d in RETENTION_DAYS], **kwargs)


class CohortsCSVView(AnalyticsCSVMixin, View):
    filename = "cohorts"

    def tables(self, scope):
        header = [_("Enrolled in"), _("Members")]
        for months, _days in RETENTION_DAYS:
            header += [
                _("Eligible after %(months)s months") % {"months": months},
                _("Active after %(months)s months") % {"months": months},
                _("Retention after %(months)s months") % {"months": months},
            ]
        rows = []
        for c in cohorts(scope):
            row = [c.month, c.members]
            for eligible, active, share in c.retention:
                row += [eligible, active, _fmt_share(share)]
            rows.append(row)
        yield _("Retention by enrolment month"), header, rows
