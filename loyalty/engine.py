"""What an activity earns, computed without touching the database.

`loyalty.services` (which writes) and `loyalty.selectors.preview_earn` (which does not) both call
`compute_awards`, so a preview always shows exactly what earning would post.
"""

import datetime
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from dateutil.relativedelta import relativedelta
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from loyalty.models import ActivityType, EarnRule, Program, Tier

ROUNDING = {
    EarnRule.Rounding.DOWN: ROUND_FLOOR,
    EarnRule.Rounding.HALF_UP: ROUND_HALF_UP,
    EarnRule.Rounding.UP: ROUND_CEILING,
}


@dataclass(frozen=True)
class PurchaseLine:
    category: str
    amount: Decimal


@dataclass(frozen=True)
class EarnContext:
    """Everything a rule's conditions and benefit look at."""

    program: Program
    activity_type: str
    occurred_at: datetime.datetime
    tier: Tier | None = None
    region: str = ""
    member_type: str = ""
    store_id: int | None = None
    amount: Decimal = Decimal("0")
    lines: tuple[PurchaseLine, ...] = ()
    quantity: Decimal = Decimal("1")
    code: str = ""
    account_id: int | None = None  # None in a preview without a member: holdouts and audiences then let it through
    enrolled_at: datetime.datetime | None = None
    first_purchase: bool | None = None  # None: not looked up (no rule needs it)
    audience_rule_ids: frozenset[int] | None = None  # the audience-only rules listing this account


@dataclass(frozen=True)
class Award:
    rule: EarnRule
    points: int
    qualifying_points: int
    explanation: str
    capped: bool = False


@dataclass
class RuleSet:
    """A program's active rules for one activity type, with their many-to-many conditions loaded."""

    rules: list[EarnRule]
    tier_ids: Mapping[int, frozenset[int]] = field(default_factory=dict)
    store_ids: Mapping[int, frozenset[int]] = field(default_factory=dict)


def local_date(moment: datetime.datetime) -> datetime.date:
    return timezone.localtime(moment).date()


def _fmt(value: Decimal | int) -> str:
    """1.5 not 1.50, 120 not 1.2E+2, localised (1 200 in French)."""
    value = Decimal(value)
    return number_format(
        value.quantize(Decimal(1)) if value == value.to_integral() else value.normalize(), use_l10n=True
    )


def holdout_threshold(percent: Decimal) -> str:
    """Four hex digits: an account is held out when the start of its holdout hash sorts below them."""
    return f"{min(int(Decimal(percent) * 65536 / 100), 0xFFFF):04x}"


def holdout_hash(seed: str, account_id: int) -> str:
    """md5 of "seed:id", the same hex string PostgreSQL's and Django-on-SQLite's MD5() give, so a
    holdout assigned set-based in SQL and one checked here at earn time always agree."""
    return hashlib.md5(f"{seed}:{account_id}".encode(), usedforsecurity=False).hexdigest()


def held_out(seed: str, percent: Decimal, account_id: int) -> bool:
    """Stable and random-like: the same account is always in or out for the same seed."""
    return bool(percent) and holdout_hash(seed, account_id)[:4] < holdout_threshold(percent)


def rule_matches(rule: EarnRule, ctx: EarnContext, rule_set: RuleSet) -> bool:
    """The rule's conditions hold for this activity (its benefit may still be zero)."""
    if rule.activity_type != ctx.activity_type or not rule.is_active:
        return False
    if ctx.account_id is not None:
        if rule.audience_only and ctx.audience_rule_ids is not None and rule.pk not in ctx.audience_rule_ids:
            return False
        if rule.holdout_percent and held_out(rule.holdout_seed, rule.holdout_percent, ctx.account_id):
            return False
        if rule.first_purchase_only and ctx.first_purchase is False:
            return False
    if (
        rule.enrolled_within_days is not None
        and ctx.enrolled_at is not None
        and ctx.occurred_at > ctx.enrolled_at + datetime.timedelta(days=rule.enrolled_within_days)
    ):
        return False
    if rule.activity_type == ActivityType.CUSTOM_CODE and rule.custom_code != ctx.code:
        return False
    # A referral is rewarded to one party at one moment; the engine names both in the activity's code.
    if rule.activity_type == ActivityType.REFERRAL and ctx.code != f"{rule.referral_party}:{rule.referral_trigger}":
        return False
    day = local_date(ctx.occurred_at)
    if rule.valid_from and day < rule.valid_from:
        return False
    if rule.valid_until and day > rule.valid_until:
        return False
    tiers = rule_set.tier_ids.get(rule.pk, frozenset())
    if tiers and (ctx.tier is None or ctx.tier.pk not in tiers):
        return False
    stores = rule_set.store_ids.get(rule.pk, frozenset())
    if stores and ctx.store_id not in stores:
        return False
    if rule.regions and ctx.region not in rule.regions:
        return False
    if rule.member_types and ctx.member_type not in rule.member_types:
        return False
    return not (rule.min_amount is not None and _base_amount(rule, ctx) < rule.min_amount)


