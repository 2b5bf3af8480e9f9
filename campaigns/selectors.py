"""Reads of the campaigns app: the campaign list and what each campaign returned.

Performance compares the treated members with the control group over the campaign's window, by SQL
aggregation (a fixed number of queries whatever the number of members).
"""

import datetime
import math
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from campaigns.models import Campaign, CampaignMember
from loyalty.models import LedgerEntry, Purchase
from rewards.models import Voucher

Z_95 = 1.96  # two-sided 95% normal interval


def campaign_list(*, program):
    return (
        Campaign.objects.filter(program=program)
        .select_related("segment", "budget")
        .annotate(
            treated=Count("members", filter=Q(members__held_out=False)),
            held=Count("members", filter=Q(members__held_out=True)),
        )
        .order_by("-starts_on", "name")
    )


def campaign_groups(*, campaign: Campaign) -> dict[str, int]:
    """How many members the campaign treats and holds out (recorded at launch)."""
    counts = campaign.members.aggregate(
        treated=Count("pk", filter=Q(held_out=False)), held=Count("pk", filter=Q(held_out=True))
    )
    return {"treated": counts["treated"], "held": counts["held"], "total": counts["treated"] + counts["held"]}


@dataclass(frozen=True)
class GroupFigures:
    members: int
    participants: int
    spend: float
    spend_squares: float
    visits: int

    @property
    def spend_per_member(self) -> float:
        return self.spend / self.members if self.members else 0.0

    @property
    def visits_per_member(self) -> float:
        return self.visits / self.members if self.members else 0.0

    @property
    def participation(self) -> float:
        return self.participants / self.members if self.members else 0.0

    @property
    def variance(self) -> float:
        """Sample variance of spend per member (members who spent nothing count as 0)."""
        if self.members < 2:
            return 0.0
        mean = self.spend_per_member
        return max((self.spend_squares - self.members * mean * mean) / (self.members - 1), 0.0)


@dataclass(frozen=True)
class Performance:
    campaign: Campaign
    window: tuple[datetime.datetime, datetime.datetime]
    treatment: GroupFigures
    control: GroupFigures
    points_awarded: int
    vouchers_issued: int
    vouchers_value: Decimal
    vouchers_redeemed: int
    vouchers_redeemed_value: Decimal
    daily: list[tuple[datetime.date, float, float]]  # day, spend per treated member, per control member

    @property
    def measurable(self) -> bool:
        return self.treatment.members > 1 and self.control.members > 1

    @property
    def lift_per_member(self) -> float:
        return self.treatment.spend_per_member - self.control.spend_per_member

    @property
    def standard_error(self) -> float:
        if not self.measurable:
            return math.nan
        return math.sqrt(
            self.treatment.variance / self.treatment.members + self.control.variance / self.control.members
        )

    @property
    def lift_interval(self) -> tuple[float, float]:
        """95% interval of the difference in spend per member (Welch's normal approximation)."""
        margin = Z_95 * self.standard_error
        return self.lift_per_member - margin, self.lift_per_member + margin

    @property
    def lift_percent(self) -> float | None:
        base = self.control.spend_per_member
        return 100 * self.lift_per_member / base if base else None

    @property
    def incremental_spend(self) -> float:
        return self.lift_per_member * self.treatment.members

    @property
    def incremental_interval(self) -> tuple[float, float]:
        low, high = self.lift_interval
        return low * self.treatment.members, high * self.treatment.members

    @property
    def points_cost(self) -> Decimal:
        return self.points_awarded * self.campaign.program.point_value

    @property
    def cost(self) -> Decimal:
        """Points at the program's point value plus the value of the vouchers issued (owed once issued)."""
        return self.points_cost + self.vouchers_value

    @property
    def return_on_cost(self) -> float | None:
        return self.incremental_spend / float(self.cost) if self.cost else None


def campaign_window(campaign: Campaign) -> tuple[datetime.datetime, datetime.datetime]:
    """[first day 00:00, day after the last 00:00) in local time; a campaign ended early stops then."""
    start = timezone.make_aware(datetime.datetime.combine(campaign.starts_on, datetime.time.min))
    end = timezone.make_aware(
        datetime.datetime.combine(campaign.ends_on + datetime.timedelta(days=1), datetime.time.min)
    )
    if campaign.ended_at and campaign.ended_at < end:
        end = campaign.ended_at
    return start, end


