"""Reads of the rewards app. Each issues a fixed number of queries whatever the catalogue or history size."""

import datetime
from dataclasses import dataclass

from django.db.models import Case, Count, Q, QuerySet, When
from django.utils import timezone

from loyalty import engine
from loyalty.models import Account, EarnRule, Program
from loyalty.selectors import store_programs
from members.models import Member, Store
from rewards import eligibility
from rewards.models import Redemption, Reward, Voucher

LIMIT_PERIODS = [p for p in EarnRule.CapPeriod.values if p != EarnRule.CapPeriod.EVER]


@dataclass(frozen=True)
class Offer:
    """A reward as one member sees it: redeemable now, or why not."""

    reward: Reward
    refusal: eligibility.Refusal | None

    @property
    def available(self) -> bool:
        return self.refusal is None


def _live_redemptions(account: Account) -> QuerySet[Redemption]:
    return Redemption.objects.filter(account=account).exclude(status=Redemption.Status.CANCELLED)


def redeemed_in_limit_period(*, account: Account, reward: Reward, as_of: datetime.datetime) -> int:
    """How many times the account redeemed the reward (not cancelled) in the reward's current limit period."""
    if reward.limit_per_member is None:
        return 0
    start, _end = engine.period_window(reward.limit_period, as_of)
    redemptions = _live_redemptions(account).filter(reward=reward)
    if start is not None:
        redemptions = redemptions.filter(created_at__gte=start)
    return redemptions.count()


def _redeemed_per_period(account: Account, as_of: datetime.datetime) -> dict[int, dict[str, int]]:
    """For every reward the account redeemed: how often in the current day, week, month, year and ever
    (one query, grouped by reward)."""
    counts = {
        period: Count("pk", filter=Q(created_at__gte=engine.period_window(period, as_of)[0]))
        for period in LIMIT_PERIODS
    }
    rows = _live_redemptions(account).values("reward").annotate(**counts, ever=Count("pk"))
    return {row.pop("reward"): row for row in rows}


def offered_rewards(*, program: Program, on: datetime.date) -> QuerySet[Reward]:
    """The program's active rewards offered on `on`."""
    return (
        Reward.objects.filter(program=program, is_active=True)
        .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=on))
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=on))
        .select_related("min_tier")
    )


def store_reward(*, store: Store, pk: int) -> Reward | None:
    """A reward of one of the programs this store runs (what a till may redeem), else None."""
    return Reward.objects.filter(pk=pk, program__in=store_programs(store=store)).select_related("program").first()


def catalogue_for_account(*, account: Account, as_of: datetime.datetime | None = None) -> list[Offer]:
    """Rewards this member is offered (their program, region, member type), each redeemable or with the
    reason it is not ("Needs Gold", "Out of stock", "320 more points"): featured first, then those
    redeemable now, then by cost. Two queries."""
    as_of = as_of or timezone.now()
    redeemed = _redeemed_per_period(account, as_of)
    offers = []
    for reward in offered_rewards(program=account.program, on=timezone.localdate(as_of)):
        in_period = redeemed.get(reward.pk, {}).get(reward.limit_period or "ever", 0)
        refused = eligibility.refusal(reward, account, today=timezone.localdate(as_of), redeemed_in_period=in_period)
        if refused is None or refused.code in eligibility.SHOWN:
            offers.append(Offer(reward, refused))
    offers.sort(key=lambda o: (not o.reward.featured, not o.available, o.reward.points_cost, o.reward.name))
    return offers


def upcoming_rewards(*, account: Account, limit: int = 3, as_of: datetime.datetime | None = None) -> list[Offer]:
    """The dashboard panel: rewards the member can redeem now or is closest to, featured ones first."""
    reachable = [
        offer
        for offer in catalogue_for_account(account=account, as_of=as_of)
        if offer.refusal is None or offer.refusal.code == "insufficient_points"
    ]
    reachable.sort(
        key=lambda o: (not o.reward.featured, o.refusal.points_missing if o.refusal else 0, -o.reward.points_cost)
    )
    return reachable[:limit]


def member_vouchers(*, member: Member) -> QuerySet[Voucher]:
    """The member's vouchers: usable ones first (soonest to lapse first), then the used and lapsed ones."""
    return (
        Voucher.objects.filter(account__member=member)
        .select_related("program", "redeemed_store")
        .order_by(Case(When(status=Voucher.Status.ACTIVE, then=0), default=1), "valid_until", "-pk")
    )


def member_redemptions(*, member: Member) -> QuerySet[Redemption]:
    return (
        Redemption.objects.filter(account__member=member)
        .select_related("reward", "account__program", "voucher")
        .order_by("-created_at", "-pk")
    )


def reward_summaries(*, program: Program) -> QuerySet[Reward]:
    """The staff catalogue: every reward with its redemptions (not cancelled) and those awaiting fulfilment."""
    live = ~Q(redemptions__status=Redemption.Status.CANCELLED)
    return (
        Reward.objects.filter(program=program)
        .select_related("min_tier")
        .annotate(
            redeemed=Count("redemptions", filter=live),
            awaiting=Count("redemptions", filter=Q(redemptions__status=Redemption.Status.REQUESTED)),
        )
        .order_by("-is_active", "points_cost", "name")
    )


def fulfilment_queue(*, program: Program) -> QuerySet[Redemption]:
    """Redemptions staff still have to ship, book or donate, oldest first."""
    return (
        Redemption.objects.filter(program=program, status=Redemption.Status.REQUESTED)
        .select_related("reward", "account__member", "store")
        .order_by("created_at", "pk")
    )


def usable_vouchers(*, member: Member, today: datetime.date | None = None) -> QuerySet[Voucher]:
    """Vouchers the member can still use: active and not past their last day (the expiry job may lag)."""
    today = today or timezone.localdate()
    return member_vouchers(member=member).filter(status=Voucher.Status.ACTIVE, valid_until__gte=today)


def past_vouchers(*, member: Member, today: datetime.date | None = None) -> QuerySet[Voucher]:
    """Used, cancelled and lapsed vouchers."""
    today = today or timezone.localdate()
    return member_vouchers(member=member).exclude(status=Voucher.Status.ACTIVE, valid_until__gte=today)