def _base_amount(rule: EarnRule, ctx: EarnContext) -> Decimal:
    if rule.product_categories and ctx.lines:
        return sum((line.amount for line in ctx.lines if line.category in rule.product_categories), Decimal("0"))
    if rule.product_categories:
        return Decimal("0")  # a category rule needs lines to know what was bought
    return ctx.amount


def _raw_points(rule: EarnRule, ctx: EarnContext, multiplier: Decimal) -> tuple[int, str]:
    currency = ctx.program.currency
    if rule.calculation == EarnRule.Calculation.PER_CURRENCY_UNIT:
        base = _base_amount(rule, ctx)
        raw = base * rule.rate * multiplier
        what = _("%(rate)s pt per %(currency)s 1 on %(currency)s %(amount)s") % {
            "rate": _fmt(rule.rate),
            "currency": currency,
            "amount": _fmt(base),
        }
        if rule.product_categories:
            what += " " + _("(%(categories)s)") % {"categories": ", ".join(rule.product_categories)}
    elif rule.calculation == EarnRule.Calculation.PER_QUANTITY:
        raw = ctx.quantity * rule.rate * multiplier
        what = _("%(rate)s pts x %(quantity)s") % {"rate": _fmt(rule.rate), "quantity": _fmt(ctx.quantity)}
    else:
        raw = rule.rate * multiplier
        what = _("%(points)s pts fixed") % {"points": _fmt(rule.rate)}
    points = int(raw.to_integral_value(rounding=ROUNDING[rule.rounding]))
    return max(points, 0), what


def _period_start(period: str, at: datetime.datetime) -> datetime.datetime | None:
    """Start of the calendar period (day, week, month, year) that contains `at`, in local time; None for "ever"."""
    local = timezone.localtime(at)
    day = datetime.datetime.combine(local.date(), datetime.time.min, tzinfo=local.tzinfo)
    if period == EarnRule.CapPeriod.DAY:
        return day
    if period == EarnRule.CapPeriod.WEEK:
        return day - datetime.timedelta(days=local.weekday())
    if period == EarnRule.CapPeriod.MONTH:
        return day.replace(day=1)
    if period == EarnRule.CapPeriod.YEAR:
        return day.replace(month=1, day=1)
    return None


def period_window(period: str, at: datetime.datetime) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    """[start, end) of the period (EarnRule.CapPeriod) that contains `at`; (None, None) for "ever".
    Earning caps and reward limits per member both count in these periods."""
    start = _period_start(period, at)
    if start is None:
        return None, None
    step = {
        EarnRule.CapPeriod.DAY: relativedelta(days=1),
        EarnRule.CapPeriod.WEEK: relativedelta(weeks=1),
        EarnRule.CapPeriod.MONTH: relativedelta(months=1),
        EarnRule.CapPeriod.YEAR: relativedelta(years=1),
    }[period]
    return start, start + step


def cap_window(
    rule: EarnRule, occurred_at: datetime.datetime
) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    """[start, end) of the rule's cap period; (None, None) for a cap that lasts forever."""
    return period_window(rule.cap_period, occurred_at)