_GROUPS_SQL = """
SELECT cm.held_out, COUNT(*), COUNT(p.account_id), COALESCE(SUM(p.spent), 0), COALESCE(SUM(p.spent * p.spent), 0),
       COALESCE(SUM(p.visits), 0)
FROM {members} cm
LEFT JOIN (
    SELECT account_id, SUM(amount - returned_amount) AS spent, COUNT(*) AS visits
    FROM {purchases}
    WHERE program_id = %s AND occurred_at >= %s AND occurred_at < %s
      AND account_id IN (SELECT account_id FROM {members} WHERE campaign_id = %s)
    GROUP BY account_id
) p ON p.account_id = cm.account_id
WHERE cm.campaign_id = %s
GROUP BY cm.held_out
"""


def _groups(campaign: Campaign, start, end) -> dict[bool, GroupFigures]:
    sql = _GROUPS_SQL.format(members=CampaignMember._meta.db_table, purchases=Purchase._meta.db_table)
    figures = {held: GroupFigures(0, 0, 0.0, 0.0, 0) for held in (False, True)}
    with connection.cursor() as cursor:
        moment = connection.ops.adapt_datetimefield_value  # raw SQL: datetimes as the ORM stores them
        cursor.execute(sql, [campaign.program_id, moment(start), moment(end), campaign.pk, campaign.pk])
        for held, members, participants, spend, squares, visits in cursor.fetchall():
            figures[bool(held)] = GroupFigures(
                int(members), int(participants), float(spend), float(squares), int(visits)
            )
    return figures


def _daily(
    campaign: Campaign, start, end, groups: dict[bool, GroupFigures]
) -> list[tuple[datetime.date, float, float]]:
    spend = {}
    for held in (False, True):
        rows = (
            Purchase.objects.filter(
                program=campaign.program,
                occurred_at__gte=start,
                occurred_at__lt=end,
                account__in=CampaignMember.objects.filter(campaign=campaign, held_out=held).values("account_id"),
            )
            .annotate(day=TruncDate("occurred_at", tzinfo=timezone.get_current_timezone()))
            .values("day")
            .annotate(total=Sum("amount") - Sum("returned_amount"))
            .values_list("day", "total")
        )
        spend[held] = {day: float(total) for day, total in rows}
    days, day = [], timezone.localtime(start).date()
    last = min(timezone.localtime(end - datetime.timedelta(microseconds=1)).date(), timezone.localdate())
    while day <= last:
        treated = spend[False].get(day, 0.0) / groups[False].members if groups[False].members else 0.0
        control = spend[True].get(day, 0.0) / groups[True].members if groups[True].members else 0.0
        days.append((day, treated, control))
        day += datetime.timedelta(days=1)
    return days


def campaign_performance(*, campaign: Campaign) -> Performance:
    start, end = campaign_window(campaign)
    groups = _groups(campaign, start, end)
    points = (
        LedgerEntry.objects.filter(program=campaign.program)
        .filter(
            Q(kind=LedgerEntry.Kind.EARN, rule__in=campaign.rules.all())
            | Q(kind=LedgerEntry.Kind.REVERSE, reverses__rule__in=campaign.rules.all())
        )
        .aggregate(total=Sum("points"))["total"]
        or 0
    )
    vouchers = Voucher.objects.filter(
        source_type__model="campaign", source_type__app_label="campaigns", source_id=campaign.pk
    )
    voucher_figures = vouchers.aggregate(
        issued=Count("pk"),
        value=Sum("amount"),
        redeemed=Count("pk", filter=Q(status=Voucher.Status.REDEEMED)),
        redeemed_value=Sum("amount", filter=Q(status=Voucher.Status.REDEEMED)),
    )
    return Performance(
        campaign=campaign,
        window=(start, end),
        treatment=groups[False],
        control=groups[True],
        points_awarded=points,
        vouchers_issued=voucher_figures["issued"],
        vouchers_value=voucher_figures["value"] or Decimal("0"),
        vouchers_redeemed=voucher_figures["redeemed"],
        vouchers_redeemed_value=voucher_figures["redeemed_value"] or Decimal("0"),
        daily=_daily(campaign, start, end, groups),
    )