def compute_awards(ctx: EarnContext, rule_set: RuleSet, earned_in_cap: Mapping[int, int]) -> list[Award]:
    """The awards of every rule that applies. `earned_in_cap` maps a capped rule to what it already
    awarded this member in the current cap period."""
    matching = [rule for rule in rule_set.rules if rule_matches(rule, ctx, rule_set)]
    # Bonus multiples apply on top of whatever the other rules award, so they come last.
    bonuses = [rule for rule in matching if rule.calculation == EarnRule.Calculation.BONUS_MULTIPLE]
    matching = [rule for rule in matching if rule.calculation != EarnRule.Calculation.BONUS_MULTIPLE]
    exclusive = [rule for rule in matching if not rule.stackable]
    if exclusive:
        # An exclusive rule applies alone; the highest priority wins, then the lowest id (oldest rule).
        matching = [min(exclusive, key=lambda rule: (-rule.priority, rule.pk))]
    awards = []
    for rule in matching + bonuses:
        multiplier = Decimal("1")
        if rule.calculation == EarnRule.Calculation.BONUS_MULTIPLE:
            base = sum(award.points for award in awards)
            raw = int((base * rule.rate).to_integral_value(rounding=ROUNDING[rule.rounding]))
            points, what = (
                max(raw, 0),
                _("%(rate)s x the %(base)s pts above")
                % {
                    "rate": _fmt(rule.rate),
                    "base": _fmt(base),
                },
            )
        else:
            if rule.apply_tier_multiplier and ctx.tier is not None:
                multiplier = ctx.tier.earn_multiplier
            points, what = _raw_points(rule, ctx, multiplier)
        parts = [what]
        if multiplier != 1:
            parts.append(_("x%(multiplier)s %(tier)s") % {"multiplier": _fmt(multiplier), "tier": ctx.tier.name})
        capped = False
        if rule.cap_points is not None:
            room = max(rule.cap_points - earned_in_cap.get(rule.pk, 0), 0)
            if points > room:
                points, capped = room, True
                parts.append(
                    _("capped at %(cap)s pts %(period)s")
                    % {"cap": _fmt(rule.cap_points), "period": rule.get_cap_period_display()}
                )
        if points <= 0:
            continue
        explanation = _("%(points)s pts: %(details)s") % {"points": _fmt(points), "details": ", ".join(parts)}
        explanation = f"{explanation} ({rule.name})"
        awards.append(
            Award(
                rule=rule,
                points=points,
                qualifying_points=points if rule.qualifying else 0,
                explanation=explanation[:300],
                capped=capped,
            )
        )
    return awards


def parse_lines(lines: Iterable[Mapping]) -> tuple[PurchaseLine, ...]:
    return tuple(PurchaseLine(category=str(line["category"]), amount=Decimal(str(line["amount"]))) for line in lines)


# --- Program policies: windows, expiry, availability --------------------------------------------


TICK = datetime.timedelta(microseconds=1)


def _local_midnight(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def qualification_window(program: Program, at: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    """[start, end) of the window in which qualifying points count toward tiers, as seen at `at`."""
    if program.qualification_window == Program.Window.CALENDAR_YEAR:
        year = local_date(at).year
        return _local_midnight(datetime.date(year, 1, 1)), _local_midnight(datetime.date(year + 1, 1, 1))
    # (at - 12 months, at]: a point earned exactly 12 months ago has left the window.
    return at - relativedelta(months=12) + TICK, at + TICK


def tier_review_window(program: Program, since: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    """The window a member reaching a tier at `since` must re-qualify in to keep it: [start, review_at)."""
    if program.qualification_window == Program.Window.CALENDAR_YEAR:
        year = local_date(since).year
        return _local_midnight(datetime.date(year + 1, 1, 1)), _local_midnight(datetime.date(year + 2, 1, 1))
    # Rolling: the 12 months that follow the moment the tier was reached (the points that earned
    # it are older than that moment, so they do not count toward keeping it).
    return since + TICK, since + relativedelta(months=12)


def lot_expiry(program: Program, occurred_at: datetime.datetime) -> datetime.datetime | None:
    """When points earned at `occurred_at` lapse; None when they never do (or lapse only with inactivity)."""
    months = program.expiry_months or 0
    if program.expiry_policy == Program.ExpiryPolicy.MONTHS_AFTER_EARN:
        return occurred_at + relativedelta(months=months)
    if program.expiry_policy == Program.ExpiryPolicy.END_OF_NTH_MONTH:
        first_of_month = local_date(occurred_at).replace(day=1)
        return _local_midnight(first_of_month + relativedelta(months=months + 1))
    return None


def available_from(program: Program, occurred_at: datetime.datetime, activity_type: str) -> datetime.datetime:
    """Purchase points wait out the return window; other points are available at once."""
    if activity_type == ActivityType.PURCHASE and program.pending_days:
        return occurred_at + datetime.timedelta(days=program.pending_days)
    return occurred_at


def tier_for(tiers: Iterable[Tier], qualifying: int | Decimal) -> Tier | None:
    """The highest tier whose threshold the qualifying value reaches (tiers in any order)."""
    reached = [tier for tier in tiers if tier.threshold <= qualifying]
    return max(reached, key=lambda tier: tier.rank) if reached else None
